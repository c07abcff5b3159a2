package sqldb

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gantry/internal/ci"
)

// encodeArtifactsList writes arts the way SQLite (compact) or PostgreSQL
// (", " between values and ",\n " between rows) writes the column.
func encodeArtifactsList(t *testing.T, arts []*ci.Artifact, spaced bool) string {
	var rows []string
	for _, a := range arts {
		var exp any
		if a.ExpireAt != nil {
			exp = a.ExpireAt.UnixMicro()
		}
		var fields []string
		for _, v := range []any{a.ID, a.FileType, a.FileFormat, a.Filename, a.Size, a.BlobKey, exp, a.CreatedAt.UnixMicro()} {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			fields = append(fields, string(b))
		}
		sep := ","
		if spaced {
			sep = ", "
		}
		rows = append(rows, "["+strings.Join(fields, sep)+"]")
	}
	if spaced {
		return "[" + strings.Join(rows, ", \n ") + "]"
	}
	return "[" + strings.Join(rows, ",") + "]"
}

func randomText(r *rand.Rand) string {
	pieces := []string{"a", "job.log", `"`, `\`, "/", "é", "日本", "\n", "\t", "\x01", "\u2028", "😀", " ", "<>&"}
	var b strings.Builder
	for n := r.IntN(6); n > 0; n-- {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func TestDecodeArtifactsColumnRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	j := &ci.Job{ID: 7, ProjectID: 3}
	for i := 0; i < 2000; i++ {
		var arts []*ci.Artifact
		for n := 1 + r.IntN(4); n > 0; n-- {
			a := &ci.Artifact{JobID: j.ID, ProjectID: j.ProjectID, ID: r.Int64N(1 << 50), FileType: randomText(r), FileFormat: randomText(r),
				Filename: randomText(r), Size: r.Int64N(1<<40) - 5, BlobKey: randomText(r), CreatedAt: time.UnixMicro(r.Int64N(1 << 52)).UTC()}
			if r.IntN(2) == 0 {
				exp := time.UnixMicro(r.Int64N(1<<52) - 1<<51).UTC()
				a.ExpireAt = &exp
			}
			arts = append(arts, a)
		}
		spaced := i%2 == 1
		col := encodeArtifactsList(t, arts, spaced)
		var v any = col
		if i%3 == 0 {
			v = []byte(col)
		}
		got, err := decodeArtifactsColumn(v, j)
		if err != nil {
			t.Fatalf("%q: %v", col, err)
		}
		// Out-of-order ids (appends committed out of order) come back sorted.
		want := slices.SortedFunc(slices.Values(arts), byArtifactID)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %+v, want %+v", col, got[0], want[0])
		}
	}
}

func TestDecodeArtifactsColumnEmptyAndBad(t *testing.T) {
	j := &ci.Job{ID: 1, ProjectID: 1}
	for _, v := range []any{nil, "[]", " [ ] ", []byte("[]")} {
		if got, err := decodeArtifactsColumn(v, j); err != nil || got != nil {
			t.Errorf("%v: %v, %v", v, got, err)
		}
	}
	for _, bad := range []any{"", "[", "[[1]]", `[[1,"a","b","c",2,"k",null,3]`, `[[1,"a","b","c",2,"k",null,3]] x`,
		`[[1,"a","b","c",2,"k",null,3],]`, `[[1,"a","b","c",2,"k",null]]`, `[["1","a","b","c",2,"k",null,3]]`,
		`[[1,"a","b","c",null,"k",null,3]]`, `[[1,"a","b","c",2,"k",4.5,3]]`, `[[1,"a\u12","b","c",2,"k",null,3]]`,
		`[[1,"unterminated`, `[[99999999999999999999,"a","b","c",2,"k",null,3]]`, 42} {
		if got, err := decodeArtifactsColumn(bad, j); err == nil {
			t.Errorf("%v: no error, got %v", bad, got)
		}
	}
}
