package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/internal/joblog"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

// runningJob registers a runner, creates a one-job pipeline and takes the
// job: it returns the project, the job and its token.
func (n *node) runningJob(name string) (int64, int64, string) {
	n.t.Helper()
	token := n.newRunner()
	pid := n.setupProject(name, "job:\n  script: [make]\n")
	for i := 0; ; i++ {
		code, _, p := n.requestJob(token, "")
		if code == 201 {
			return pid, int64(p["id"].(float64)), p["token"].(string)
		}
		if i > 200 {
			n.t.Fatalf("no job to take: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// appendLog sends piece as the runner does and expects it accepted.
func (n *node) appendLog(jobID int64, jobToken string, offset int64, piece []byte) int64 {
	n.t.Helper()
	end := offset + int64(len(piece))
	code, h, body := n.raw("PATCH", fmt.Sprintf("/jobs/%d/trace", jobID), piece, map[string]string{
		"JOB-TOKEN": jobToken, "Content-Type": "text/plain", "Content-Range": fmt.Sprintf("%d-%d", offset, end-1)})
	if code != 202 || h.Get("Range") != "0-"+strconv.FormatInt(end, 10) {
		n.t.Fatalf("append at %d: %d %v %s", offset, code, h, body)
	}
	return end
}

func (n *node) finishJob(jobID int64, jobToken, state string) {
	n.t.Helper()
	b, _ := json.Marshal(map[string]string{"token": jobToken, "state": state})
	if code, _, body := n.raw("PUT", fmt.Sprintf("/jobs/%d", jobID), b, map[string]string{"Content-Type": "application/json"}); code != 200 {
		n.t.Fatalf("finish: %d %s", code, body)
	}
}

// getLog reads the trace endpoint as root, with extra headers.
func (n *node) getLog(pid, jobID int64, query string, headers map[string]string) (int, http.Header, []byte) {
	n.t.Helper()
	h := map[string]string{"PRIVATE-TOKEN": rootToken}
	for k, v := range headers {
		h[k] = v
	}
	return n.raw("GET", fmt.Sprintf("/projects/%d/jobs/%d/trace%s", pid, jobID, query), nil, h)
}

// sampleLog is a log with what real ones hold: ANSI colours, CR, CRLF,
// section markers, multibyte text, NUL bytes.
func sampleLog(size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "section_start:%d:step_%d\r\x1b[0K\x1b[32;1mline %d: héllo wörld ✓\x1b[0;m\r\n", 1700000000+i, i, i)
		if i%7 == 0 {
			b.WriteString("progress 10%\rprogress 90%\r\x00\n")
		}
	}
	return b.Bytes()[:size]
}

// appendInPieces sends the log in pieces of varying sizes.
func (n *node) appendInPieces(jobID int64, jobToken string, log []byte) int {
	n.t.Helper()
	var off int64
	pieces := 0
	for i := 0; off < int64(len(log)); i++ {
		size := int64(1000 + (i*7919)%40000)
		end := min(off+size, int64(len(log)))
		off = n.appendLog(jobID, jobToken, off, log[off:end])
		pieces++
	}
	return pieces
}

// checkRanges reads the whole log and ranges of it through HTTP.
func (n *node) checkRanges(pid, jobID int64, want []byte) {
	n.t.Helper()
	t := n.t
	size := int64(len(want))
	code, h, body := n.getLog(pid, jobID, "", nil)
	if code != 200 || !bytes.Equal(body, want) || h.Get("Content-Type") != "text/plain" || h.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("whole log: %d, %d bytes of %d, equal %v, %v", code, len(body), size, bytes.Equal(body, want), h)
	}
	for _, c := range []struct {
		rng      string
		from, to int64
	}{
		{"bytes=0-65535", 0, 65536},
		{fmt.Sprintf("bytes=%d-%d", size/2, size/2+999), size / 2, size/2 + 1000},
		{fmt.Sprintf("bytes=%d-", size-65536), size - 65536, size},
		{"bytes=-65536", size - 65536, size},
		{fmt.Sprintf("bytes=%d-%d", size-10, size+1000), size - 10, size},
		{"bytes=-" + strconv.FormatInt(size*2, 10), 0, size},
	} {
		code, h, body := n.getLog(pid, jobID, "", map[string]string{"Range": c.rng})
		wantCR := fmt.Sprintf("bytes %d-%d/%d", c.from, c.to-1, size)
		if code != 206 || h.Get("Content-Range") != wantCR || !bytes.Equal(body, want[c.from:c.to]) {
			t.Fatalf("range %s: %d %q (want %q), %d bytes, equal %v", c.rng, code, h.Get("Content-Range"), wantCR, len(body), bytes.Equal(body, want[c.from:c.to]))
		}
	}
	for _, rng := range []string{fmt.Sprintf("bytes=%d-", size), fmt.Sprintf("bytes=%d-%d", size+5, size+10), "bytes=-0"} {
		code, h, body := n.getLog(pid, jobID, "", map[string]string{"Range": rng})
		if code != 416 || h.Get("Content-Range") != fmt.Sprintf("bytes */%d", size) || !strings.Contains(string(body), `"message":"416 Range Not Satisfiable"`) {
			t.Fatalf("unsatisfiable %s: %d %v %s", rng, code, h, body)
		}
	}
	// A malformed or multi-range header is ignored: the whole log.
	if code, _, body := n.getLog(pid, jobID, "", map[string]string{"Range": "bytes=5-1"}); code != 200 || len(body) != len(want) {
		t.Fatalf("malformed range: %d, %d bytes", code, len(body))
	}
	// GitLab's own parameters.
	if code, _, body := n.getLog(pid, jobID, "?byte_offset=100&byte_limit=5000", nil); code != 200 || !bytes.Equal(body, want[100:5100]) {
		t.Fatalf("byte_offset+byte_limit: %d, %d bytes", code, len(body))
	}
	if code, _, body := n.getLog(pid, jobID, fmt.Sprintf("?byte_offset=%d", size-7), nil); code != 200 || !bytes.Equal(body, want[size-7:]) {
		t.Fatalf("byte_offset: %d %q", code, body)
	}
	if code, _, body := n.getLog(pid, jobID, fmt.Sprintf("?byte_offset=%d", size+1), nil); code != 200 || len(body) != 0 {
		t.Fatalf("byte_offset past the end: %d %q", code, body)
	}
	if code, _, body := n.getLog(pid, jobID, "?byte_offset=-1", nil); code != 400 || !strings.Contains(string(body), `"error":"byte_offset does not have a valid value"`) {
		t.Fatalf("negative byte_offset: %d %s", code, body)
	}
}

func chunkCount(t *testing.T, st store.Store, jobID int64) int {
	t.Helper()
	n := 0
	from := int64(-1) // past the log's end, TraceChunks answers its last chunk
	for {
		cs, err := st.TraceChunks(context.Background(), jobID, from+1, 1<<62, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Start > from {
				n++
				from = c.Start
			}
		}
		if len(cs) < 100 {
			return n
		}
	}
}

// traceArtifacts are the job JSON's artifacts entries of type trace.
func (n *node) traceArtifacts(pid, jobID int64) []map[string]any {
	var job struct {
		Artifacts []map[string]any `json:"artifacts"`
	}
	n.api("GET", fmt.Sprintf("/projects/%d/jobs/%d", pid, jobID), nil, &job)
	var out []map[string]any
	for _, a := range job.Artifacts {
		if a["file_type"] == "trace" {
			out = append(out, a)
		}
	}
	return out
}

func TestLogArchiveAndRanges(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			pid, jobID, jobToken := n.runningJob("logs")
			want := sampleLog(400_000)
			pieces := n.appendInPieces(jobID, jobToken, want)
			n.checkRanges(pid, jobID, want)
			if a := n.traceArtifacts(pid, jobID); len(a) != 0 {
				t.Fatalf("trace artifact while running: %v", a)
			}
			n.finishJob(jobID, jobToken, "failed")
			waitFor(t, "the log archived", func() bool { return chunkCount(t, n.app.Store, jobID) == 0 })
			arts := n.traceArtifacts(pid, jobID)
			if len(arts) != 1 || arts[0]["filename"] != "job.log" || arts[0]["file_format"] != "raw" || arts[0]["size"] != float64(len(want)) {
				t.Fatalf("trace artifacts %v", arts)
			}
			f, size, err := n.app.Blobs.Open(context.Background(), joblog.BlobKey(jobID))
			if err != nil || size != int64(len(want)) {
				t.Fatalf("archived blob: %v, %d bytes", err, size)
			}
			f.Close()
			n.checkRanges(pid, jobID, want)
			// The runner may not add to an ended job's log.
			code, _, _ := n.raw("PATCH", fmt.Sprintf("/jobs/%d/trace", jobID), []byte("late"), map[string]string{
				"JOB-TOKEN": jobToken, "Content-Range": fmt.Sprintf("%d-%d", len(want), len(want)+3)})
			if code != 403 {
				t.Fatalf("append after the end: %d", code)
			}
			// The archiver counts a job after deleting its chunks.
			waitFor(t, "the archiver to count the job", func() bool {
				st := n.app.LogArchiver.Stats()
				return st.Archived >= 1 && st.ChunksDeleted >= int64(pieces)
			})
			if st := n.app.LogArchiver.Stats(); st.Archived != 1 || st.ChunksDeleted != int64(pieces) {
				t.Fatalf("archiver stats %+v, %d pieces sent", st, pieces)
			}
		})
	}
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	event, id, data string
}

