package web

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"gantry/internal/ci"
)

// statusGlyphs pairs each status with a symbol; the name is always
// spelled out too, so colour is never the only signal.
var statusGlyphs = map[ci.JobStatus]string{
	ci.StatusSuccess: "✓", ci.StatusFailed: "✕", ci.StatusRunning: "▶", ci.StatusPending: "◷",
	ci.StatusCanceled: "⊘", ci.StatusCanceling: "⊘", ci.StatusSkipped: "»", ci.StatusManual: "⚙",
	ci.StatusScheduled: "⏲", ci.StatusCreated: "○", ci.StatusWaitingForResource: "◷",
	ci.StatusPreparing: "◷", ci.StatusWaitingForCallback: "◷",
}

func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"status": func(st ci.JobStatus) template.HTML {
			g := statusGlyphs[st]
			if g == "" {
				g = "?"
			}
			name := template.HTMLEscapeString(strings.ReplaceAll(string(st), "_", " "))
			return template.HTML(`<span class="st st-` + template.HTMLEscapeString(string(st)) + `"><span aria-hidden="true">` + g + `</span> ` + name + `</span>`)
		},
		"when": func(t any) template.HTML {
			var tm time.Time
			switch v := t.(type) {
			case time.Time:
				tm = v
			case *time.Time:
				if v == nil {
					return ""
				}
				tm = *v
			}
			return template.HTML(`<time datetime="` + tm.UTC().Format(time.RFC3339) + `" title="` + tm.UTC().Format("2006-01-02 15:04:05 UTC") + `">` +
				template.HTMLEscapeString(ago(s.now().Sub(tm))) + `</time>`)
		},
		"seconds": func(d *float64) string {
			if d == nil {
				return "—"
			}
			return formatSeconds(*d)
		},
		"jobDuration": func(j *ci.Job) string {
			d := j.Duration(s.now())
			if d == nil {
				return "—"
			}
			return formatSeconds(*d)
		},
		"short": func(sha string) string {
			if len(sha) > 8 {
				return sha[:8]
			}
			return sha
		},
		"bytes":   formatBytes,
		"logHTML": linesHTML,
		"ubytes":  func(n uint64) string { return formatBytes(int64(min(n, 1<<62))) },
		"join":    strings.Join,
		"itoa":    func(n int64) string { return strconv.FormatInt(n, 10) },
		"version": func() string { return s.cfg.Version },
		"seq": func(n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = i + 1
			}
			return out
		},
	}
}

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	}
	return plural(int(d/(24*time.Hour)), "day") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

func formatSeconds(sec float64) string {
	n := int64(sec)
	switch {
	case n < 60:
		return strconv.FormatInt(n, 10) + "s"
	case n < 3600:
		return fmt.Sprintf("%dm %02ds", n/60, n%60)
	}
	return fmt.Sprintf("%dh %02dm", n/3600, n%3600/60)
}

func formatBytes(n int64) string {
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
