package sqldb

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gantry/internal/ci"
)

// decodeArtifactsColumn reads jobArtifactsColumn's value: NULL, "[]", or a
// JSON array of [id, file_type, file_format, filename, size, blob_key,
// expire_at, created_at] arrays as SQLite's json_array and PostgreSQL's
// json_build_array write them. It is parsed by hand: encoding/json took
// longer than the rest of a job list page, which reads it for every job.
func decodeArtifactsColumn(v any, j *ci.Job) ([]*ci.Artifact, error) {
	var raw string // the parsed strings share its memory
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		raw = v
	case []byte:
		raw = string(v)
	default:
		return nil, fmt.Errorf("artifacts column: unexpected %T", v)
	}
	p := artifactsListParser{s: raw}
	var out []*ci.Artifact
	p.expect('[')
	if p.peek() == ']' {
		p.i++
	} else {
		for p.err == nil {
			out = append(out, p.artifact(j))
			if p.peek() == ',' {
				p.i++
				continue
			}
			p.expect(']')
			break
		}
	}
	if p.err == nil && p.peek() != 0 {
		p.fail("trailing data")
	}
	if p.err != nil {
		return nil, fmt.Errorf("artifacts column at byte %d: %w", p.i, p.err)
	}
	// PostgreSQL appends concurrent inserts in commit order, which can
	// differ from id order.
	if !slices.IsSortedFunc(out, byArtifactID) {
		slices.SortFunc(out, byArtifactID)
	}
	return out, nil
}

func byArtifactID(a, b *ci.Artifact) int { return cmp.Compare(a.ID, b.ID) }

type artifactsListParser struct {
	s   string
	i   int
	err error
}

func (p *artifactsListParser) fail(what string) {
	if p.err == nil {
		p.err = errors.New(what)
	}
}

// peek skips white space and returns the next byte, 0 at the end.
func (p *artifactsListParser) peek() byte {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; c {
		case ' ', '\n', '\t', '\r':
			p.i++
		default:
			return c
		}
	}
	return 0
}

func (p *artifactsListParser) expect(c byte) {
	if p.err != nil {
		return
	}
	if p.peek() != c {
		p.fail(fmt.Sprintf("want %q", c))
		return
	}
	p.i++
}

func (p *artifactsListParser) artifact(j *ci.Job) *ci.Artifact {
	a := &ci.Artifact{JobID: j.ID, ProjectID: j.ProjectID}
	p.expect('[')
	a.ID, _ = p.int(false)
	p.expect(',')
	a.FileType = p.str()
	p.expect(',')
	a.FileFormat = p.str()
	p.expect(',')
	a.Filename = p.str()
	p.expect(',')
	a.Size, _ = p.int(false)
	p.expect(',')
	a.BlobKey = p.str()
	p.expect(',')
	if exp, ok := p.int(true); ok {
		t := fromMicros(exp)
		a.ExpireAt = &t
	}
	p.expect(',')
	created, _ := p.int(false)
	a.CreatedAt = fromMicros(created)
	p.expect(']')
	return a
}

// int reads an integer, or null where nullable (ok false).
func (p *artifactsListParser) int(nullable bool) (v int64, ok bool) {
	if p.err != nil {
		return 0, false
	}
	p.peek()
	if nullable && strings.HasPrefix(p.s[p.i:], "null") {
		p.i += 4
		return 0, false
	}
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	v, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
	if err != nil {
		p.fail("want an integer")
		return 0, false
	}
	return v, true
}

// str reads a string; one with escapes goes through encoding/json.
func (p *artifactsListParser) str() string {
	if p.err != nil {
		return ""
	}
	if p.peek() != '"' {
		p.fail(`want '"'`)
		return ""
	}
	start := p.i
	p.i++
	escaped := false
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '"':
			p.i++
			if !escaped {
				return p.s[start+1 : p.i-1]
			}
			var s string
			if err := json.Unmarshal([]byte(p.s[start:p.i]), &s); err != nil {
				p.fail(err.Error())
			}
			return s
		case '\\':
			escaped = true
			p.i++ // the escaped byte cannot end the string
		}
		p.i++
	}
	p.fail("unterminated string")
	return ""
}