// readEvents parses an event stream as a browser's EventSource does and
// sends each event on the returned channel, closed at the end.
func readEvents(body io.Reader) <-chan sseEvent {
	out := make(chan sseEvent, 64)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		var data []string
		hasData := false
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if hasData {
					ev.data = strings.Join(data, "\n")
					out <- ev
				}
				ev, data, hasData = sseEvent{}, nil, false
				continue
			}
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.event = value
			case "id":
				ev.id = value
			case "data":
				data, hasData = append(data, value), true
			}
		}
	}()
	return out
}

// follow opens a live stream of the log.
func (n *node) follow(ctx context.Context, pid, jobID int64, lastEventID string) (*http.Response, <-chan sseEvent) {
	n.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v4/projects/%d/jobs/%d/trace?follow=true", n.base, pid, jobID), nil)
	req.Header.Set("PRIVATE-TOKEN", rootToken)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		n.t.Fatalf("follow: %d %v", res.StatusCode, res.Header)
	}
	n.t.Cleanup(func() { res.Body.Close() })
	return res, readEvents(res.Body)
}

func nextEvent(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("stream ended early")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return sseEvent{}
}

// asEvents is log as the data of events shows it: SSE has no bare CR, so
// CRLF and CR arrive as LF.
func asEvents(log []byte) string {
	return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(log))
}

