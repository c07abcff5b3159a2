// Package jsonw holds the pieces shared by gantry's hand-written JSON
// encoders, which write hot documents (job lists, job payloads) without
// reflection.
package jsonw

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// String appends s as a JSON string, escaped as encoding/json escapes it
// with HTML escaping off: quotes, backslashes and control characters,
// invalid UTF-8 as U+FFFD, and U+2028 and U+2029.
func String(b []byte, s string) []byte {
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

// Float appends f formatted the way encoding/json does (shortest form;
// exponent notation below 1e-6 and from 1e21, with a one-digit negative
// exponent unpadded), without its per-call allocation. NaN and infinities,
// which JSON cannot carry, become null.
func Float(b []byte, f float64) []byte {
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

// Key appends ,"name": (a name needs no escaping: callers pass literals).
func Key(b []byte, name string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// Field appends ,"name":"value".
func Field(b []byte, name, value string) []byte {
	return String(Key(b, name), value)
}

// Fields appends ,"name":"value" for each name and value in turn.
func Fields(b []byte, namesAndValues ...string) []byte {
	for i := 0; i+1 < len(namesAndValues); i += 2 {
		b = Field(b, namesAndValues[i], namesAndValues[i+1])
	}
	return b
}

// BoolField appends ,"name":true or false.
func BoolField(b []byte, name string, v bool) []byte {
	return strconv.AppendBool(Key(b, name), v)
}

// Strings appends a string array, null when nil.
func Strings(b []byte, v []string) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, s)
	}
	return append(b, ']')
}
