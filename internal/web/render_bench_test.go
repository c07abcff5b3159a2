package web

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/httpapi"
)

// BenchmarkRenderTail measures rendering the job page's first screen of
// log (renderLog and the template), apart from reading it.
func BenchmarkRenderTail(b *testing.B) {
	var log bytes.Buffer
	for line := 1; log.Len() < tailBytes; line++ {
		if line%1000 == 1 {
			fmt.Fprintf(&log, "section_start:1:step_%d\r\x1b[0K\x1b[36;1mStep %d\x1b[0;m\n", line, line)
		}
		fmt.Fprintf(&log, "\x1b[32;1m$ ./run --step %d\x1b[0;m output line %d with some ordinary text to fill the width of a terminal\n", line, line)
	}
	s, err := New(Config{}, Deps{API: httpapi.New(httpapi.Config{}, httpapi.Deps{})})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("renderLog", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			renderLog(log.Bytes(), 0, 1)
		}
	})
	now := time.Now()
	data := jobPageData{Job: &ci.Job{ID: 1, Name: "build", Status: ci.StatusSuccess, CreatedAt: now}, Pipeline: &ci.Pipeline{ID: 1},
		Log: logWindow{Lines: renderLog(log.Bytes(), 0, 1)}, Base: "/g/p/-/jobs/1"}
	b.Run("template", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var out bytes.Buffer
			if err := s.pages["job"].ExecuteTemplate(&out, "layout", page{Title: "t", Project: &ci.Project{FullPath: "g/p"}, Data: data}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