// collect reads events until one carries id want, joining their data.
func collect(t *testing.T, events <-chan sseEvent, want int64) string {
	t.Helper()
	var b strings.Builder
	for {
		ev := nextEvent(t, events)
		if ev.event != "" {
			t.Fatalf("event %q before offset %d", ev.event, want)
		}
		b.WriteString(ev.data)
		id, err := strconv.ParseInt(ev.id, 10, 64)
		if err != nil || id > want {
			t.Fatalf("event id %q, want up to %d", ev.id, want)
		}
		if id == want {
			return b.String()
		}
	}
}

func TestLogFollow(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			pid, jobID, jobToken := n.runningJob("follow")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var log []byte
			add := func(piece string) {
				log = append(log, piece...)
				n.appendLog(jobID, jobToken, int64(len(log)-len(piece)), []byte(piece))
			}
			add("hello\n")
			_, events := n.follow(ctx, pid, jobID, "")
			if got := collect(t, events, 6); got != "hello\n" {
				t.Fatalf("first event %q", got)
			}
			// Appended while the stream is open; a character split across
			// two appends arrives whole, a CRLF split likewise.
			add("wor")
			if got := collect(t, events, 9); got != "wor" {
				t.Fatalf("second event %q", got)
			}
			add("ld\r")
			add("\n\xc3")
			if got := collect(t, events, 13); got != "ld\n" {
				t.Fatalf("split CRLF/character: %q", got)
			}
			add("\xa9 two\nlines\rthree\n\n")
			if got := collect(t, events, int64(len(log))); got != "é two\nlines\nthree\n\n" {
				t.Fatalf("multi-line event %q", got)
			}
			big := sampleLog(300_000)
			add(string(big))
			if got := collect(t, events, int64(len(log))); got != asEvents(big) {
				t.Fatalf("large append: %d chars of %d", len(got), len(asEvents(big)))
			}
			n.finishJob(jobID, jobToken, "success")
			end := nextEvent(t, events)
			if end.event != "end" || end.id != strconv.Itoa(len(log)) {
				t.Fatalf("end event %+v", end)
			}
			if ev, ok := <-events; ok {
				t.Fatalf("event after the end: %+v", ev)
			}
			waitFor(t, "the log archived", func() bool { return chunkCount(t, n.app.Store, jobID) == 0 })

			// Resuming after the job ended (from the archive) sends the
			// rest, then the end.
			_, events = n.follow(ctx, pid, jobID, "6")
			if got := collect(t, events, int64(len(log))); got != asEvents(log[6:]) {
				t.Fatalf("resumed: %d chars, want %d", len(got), len(asEvents(log[6:])))
			}
			if end := nextEvent(t, events); end.event != "end" {
				t.Fatalf("resumed end %+v", end)
			}
			_, events = n.follow(ctx, pid, jobID, strconv.Itoa(len(log)))
			if end := nextEvent(t, events); end.event != "end" || end.id != strconv.Itoa(len(log)) {
				t.Fatalf("resumed at the end: %+v", end)
			}
			code, _, body := n.getLog(pid, jobID, "?follow=true", map[string]string{"Last-Event-ID": "x"})
			if code != 400 || !strings.Contains(string(body), `"error":"Last-Event-ID is invalid"`) {
				t.Fatalf("bad Last-Event-ID: %d %s", code, body)
			}
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v4/projects/%d/jobs/%d/trace?follow=true", n.base, pid, jobID), nil)
			if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 401 {
				t.Fatalf("anonymous follow: %v %v", err, res)
			} else {
				res.Body.Close()
			}
		})
	}
}

// A follower that goes away frees its stream: the hub forgets it.
func TestLogFollowDisconnect(t *testing.T) {
	b := testenv.Backends(t)[0]
	n := startNode(t, b)
	pid, jobID, jobToken := n.runningJob("gone")
	n.appendLog(jobID, jobToken, 0, []byte("x\n"))
	ctx, cancel := context.WithCancel(context.Background())
	res, events := n.follow(ctx, pid, jobID, "")
	if got := collect(t, events, 2); got != "x\n" {
		t.Fatalf("event %q", got)
	}
	if n.app.LogHub.Followers(jobID) != 1 {
		t.Fatalf("followers %d", n.app.LogHub.Followers(jobID))
	}
	cancel()
	res.Body.Close()
	waitFor(t, "the follower to leave", func() bool { return n.app.LogHub.Followers(jobID) == 0 })
}
