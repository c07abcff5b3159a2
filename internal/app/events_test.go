package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gantry/internal/app"
	"gantry/internal/config"
	"gantry/internal/testenv"
)

// statusEvent is one event of a project's event stream, data decoded.
type statusEvent struct {
	event, id string
	data      map[string]any
}

// sseStream reads a live event stream on its own goroutine.
type sseStream struct {
	t      *testing.T
	events <-chan sseEvent
}

// openStream opens GET path as an EventSource would; header adds to it.
func openStream(t *testing.T, n *node, path string, header map[string]string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", n.base+"/api/v4"+path, nil)
	req.Header.Set("PRIVATE-TOKEN", rootToken)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		raw, _ := io.ReadAll(res.Body)
		t.Fatalf("stream %s: %d %s", path, res.StatusCode, raw)
	}
	t.Cleanup(func() { res.Body.Close() })
	return &sseStream{t: t, events: readEvents(res.Body)}
}

// next is the stream's next event (failing the test if none comes).
func (s *sseStream) next() statusEvent {
	s.t.Helper()
	select {
	case e, ok := <-s.events:
		if !ok {
			s.t.Fatal("the stream ended")
		}
		out := statusEvent{event: e.event, id: e.id}
		if err := json.Unmarshal([]byte(e.data), &out.data); err != nil {
			s.t.Fatalf("event data %q: %v", e.data, err)
		}
		return out
	case <-time.After(10 * time.Second):
		s.t.Fatal("timed out waiting for an event")
	}
	return statusEvent{}
}

// summary is "kind previous→status" for comparing sequences.
func (e statusEvent) summary() string {
	prev, _ := e.data["previous_status"].(string)
	return fmt.Sprintf("%s %s→%s", e.event, prev, e.data["status"])
}

// ciProject creates a project and returns its id and the files route.
func ciProject(n *node, name string) (int64, string) {
	var proj struct{ ID int64 }
	n.api("POST", "/projects", map[string]any{"name": name}, &proj)
	return proj.ID, fmt.Sprintf("/projects/%d/repository/files/", proj.ID)
}

// commitCI commits a one-job configuration; the commit creates a pipeline.
func commitCI(t *testing.T, n *node, files string) {
	t.Helper()
	if code := n.api("POST", files+".gitlab-ci.yml", map[string]any{"branch": "main", "content": "build:\n  stage: test\n  script: [make]\n",
		"commit_message": "ci"}, nil); code != 201 {
		t.Fatalf("commit %d", code)
	}
}

func TestEventStream(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			pid, files := ciProject(n, "events")
			stream := fmt.Sprintf("/projects/%d/events/stream", pid)
			for _, c := range []struct {
				query, accept string
				code          int
				body          string
			}{
				{"", "application/json", 406, `"message":"406 Not Acceptable`},
				{"?status[]=bogus", "text/event-stream", 400, `{"error":"status does not have a valid value"}`},
				{"?type=build", "text/event-stream", 400, `{"error":"type does not have a valid value"}`},
			} {
				req, _ := http.NewRequest("GET", n.base+"/api/v4"+stream+c.query, nil)
				req.Header.Set("PRIVATE-TOKEN", rootToken)
				req.Header.Set("Accept", c.accept)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != c.code || !strings.Contains(string(raw), c.body) {
					t.Errorf("%s: %d %s, want %d %s", c.query, res.StatusCode, raw, c.code, c.body)
				}
			}

			all := openStream(t, n, stream, nil)
			canceled := openStream(t, n, stream+"?type=pipeline&status[]=canceled&status[]=failed", nil)
			commitCI(t, n, files)
			first, second := all.next(), all.next()
			if first.summary() != "job created→pending" || second.summary() != "pipeline created→pending" {
				t.Fatalf("events %s, %s", first.summary(), second.summary())
			}
			pipelineID := int64(second.data["id"].(float64))
			d := first.data
			if d["name"] != "build" || d["stage"] != "test" || d["ref"] != "main" || len(d["sha"].(string)) != 40 || int64(d["pipeline_id"].(float64)) != pipelineID ||
				int64(d["project_id"].(float64)) != pid || d["created_at"] == nil || d["at"] == nil || first.id != strconv.FormatInt(int64(d["event_id"].(float64)), 10) {
				t.Fatalf("job event %s %+v", first.id, d)
			}
			if n.api("POST", fmt.Sprintf("/projects/%d/pipelines/%d/cancel", pid, pipelineID), nil, nil) != 200 {
				t.Fatal("cancel")
			}
			if got := []string{all.next().summary(), all.next().summary()}; got[0] != "job pending→canceled" || got[1] != "pipeline pending→canceled" {
				t.Fatalf("after cancel: %v", got)
			}
			// The filtered stream saw only the pipeline's cancellation.
			if e := canceled.next(); e.summary() != "pipeline pending→canceled" {
				t.Fatalf("filtered stream: %s", e.summary())
			}

			// Resuming after the first event replays the rest, in order.
			resumed := openStream(t, n, stream, map[string]string{"Last-Event-ID": first.id})
			var replay []string
			for range 3 {
				replay = append(replay, resumed.next().summary())
			}
			if strings.Join(replay, ", ") != "pipeline created→pending, job pending→canceled, pipeline pending→canceled" {
				t.Fatalf("replay %v", replay)
			}
		})
	}
}

