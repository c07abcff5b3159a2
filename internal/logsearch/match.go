package logsearch

import (
	"bytes"
	"errors"
	"strings"
)

const (
	// maxCarry bounds the unfinished line kept between writes; a longer
	// line is searched in pieces of this size.
	maxCarry = 64 << 10
	// MaxLineBytes is how much of a matching line is returned.
	MaxLineBytes = 1000
)

// errEnough stops reading a log once it has given enough lines.
var errEnough = errors.New("logsearch: enough lines")

// Line is a matching line: its first byte's offset in the log, the offset
// of the first match in it, and its text (cut to MaxLineBytes, invalid
// UTF-8 replaced).
type Line struct {
	Offset, Match int64
	Text          string
}

// lineMatcher is a writer that finds the lines holding q as a log streams
// through it, keeping at most maxLines (and noting that there were more).
type lineMatcher struct {
	q, folded  []byte // folded is q lowered, for case-insensitive search
	foldCase   bool
	maxLines   int
	pos        int64 // log offset of the next byte written
	carry      []byte
	carryStart int64
	scratch    []byte
	lines      []Line
	more       bool
}

func newLineMatcher(q []byte, foldCase bool, maxLines int) *lineMatcher {
	m := &lineMatcher{q: q, foldCase: foldCase, maxLines: maxLines}
	if foldCase {
		m.folded = foldBytes(nil, q)
	}
	return m
}

func foldBytes(dst, src []byte) []byte {
	dst = append(dst[:0], src...)
	for i, c := range dst {
		dst[i] = fold(c)
	}
	return dst
}

func (m *lineMatcher) Write(p []byte) (int, error) {
	n := len(p)
	start := m.pos
	m.pos += int64(n)
	if len(m.carry) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 && len(m.carry)+len(p) < maxCarry {
			m.carry = append(m.carry, p...)
			return n, nil
		}
		take := len(p)
		if i >= 0 {
			take = i + 1
		}
		take = min(take, maxCarry)
		m.carry = append(m.carry, p[:take]...)
		m.scan(m.carry, m.carryStart)
		m.carry = m.carry[:0]
		p, start = p[take:], start+int64(take)
	}
	if last := bytes.LastIndexByte(p, '\n'); last >= 0 {
		m.scan(p[:last+1], start)
		p, start = p[last+1:], start+int64(last+1)
	}
	for len(p) >= maxCarry { // a very long line: search it in pieces
		m.scan(p[:maxCarry], start)
		p, start = p[maxCarry:], start+maxCarry
	}
	if len(p) > 0 {
		m.carry, m.carryStart = append(m.carry[:0], p...), start
	}
	if m.more {
		return n, errEnough
	}
	return n, nil
}

// flush searches the last, unterminated line.
func (m *lineMatcher) flush() {
	if len(m.carry) > 0 && !m.more {
		m.scan(m.carry, m.carryStart)
		m.carry = m.carry[:0]
	}
}

// scan finds q in block (whole lines starting at log offset start).
func (m *lineMatcher) scan(block []byte, start int64) {
	hay, q := block, m.q
	if m.foldCase {
		m.scratch = foldBytes(m.scratch, block)
		hay, q = m.scratch, m.folded
	}
	for from := 0; from < len(hay) && !m.more; {
		i := bytes.Index(hay[from:], q)
		if i < 0 {
			return
		}
		i += from
		lineStart := bytes.LastIndexByte(hay[:i], '\n') + 1
		lineEnd := len(hay)
		if j := bytes.IndexByte(hay[i:], '\n'); j >= 0 {
			lineEnd = i + j
		}
		if len(m.lines) == m.maxLines {
			m.more = true
			return
		}
		text := block[lineStart:min(lineEnd, lineStart+MaxLineBytes)]
		m.lines = append(m.lines, Line{Offset: start + int64(lineStart), Match: start + int64(i), Text: strings.ToValidUTF8(string(text), "\uFFFD")})
		from = lineEnd + 1
	}
}
