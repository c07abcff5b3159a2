package sqldb

import (
	"fmt"
	"strconv"
	"time"
)

// rawRow scans a row into untyped values and converts them with type
// switches: database/sql's reflective conversion was most of the cost of
// scanning a page of jobs.
type rawRow struct {
	vals []any
	ptrs []any
	err  error
}

func newRawRow(n int) *rawRow {
	r := &rawRow{vals: make([]any, n), ptrs: make([]any, n)}
	for i := range r.vals {
		r.ptrs[i] = &r.vals[i]
	}
	return r
}

func (r *rawRow) fail(i int, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("column %d: want %s, got %T", i, want, r.vals[i])
	}
}

func (r *rawRow) i64(i int) int64 {
	switch v := r.vals[i].(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case float64:
		return int64(v)
	case []byte:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err == nil {
			return n
		}
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			return n
		}
	}
	r.fail(i, "integer")
	return 0
}

func (r *rawRow) nullI64(i int) *int64 {
	if r.vals[i] == nil {
		return nil
	}
	v := r.i64(i)
	return &v
}

func (r *rawRow) str(i int) string {
	switch v := r.vals[i].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return ""
	}
	r.fail(i, "text")
	return ""
}

func (r *rawRow) boolean(i int) bool {
	switch v := r.vals[i].(type) {
	case bool:
		return v
	case int64:
		return v != 0
	}
	r.fail(i, "boolean")
	return false
}

func (r *rawRow) nullF64(i int) *float64 {
	switch v := r.vals[i].(type) {
	case nil:
		return nil
	case float64:
		return &v
	case int64:
		f := float64(v)
		return &f
	case float32:
		f := float64(v)
		return &f
	}
	r.fail(i, "float")
	return nil
}

func (r *rawRow) time(i int) time.Time { return fromMicros(r.i64(i)) }

func (r *rawRow) nullTime(i int) *time.Time {
	if r.vals[i] == nil {
		return nil
	}
	t := r.time(i)
	return &t
}