// A stream on one node sees the status changes another node makes, told
// by a notification (the streams' polling is out of reach).
func TestEventStreamAcrossNodes(t *testing.T) {
	a, b := startCluster(t)
	pid, files := ciProject(b, "cluster-events")
	s := openStream(t, a, fmt.Sprintf("/projects/%d/events/stream", pid), nil)
	commitCI(t, b, files)
	if got := []string{s.next().summary(), s.next().summary()}; got[0] != "job created→pending" || got[1] != "pipeline created→pending" {
		t.Fatalf("events %v", got)
	}
}

// hookReceiver is an HTTP endpoint on loopback that answers the statuses
// of answers in turn (the last one repeats) and keeps what it received.
type hookReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	answers  []int
	requests []receivedHook
}

type receivedHook struct {
	header http.Header
	body   []byte
}

func newHookReceiver(t *testing.T, answers ...int) *hookReceiver {
	r := &hookReceiver{answers: answers}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, receivedHook{header: req.Header.Clone(), body: body})
		code := r.answers[min(len(r.requests), len(r.answers))-1]
		r.mu.Unlock()
		w.WriteHeader(code)
		fmt.Fprintf(w, "answer %d", code)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) received() []receivedHook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedHook(nil), r.requests...)
}

type hookLogJSON struct {
	State          string            `json:"state"`
	Attempts       int               `json:"attempts"`
	ResponseStatus string            `json:"response_status"`
	ResponseBody   string            `json:"response_body"`
	Trigger        string            `json:"trigger"`
	RequestHeaders map[string]string `json:"request_headers"`
	RequestData    map[string]any    `json:"request_data"`
	Error          string            `json:"error"`
}

