package logsearch

import (
	"bytes"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// matchAll feeds log to a matcher in writes of the given size.
func matchAll(log, q string, foldCase bool, write int) *lineMatcher {
	m := newLineMatcher([]byte(q), foldCase, MaxLinesPerJob)
	for i := 0; i < len(log); i += write {
		if _, err := m.Write([]byte(log[i:min(i+write, len(log))])); err != nil {
			break
		}
	}
	m.flush()
	return m
}

func TestLineMatcher(t *testing.T) {
	log := "alpha\nbeta NEEDLE one\ngamma\n\nneedle twice needle\nlast needle"
	for _, write := range []int{1, 2, 3, 7, 64, len(log)} {
		m := matchAll(log, "needle", false, write)
		want := []Line{{Offset: 29, Match: 29, Text: "needle twice needle"}, {Offset: 49, Match: 54, Text: "last needle"}}
		if !slices.Equal(m.lines, want) {
			t.Errorf("write %d: %+v", write, m.lines)
		}
		m = matchAll(log, "NEEDLE", true, write)
		if len(m.lines) != 3 || m.lines[0].Text != "beta NEEDLE one" {
			t.Errorf("write %d, fold: %+v", write, m.lines)
		}
	}
	// Lines past the cap are counted, not kept; reading stops.
	m := matchAll(strings.Repeat("x needle\n", 100), "needle", false, 10)
	if len(m.lines) != MaxLinesPerJob || !m.more {
		t.Errorf("cap: %d lines, more=%v", len(m.lines), m.more)
	}
	// A long line is shown cut, with its offsets right.
	long := "start\n" + strings.Repeat("a", 5000) + "needle" + strings.Repeat("b", 5000) + "\n"
	m = matchAll(long, "needle", false, 100)
	if len(m.lines) != 1 || m.lines[0].Offset != 6 || m.lines[0].Match != 5006 || len(m.lines[0].Text) != MaxLineBytes {
		t.Errorf("long line: %+v", m.lines)
	}
	// Invalid UTF-8 is replaced, not passed on.
	m = matchAll("bad \xff needle\n", "needle", false, 3)
	if len(m.lines) != 1 || m.lines[0].Text != "bad \uFFFD needle" {
		t.Errorf("utf-8: %+v", m.lines)
	}
}

// TestSegmentNeverMissesAndPrunes builds a segment over random logs and
// checks that every log holding a string is kept (no false negatives)
// while most logs without it are ruled out.
func TestSegmentNeverMissesAndPrunes(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	logs := make([][]byte, 300)
	b := newSegmentBuilder(len(logs), 64<<10)
	for i := range logs {
		logs[i] = generateLog(r, 20<<10+r.Intn(40<<10), int64(i))
		w := b.add(int64(i + 1))
		_, _ = w.Write(logs[i][:100])
		_, _ = w.Write(logs[i][100:])
		w.finish()
	}
	seg := b.encode()
	h, err := readSegmentHeader(bytes.NewReader(seg), int64(len(seg)))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"job-id-00000042", "sha256:", "unique-marker-17", "no such text anywhere", "Zebra-Quokka"} {
		falsePositives, absent := 0, 0
		possible, err := h.mayContain(bytes.NewReader(seg), []byte(q))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range logs {
			has := bytes.Contains(bytes.ToLower(l), bytes.ToLower([]byte(q)))
			kept := slices.Contains(possible, int64(i+1))
			if has && !kept {
				t.Fatalf("%q: log %d holds it but was ruled out", q, i)
			}
			if !has {
				absent++
				if kept {
					falsePositives++
				}
			}
		}
		// Trigrams found nowhere rule a log out; the ids above share
		// theirs with every log, so only the absent strings are checked.
		if absent == len(logs) && falsePositives*20 > absent {
			t.Errorf("%q: %d false positives among %d logs without it", q, falsePositives, absent)
		}
	}
	if _, err := readSegmentHeader(bytes.NewReader(seg[:len(seg)-1]), int64(len(seg)-1)); err == nil {
		t.Error("a truncated segment was accepted")
	}
}
