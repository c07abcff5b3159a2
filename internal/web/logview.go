package web

import (
	"bytes"
	"html/template"
	"regexp"
	"strconv"
	"strings"
)

// A job log is shown as lines of styled spans. The rules (kept in step
// with static/job.js, which renders what arrives later in the browser):
// SGR colour codes become classes, other escape sequences are dropped, a
// carriage return inside a line lets the text after it overwrite the line
// (progress bars), and gitlab-runner's section_start/section_end markers
// become collapsible sections.

// logSpan is a run of text in one style.
type logSpan struct {
	Class string
	Text  string
}

// logLine is one rendered line of a log.
type logLine struct {
	Offset int64 // byte offset of the line's start in the log
	Number int   // 1-based; 0 when the lines before it were not counted
	Spans  []logSpan
	// Sections is the path of sections the line is inside, innermost last,
	// joined by "/" (the header line of a section is inside it too).
	Sections string
	// Header names the section this line opens, if any.
	Header    string
	Collapsed bool
	// Duration is a section header's run time, when its end was seen.
	Duration string
	// Hidden is set inside a section that starts collapsed.
	Hidden bool
}

var sectionMarker = regexp.MustCompile(`section_(start|end):(\d+):([A-Za-z0-9_.-]+)(\[[^\]\r\n]*\])?\r(?:\x1b\[0K)?`)

// ansiState is the current SGR style.
type ansiState struct {
	fg, bg               string // class suffixes: "1".."15" or ""
	bold, italic, underl bool
}

func (s ansiState) class() string {
	var c []string
	if s.fg != "" {
		c = append(c, "f"+s.fg)
	}
	if s.bg != "" {
		c = append(c, "b"+s.bg)
	}
	if s.bold {
		c = append(c, "bo")
	}
	if s.italic {
		c = append(c, "it")
	}
	if s.underl {
		c = append(c, "un")
	}
	return strings.Join(c, " ")
}

// apply reads one SGR parameter list.
func (s *ansiState) apply(params string) {
	if params == "" {
		*s = ansiState{}
		return
	}
	ps := strings.Split(params, ";")
	for i := 0; i < len(ps); i++ {
		n, err := strconv.Atoi(ps[i])
		if err != nil {
			continue
		}
		switch {
		case n == 0:
			*s = ansiState{}
		case n == 1:
			s.bold = true
		case n == 3:
			s.italic = true
		case n == 4:
			s.underl = true
		case n == 22:
			s.bold = false
		case n == 23:
			s.italic = false
		case n == 24:
			s.underl = false
		case n >= 30 && n <= 37:
			s.fg = strconv.Itoa(n - 30)
		case n >= 90 && n <= 97:
			s.fg = strconv.Itoa(n - 90 + 8)
		case n == 39:
			s.fg = ""
		case n >= 40 && n <= 47:
			s.bg = strconv.Itoa(n - 40)
		case n >= 100 && n <= 107:
			s.bg = strconv.Itoa(n - 100 + 8)
		case n == 49:
			s.bg = ""
		case (n == 38 || n == 48) && i+2 < len(ps) && ps[i+1] == "5":
			// 256 colours: the first 16 map to the palette, the rest are dropped.
			c, _ := strconv.Atoi(ps[i+2])
			v := ""
			if c >= 0 && c < 16 {
				v = strconv.Itoa(c)
			}
			if n == 38 {
				s.fg = v
			} else {
				s.bg = v
			}
			i += 2
		case (n == 38 || n == 48) && i+4 < len(ps) && ps[i+1] == "2":
			i += 4 // true colour: dropped
		}
	}
}

// logRenderer turns log bytes into lines; its style and open sections
// carry from one line to the next.
type logRenderer struct {
	style    ansiState
	sections []string
	starts   map[string]struct {
		line int
		at   int64
	}
	lines     []logLine
	collapsed map[string]bool
}

// renderLog renders data, which starts at byte offset start of the log
// (on a line boundary); firstLine is the number of its first line, or 0
// when unknown. A final line without its newline is rendered too.
func renderLog(data []byte, start int64, firstLine int) []logLine {
	r := &logRenderer{}
	off := start
	n := firstLine
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line = data[:i]
		}
		r.line(line, off, n)
		adv := len(line)
		if i >= 0 {
			adv++
		}
		off += int64(adv)
		data = data[adv:]
		if n > 0 {
			n++
		}
	}
	return r.lines
}

