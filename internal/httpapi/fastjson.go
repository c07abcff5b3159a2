package httpapi

import (
	"encoding/json"
	"time"

	"gantry/internal/jsonw"
)

// Hand-written appenders for the Job entity, the hottest document the API
// writes (every list page holds up to 100; see appendJob). They produce the
// same bytes as encoding/json on the entity structs, which
// TestAppendJobMatchesEntity checks, without reflection or re-validating
// pre-encoded parts.

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = appendISOMillis(b, t)
	return append(b, '"')
}

// appendISOMillis writes t as isoMillis. Digits are written directly:
// time.AppendFormat re-parses the layout on every call, and a page of jobs
// formats over a hundred timestamps.
func appendISOMillis(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, isoMillis)
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/int(time.Millisecond), 3)
	return append(b, 'Z')
}

// appendDigits writes v zero-padded to width digits (v < 10^width).
func appendDigits(b []byte, v, width int) []byte {
	var buf [4]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:width]...)
}

func appendFloatPtr(b []byte, f *float64) []byte {
	if f == nil {
		return append(b, "null"...)
	}
	return jsonw.Float(b, *f)
}

func appendRaw(b []byte, r json.RawMessage) []byte {
	if len(r) == 0 {
		return append(b, "null"...)
	}
	return append(b, r...)
}

func appendTimeOrNull(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendTime(b, *t)
}
