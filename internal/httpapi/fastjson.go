package httpapi

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Hand-written appenders for the Job entity, the hottest document the API
// writes (every list page holds up to 100). They produce the same bytes as
// encoding/json on the entity structs — TestFastJobJSONMatchesEncoder holds
// them to that — without reflection or re-validating pre-encoded parts.

func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigit[c>>4], hexDigit[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigit[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigit = "0123456789abcdef"

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

func appendTimePtr(b []byte, t *Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendTime(b, time.Time(*t))
}

func appendFloatPtr(b []byte, f *float64) []byte {
	if f == nil {
		return append(b, "null"...)
	}
	return appendJSONFloat(b, *f)
}

// appendJSONFloat formats f the way encoding/json does (shortest form;
// exponent notation below 1e-6 and from 1e21, with a one-digit negative
// exponent unpadded), without its per-call allocation. NaN and infinities,
// which JSON cannot carry, become null.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

func appendRaw(b []byte, r json.RawMessage) []byte {
	if len(r) == 0 {
		return append(b, "null"...)
	}
	return append(b, r...)
}

func (e *jobBasicEntity) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, `,"status":`...)
	b = appendStr(b, e.Status)
	b = append(b, `,"stage":`...)
	b = appendStr(b, e.Stage)
	b = append(b, `,"name":`...)
	b = appendStr(b, e.Name)
	b = append(b, `,"ref":`...)
	b = appendStr(b, e.Ref)
	b = append(b, `,"tag":`...)
	b = appendBool(b, e.Tag)
	b = append(b, `,"coverage":`...)
	b = appendFloatPtr(b, e.Coverage)
	b = append(b, `,"allow_failure":`...)
	b = appendBool(b, e.AllowFailure)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, time.Time(e.CreatedAt))
	b = append(b, `,"started_at":`...)
	b = appendTimePtr(b, e.StartedAt)
	b = append(b, `,"finished_at":`...)
	b = appendTimePtr(b, e.FinishedAt)
	b = append(b, `,"erased_at":`...)
	b = appendTimePtr(b, e.ErasedAt)
	b = append(b, `,"duration":`...)
	b = appendFloatPtr(b, e.Duration)
	b = append(b, `,"queued_duration":`...)
	b = appendFloatPtr(b, e.QueuedDuration)
	b = append(b, `,"user":`...)
	b = appendRaw(b, e.User)
	b = append(b, `,"commit":`...)
	b = appendRaw(b, e.Commit)
	b = append(b, `,"pipeline":`...)
	b = appendRaw(b, e.Pipeline)
	if e.FailureReason != "" {
		b = append(b, `,"failure_reason":`...)
		b = appendStr(b, e.FailureReason)
	}
	b = append(b, `,"web_url":`...)
	b = appendStr(b, e.WebURL)
	b = append(b, `,"project":{"ci_job_token_scope_enabled":`...)
	b = appendBool(b, e.Project.CIJobTokenScopeEnabled)
	return append(b, "}}"...)
}

// appendJSON writes the build's Job entity.
func (e *jobEntityBuild) appendJSON(b []byte, runner, manager json.RawMessage) []byte {
	b = e.jobBasicEntity.appendJSON(b)
	b = b[:len(b)-1] // reopen the object
	if e.ArtifactsFile != nil {
		b = append(b, `,"artifacts_file":{"filename":`...)
		b = appendStr(b, e.ArtifactsFile.Filename)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, e.ArtifactsFile.Size, 10)
		b = append(b, '}')
	}
	b = append(b, `,"artifacts":[`...)
	for i, a := range e.Artifacts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"file_type":`...)
		b = appendStr(b, a.FileType)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, a.Size, 10)
		b = append(b, `,"filename":`...)
		b = appendStr(b, a.Filename)
		b = append(b, `,"file_format":`...)
		b = appendStr(b, a.FileFormat)
		b = append(b, '}')
	}
	b = append(b, `],"runner":`...)
	b = appendRaw(b, runner)
	b = append(b, `,"runner_manager":`...)
	b = appendRaw(b, manager)
	b = append(b, `,"artifacts_expire_at":`...)
	b = appendTimePtr(b, e.ArtifactsExpireAt)
	b = append(b, `,"archived":`...)
	b = appendBool(b, e.Archived)
	b = append(b, `,"tag_list":[`...)
	for i, t := range e.TagList {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStr(b, t)
	}
	return append(b, "]}"...)
}