func (r *logRenderer) line(raw []byte, offset int64, number int) {
	out := logLine{Offset: offset, Number: number}
	text := string(bytes.TrimSuffix(raw, []byte{'\r'}))
	// Section markers first: their carriage return is part of the marker.
	var ended []string
	var markers [][]string
	if strings.Contains(text, "section_") {
		markers = sectionMarker.FindAllStringSubmatch(text, -1)
		text = sectionMarker.ReplaceAllString(text, "")
	}
	for _, m := range markers {
		name := m[3]
		at, _ := strconv.ParseInt(m[2], 10, 64)
		if m[1] == "start" {
			r.sections = append(r.sections, name)
			out.Header = name
			out.Collapsed = strings.Contains(m[4], "collapsed=true")
			if out.Collapsed {
				if r.collapsed == nil {
					r.collapsed = map[string]bool{}
				}
				r.collapsed[name] = true
			}
			if r.starts == nil {
				r.starts = map[string]struct {
					line int
					at   int64
				}{}
			}
			r.starts[name] = struct {
				line int
				at   int64
			}{len(r.lines), at}
			continue
		}
		if s, ok := r.starts[name]; ok {
			r.lines[s.line].Duration = formatSectionDuration(at - s.at)
			delete(r.starts, name)
		}
		ended = append(ended, name)
	}
	out.Sections = strings.Join(r.sections, "/")
	for _, name := range r.sections {
		if r.collapsed[name] && name != out.Header {
			out.Hidden = true
		}
	}
	for _, name := range ended {
		for i := len(r.sections) - 1; i >= 0; i-- {
			if r.sections[i] == name {
				r.sections = r.sections[:i]
				delete(r.collapsed, name)
				break
			}
		}
	}
	if i := strings.LastIndexByte(text, '\r'); i >= 0 {
		text = text[i+1:]
	}
	out.Spans = r.spans(text)
	if out.Header == "" && len(ended) > 0 && len(out.Spans) == 0 {
		return // a bare section_end line shows nothing
	}
	r.lines = append(r.lines, out)
}

// spans splits text at escape sequences, applying SGR ones.
func (r *logRenderer) spans(text string) []logSpan {
	var out []logSpan
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, logSpan{Class: r.style.class(), Text: cur.String()})
			cur.Reset()
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == 0x1b {
			if i+1 < len(text) && text[i+1] == '[' {
				j := i + 2
				for j < len(text) && (text[j] >= '0' && text[j] <= '9' || text[j] == ';' || text[j] == '?') {
					j++
				}
				if j < len(text) {
					if text[j] == 'm' {
						flush()
						r.style.apply(text[i+2 : j])
					}
					i = j
					continue
				}
			}
			continue
		}
		if c < 0x20 && c != '\t' {
			continue
		}
		cur.WriteByte(c)
	}
	flush()
	return out
}

func formatSectionDuration(sec int64) string {
	if sec < 0 {
		sec = 0
	}
	return strconv.FormatInt(sec/60, 10) + "m " + strconv.FormatInt(sec%60, 10) + "s"
}

// linesHTML writes lines as the job page shows them. It is written by hand
// rather than by a template: a screen of log is thousands of elements,
// which html/template renders several times slower. Every text and
// attribute value goes through HTMLEscapeString.
func linesHTML(lines []logLine) template.HTML {
	var b strings.Builder
	esc := template.HTMLEscapeString
	for _, l := range lines {
		id := "O" + strconv.FormatInt(l.Offset, 10)
		num := ""
		if l.Number > 0 {
			num = strconv.Itoa(l.Number)
			id = "L" + num
		}
		b.WriteString(`<div class="ln`)
		if l.Header != "" {
			b.WriteString(` sh`)
		}
		b.WriteString(`" id="` + id + `" data-o="` + strconv.FormatInt(l.Offset, 10) + `"`)
		if l.Sections != "" {
			b.WriteString(` data-s="` + esc(l.Sections) + `"`)
		}
		if l.Hidden {
			b.WriteString(` hidden`)
		}
		b.WriteString(`><a class="n" href="#` + id + `">` + num + `</a>`)
		if l.Header != "" {
			expanded := "true"
			if l.Collapsed {
				expanded = "false"
			}
			b.WriteString(`<button type="button" class="tog" aria-expanded="` + expanded + `" aria-label="Toggle section ` + esc(l.Header) + `"></button>`)
		}
		b.WriteString(`<span class="t">`)
		for _, sp := range l.Spans {
			if sp.Class == "" {
				b.WriteString(esc(sp.Text))
				continue
			}
			b.WriteString(`<span class="` + sp.Class + `">` + esc(sp.Text) + `</span>`)
		}
		b.WriteString(`</span>`)
		if l.Duration != "" {
			b.WriteString(`<span class="sd">` + esc(l.Duration) + `</span>`)
		}
		b.WriteString("</div>\n")
	}
	return template.HTML(b.String())
}
