package web

import (
	"strings"
	"testing"
)

func lineText(l logLine) string {
	var b strings.Builder
	for _, s := range l.Spans {
		b.WriteString(s.Text)
	}
	return b.String()
}

func TestRenderLogColoursAndCarriageReturns(t *testing.T) {
	log := "\x1b[0KRunning\n\x1b[32;1m$ make\x1b[0;m plain\n10%\r50%\r100%\n\x1b[31mred\n still red\x1b[0m\x1b[?25h\nno newline"
	lines := renderLog([]byte(log), 0, 1)
	if len(lines) != 6 {
		t.Fatalf("%d lines: %+v", len(lines), lines)
	}
	if got := lineText(lines[0]); got != "Running" || lines[0].Number != 1 || lines[0].Offset != 0 {
		t.Fatalf("line 1: %q %+v", got, lines[0])
	}
	l2 := lines[1]
	if len(l2.Spans) != 2 || l2.Spans[0].Class != "f2 bo" || l2.Spans[0].Text != "$ make" || l2.Spans[1].Class != "" || l2.Spans[1].Text != " plain" {
		t.Fatalf("line 2 spans %+v", l2.Spans)
	}
	if got := lineText(lines[2]); got != "100%" {
		t.Fatalf("carriage returns: %q", got)
	}
	// The style carries over a line break until reset.
	if lines[4].Spans[0].Class != "f1" || lineText(lines[4]) != " still red" {
		t.Fatalf("carried style %+v", lines[4].Spans)
	}
	if lines[5].Number != 6 || lineText(lines[5]) != "no newline" || lines[5].Offset != int64(strings.LastIndexByte(log, '\n')+1) {
		t.Fatalf("last line %+v", lines[5])
	}
}

func TestRenderLogSections(t *testing.T) {
	log := "before\n" +
		"section_start:100:build[collapsed=true]\r\x1b[0K\x1b[36;1mBuilding\x1b[0;m\n" +
		"inside\n" +
		"section_start:101:inner\r\x1b[0KInner\n" +
		"deep\n" +
		"section_end:110:inner\r\x1b[0K\n" +
		"section_end:165:build\r\x1b[0K\n" +
		"after\n"
	lines := renderLog([]byte(log), 1000, 0)
	var texts []string
	for _, l := range lines {
		texts = append(texts, lineText(l))
	}
	if strings.Join(texts, "|") != "before|Building|inside|Inner|deep|after" {
		t.Fatalf("lines %q", texts)
	}
	h := lines[1]
	if h.Header != "build" || !h.Collapsed || h.Sections != "build" || h.Duration != "1m 5s" || h.Hidden || h.Number != 0 || h.Offset != 1007 {
		t.Fatalf("header %+v", h)
	}
	if lines[2].Sections != "build" || !lines[2].Hidden {
		t.Fatalf("body of a collapsed section %+v", lines[2])
	}
	if lines[3].Header != "inner" || lines[3].Sections != "build/inner" || lines[3].Duration != "0m 9s" || !lines[3].Hidden {
		t.Fatalf("nested header %+v", lines[3])
	}
	if lines[5].Sections != "" || lines[5].Hidden {
		t.Fatalf("after the section %+v", lines[5])
	}
}

func TestRenderLogEscapesNothingItself(t *testing.T) {
	// Text stays raw here; html/template escapes it on the page.
	lines := renderLog([]byte("<script>alert(1)</script>\x07\n"), 0, 1)
	if lineText(lines[0]) != "<script>alert(1)</script>" {
		t.Fatalf("%q", lineText(lines[0]))
	}
}