func TestWebhookDeliveries(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			clock := &fakeClock{}
			n := serveNode(t, b.Open(t), app.Options{Now: clock.Now}, func(*config.Config) {})
			const fullPath = "root/hooked" // the project below, in root's namespace
			pid, files := ciProject(n, "hooked")
			flaky := newHookReceiver(t, 500, 500, 200)
			pipes := newHookReceiver(t, 200)
			down := newHookReceiver(t, 503)
			var jobHook, pipeHook, downHook struct {
				ID             int64 `json:"id"`
				JobEvents      bool  `json:"job_events"`
				PipelineEvents bool  `json:"pipeline_events"`
				PushEvents     bool  `json:"push_events"`
			}
			hooks := fmt.Sprintf("/projects/%d/hooks", pid)
			if code := n.api("POST", hooks, map[string]any{"url": flaky.URL + "/ci", "token": "s3cret", "job_events": true}, &jobHook); code != 201 ||
				!jobHook.JobEvents || jobHook.PipelineEvents || !jobHook.PushEvents {
				t.Fatalf("create %d %+v", code, jobHook)
			}
			n.api("POST", hooks, map[string]any{"url": pipes.URL, "pipeline_events": true, "push_events": false}, &pipeHook)
			n.api("POST", hooks, map[string]any{"url": down.URL, "job_events": true}, &downHook)
			var e map[string]any
			if code := n.api("POST", hooks, map[string]any{"url": "ftp://example.com/x"}, &e); code != 422 || e["message"] != "Invalid url given" {
				t.Fatalf("ftp url: %d %v", code, e)
			}
			var list []map[string]any
			if n.api("GET", hooks, nil, &list); len(list) != 3 || list[0]["token"] != nil {
				t.Fatalf("list %v", list)
			}

			hookLog := func(id int64) hookLogJSON {
				var out []hookLogJSON
				n.api("GET", fmt.Sprintf("%s/%d/events", hooks, id), nil, &out)
				if len(out) != 1 {
					t.Fatalf("hook %d log: %+v", id, out)
				}
				return out[0]
			}
			attempted := func(id int64, attempts int) func() bool {
				return func() bool {
					var out []hookLogJSON
					n.api("GET", fmt.Sprintf("%s/%d/events", hooks, id), nil, &out)
					return len(out) == 1 && out[0].Attempts == attempts && (out[0].ResponseStatus != "" || out[0].Error != "")
				}
			}

			commitCI(t, n, files)
			waitFor(t, "first attempts", func() bool {
				return attempted(jobHook.ID, 1)() && attempted(downHook.ID, 1)() && len(pipes.received()) == 1
			})
			// Failed deliveries come back after 10 s, then 20, 40 and 80 s.
			for i, wait := range []time.Duration{10, 20, 40, 80} {
				clock.Advance(wait * time.Second)
				n.app.Hooks.Wake()
				waitFor(t, fmt.Sprintf("attempt %d", i+2), attempted(downHook.ID, i+2))
			}
			waitFor(t, "the flaky receiver's third attempt", attempted(jobHook.ID, 3))

			got := flaky.received()
			if len(got) != 3 {
				t.Fatalf("flaky receiver got %d requests", len(got))
			}
			for i, r := range got {
				h := r.header
				if h.Get("X-Gitlab-Event") != "Job Hook" || h.Get("X-Gitlab-Token") != "s3cret" || h.Get("Content-Type") != "application/json" ||
					h.Get("X-Gitlab-Event-UUID") == "" || h.Get("X-Gitlab-Event-UUID") != got[0].header.Get("X-Gitlab-Event-UUID") || string(r.body) != string(got[0].body) {
					t.Fatalf("attempt %d: %v %s", i+1, h, r.body)
				}
			}
			var job map[string]any
			if err := json.Unmarshal(got[0].body, &job); err != nil {
				t.Fatal(err)
			}
			commit, _ := job["commit"].(map[string]any)
			repo, _ := job["repository"].(map[string]any)
			if job["object_kind"] != "build" || job["build_status"] != "pending" || job["build_name"] != "build" || job["build_stage"] != "test" ||
				job["ref"] != "main" || int64(job["project_id"].(float64)) != pid || len(job["sha"].(string)) != 40 || commit["sha"] != job["sha"] ||
				commit["message"] != "ci" || repo["homepage"] != n.base+"/"+fullPath || job["build_started_at"] != nil ||
				!strings.HasSuffix(job["build_created_at"].(string), " UTC") {
				t.Fatalf("job hook body %s", got[0].body)
			}
			ok := hookLog(jobHook.ID)
			if ok.State != "delivered" || ok.ResponseStatus != "200" || ok.ResponseBody != "answer 200" || ok.Trigger != "job_hooks" ||
				ok.RequestHeaders["X-Gitlab-Token"] != "[REDACTED]" || ok.RequestData["build_id"] != job["build_id"] {
				t.Fatalf("delivered log %+v", ok)
			}
			// The cap: five attempts, then the delivery is given up.
			failed := hookLog(downHook.ID)
			if failed.State != "failed" || failed.Attempts != 5 || failed.ResponseStatus != "503" || !strings.Contains(failed.Error, "503") || len(down.received()) != 5 {
				t.Fatalf("given up %+v after %d requests", failed, len(down.received()))
			}

			// The official Go client reads both payloads as GitLab's.
			parsedJob, err := gitlab.ParseWebhook(gitlab.EventType(got[0].header.Get("X-Gitlab-Event")), got[0].body)
			if je, ok := parsedJob.(*gitlab.JobEvent); err != nil || !ok || je.BuildID != int64(job["build_id"].(float64)) || je.BuildStatus != "pending" || je.ProjectID != pid {
				t.Fatalf("client-go reads the job hook as %T %+v: %v", parsedJob, parsedJob, err)
			}
			pr := pipes.received()[0]
			parsedPipe, err := gitlab.ParseWebhook(gitlab.EventType(pr.header.Get("X-Gitlab-Event")), pr.body)
			if pe, ok := parsedPipe.(*gitlab.PipelineEvent); err != nil || !ok || pe.ObjectAttributes.Status != "pending" || len(pe.Builds) != 1 || pe.Builds[0].Name != "build" {
				t.Fatalf("client-go reads the pipeline hook as %T %+v: %v", parsedPipe, parsedPipe, err)
			}
			var pl map[string]any
			_ = json.Unmarshal(pr.body, &pl)
			attrs, _ := pl["object_attributes"].(map[string]any)
			builds, _ := pl["builds"].([]any)
			project, _ := pl["project"].(map[string]any)
			if pr.header.Get("X-Gitlab-Event") != "Pipeline Hook" || pr.header.Get("X-Gitlab-Token") != "" || pl["object_kind"] != "pipeline" ||
				attrs["status"] != "pending" || attrs["source"] != "push" || fmt.Sprint(attrs["stages"]) != "[test]" || len(builds) != 1 ||
				project["path_with_namespace"] != fullPath || pl["user"] == nil {
				t.Fatalf("pipeline hook %v %s", pr.header, pr.body)
			}

			// Updating and deleting hooks.
			var up map[string]any
			if code := n.api("PUT", fmt.Sprintf("%s/%d", hooks, pipeHook.ID), map[string]any{"job_events": true}, &up); code != 200 ||
				up["job_events"] != true || up["pipeline_events"] != true || up["url"] != pipes.URL {
				t.Fatalf("update %d %v", code, up)
			}
			if code := n.api("DELETE", fmt.Sprintf("%s/%d", hooks, downHook.ID), nil, nil); code != 204 {
				t.Fatalf("delete %d", code)
			}
			if code := n.api("GET", fmt.Sprintf("%s/%d", hooks, downHook.ID), nil, &e); code != 404 {
				t.Fatalf("deleted hook: %d", code)
			}
		})
	}
}
