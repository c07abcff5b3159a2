package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/httpapi"
	"gantry/internal/joblog"
	"gantry/internal/logsearch"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

// searchEnv is a seeded server with a blob store, where logs can be
// archived and indexed.
type searchEnv struct {
	*env
	blobs   blob.Store
	indexer *logsearch.Indexer
}

func eachSearchBackend(t *testing.T, fn func(t *testing.T, e *searchEnv)) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			fx := testenv.Seed(t, st)
			blobs := &blob.FS{Root: t.TempDir()}
			api := httpapi.New(httpapi.Config{ExternalURL: externalURL, Version: "17.9.3"}, httpapi.Deps{Store: st, Blobs: blobs, Now: func() time.Time { return testenv.T0 }})
			srv := httptest.NewServer(api.Handler())
			t.Cleanup(srv.Close)
			ix := &logsearch.Indexer{Store: st, Blobs: blobs, Logs: &joblog.Reader{Store: st, Blobs: blobs}, Now: func() time.Time { return testenv.T0 }}
			fn(t, &searchEnv{env: &env{t: t, st: st, fx: fx, srv: srv}, blobs: blobs, indexer: ix})
		})
	}
}

// logJob adds a build with log text; archived logs are moved into the
// blob store (and stay pending for the indexer).
func (e *searchEnv) logJob(t *testing.T, status ci.JobStatus, ref string, created time.Time, text string, archive bool) *ci.Job {
	t.Helper()
	ctx := t.Context()
	j, err := e.st.InsertJob(ctx, ci.Job{ProjectID: e.fx.Project.ID, PipelineID: e.fx.Pipeline.ID, Kind: ci.KindBuild, Name: "build", Stage: "test",
		StageIdx: 1, Status: status, Ref: ref, CreatedAt: created, UpdatedAt: created})
	if err != nil {
		t.Fatal(err)
	}
	// Two appends, so a live log spans chunks.
	half := len(text) / 2
	if _, err := e.st.AppendTrace(ctx, j.ID, 0, []byte(text[:half])); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.AppendTrace(ctx, j.ID, int64(half), []byte(text[half:])); err != nil {
		t.Fatal(err)
	}
	if archive {
		a := &joblog.Archiver{Store: e.st, Blobs: e.blobs, Now: func() time.Time { return testenv.T0 }}
		if err := a.ArchiveJob(ctx, store.UnarchivedTrace{JobID: j.ID, ProjectID: j.ProjectID, Size: int64(len(text))}); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

type searchHit struct {
	Job struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
		WebURL string `json:"web_url"`
	} `json:"job"`
	Lines []struct {
		Offset      int64  `json:"offset"`
		MatchOffset int64  `json:"match_offset"`
		Text        string `json:"text"`
	} `json:"lines"`
	MoreLines bool `json:"more_lines"`
}

func (e *searchEnv) search(t *testing.T, query, token string) ([]searchHit, map[string]string) {
	t.Helper()
	r := e.get("/api/v4/projects/"+pid(e.env)+"/jobs/search?"+query, token)
	expect(t, r, 200, "")
	return decodeHits(t, r), links(t, r)
}

func decodeHits(t *testing.T, r response) []searchHit {
	t.Helper()
	var hits []searchHit
	if err := json.Unmarshal(r.body, &hits); err != nil {
		t.Fatalf("search answer: %v: %s", err, r.body)
	}
	return hits
}

func hitIDs(hits []searchHit) []int64 {
	out := make([]int64, len(hits))
	for i, h := range hits {
		out[i] = h.Job.ID
	}
	return out
}

func TestLogSearch(t *testing.T) {
	eachSearchBackend(t, func(t *testing.T, e *searchEnv) {
		dev := e.fx.Tokens["developer"]
		t1 := testenv.T0.Add(time.Hour)
		logs := map[string]string{
			"live":    "step 1\nfetching needle-xyz from cache\nok\n",
			"indexed": "compile\nerror: Needle-XYZ missing\nwarning: needle-xyz deprecated\ndone",
			"pending": "needle-xyz at start\n" + strings.Repeat("filler line\n", 500) + "tail needle-xyz",
			"absent":  strings.Repeat("nothing to see here\n", 100),
		}
		absent := e.logJob(t, ci.StatusFailed, "main", t1, logs["absent"], true)
		indexed := e.logJob(t, ci.StatusSuccess, "main", t1.Add(time.Hour), logs["indexed"], true)
		if n, err := e.indexer.Sweep(t.Context(), true); err != nil || n != 2 {
			t.Fatalf("index: %d logs, %v", n, err)
		}
		pending := e.logJob(t, ci.StatusSuccess, "v1.0.0", t1.Add(2*time.Hour), logs["pending"], true)
		live := e.logJob(t, ci.StatusRunning, "main", t1.Add(3*time.Hour), logs["live"], false)
		text := map[int64]string{live.ID: logs["live"], indexed.ID: logs["indexed"], pending.ID: logs["pending"], absent.ID: logs["absent"]}

		hits, l := e.search(t, "q=needle-xyz", dev)
		if got := hitIDs(hits); !slices.Equal(got, []int64{live.ID, pending.ID, indexed.ID}) {
			t.Fatalf("q=needle-xyz: %v", got)
		}
		if len(l) != 0 {
			t.Errorf("a complete answer has no next link: %v", l)
		}
		// Every line is the log's own bytes at its offsets.
		for _, h := range hits {
			log := text[h.Job.ID]
			for _, line := range h.Lines {
				end := strings.IndexByte(log[line.Offset:], '\n')
				if end < 0 {
					end = len(log) - int(line.Offset)
				}
				if log[line.Offset:line.Offset+int64(end)] != line.Text || !strings.HasPrefix(log[line.MatchOffset:], "needle-xyz") {
					t.Errorf("job %d: line %+v does not match the log", h.Job.ID, line)
				}
			}
			if !strings.HasSuffix(h.Job.WebURL, fmt.Sprintf("/-/jobs/%d", h.Job.ID)) {
				t.Errorf("web_url %s", h.Job.WebURL)
			}
		}
		if n := len(hits[1].Lines); n != 2 || hits[1].Lines[0].Offset != 0 {
			t.Errorf("pending log lines: %+v", hits[1].Lines)
		}
		if n := len(hits[2].Lines); n != 1 {
			t.Errorf("case-sensitive search matched %d lines of the indexed log", n)
		}
		// Case-insensitive search, through the same index.
		hits, _ = e.search(t, "q=NEEDLE-xyz&case_insensitive=true", dev)
		if got := hitIDs(hits); !slices.Equal(got, []int64{live.ID, pending.ID, indexed.ID}) || len(hits[2].Lines) != 2 {
			t.Fatalf("case_insensitive: %v", got)
		}
		hits, _ = e.search(t, "q=Needle-XYZ", dev)
		if got := hitIDs(hits); !slices.Equal(got, []int64{indexed.ID}) {
			t.Errorf("q=Needle-XYZ: %v", got)
		}
		// Filters.
		for q, want := range map[string][]int64{
			"q=needle-xyz&scope[]=running":                                               {live.ID},
			"q=needle-xyz&scope[]=success&scope[]=failed":                                {pending.ID, indexed.ID},
			"q=needle-xyz&ref=v1.0.0":                                                    {pending.ID},
			"q=needle-xyz&created_after=" + t1.Add(90*time.Minute).Format(time.RFC3339):  {live.ID, pending.ID},
			"q=needle-xyz&created_before=" + t1.Add(90*time.Minute).Format(time.RFC3339): {indexed.ID},
			"q=nothing+to+see": {absent.ID},
			"q=not-in-any-log": nil,
		} {
			hits, _ := e.search(t, q, dev)
			if got := hitIDs(hits); !slices.Equal(got, want) {
				t.Errorf("%s: got %v, want %v", q, got, want)
			}
		}
		// Pages, newest first, through the Link header.
		var walked []int64
		path := "/api/v4/projects/" + pid(e.env) + "/jobs/search?q=needle-xyz&per_page=1"
		for i := 0; path != ""; i++ {
			if i > 10 {
				t.Fatal("search pages do not end")
			}
			r := e.get(path, dev)
			expect(t, r, 200, "")
			walked = append(walked, hitIDs(decodeHits(t, r))...)
			path = ""
			if next := links(t, r)["next"]; next != "" {
				path = follow(t, next)
			}
		}
		if !slices.Equal(walked, []int64{live.ID, pending.ID, indexed.ID}) {
			t.Errorf("paged search: %v", walked)
		}
		// A log with more matching lines than shown says so.
		many := e.logJob(t, ci.StatusSuccess, "main", t1.Add(4*time.Hour), strings.Repeat("again needle-xyz\n", 30), true)
		hits, _ = e.search(t, "q=needle-xyz&per_page=1", dev)
		if len(hits) != 1 || hits[0].Job.ID != many.ID || len(hits[0].Lines) != logsearch.MaxLinesPerJob || !hits[0].MoreLines {
			t.Errorf("capped lines: %+v", hits)
		}
		// Permissions: as reading a job log.
		base := "/api/v4/projects/" + pid(e.env) + "/jobs/search?q=needle-xyz"
		expect(t, e.get(base, e.fx.Tokens["reporter"]), 200, "")
		expect(t, e.get(base, e.fx.Tokens["guest"]), 403, `{"message":"403 Forbidden"}`)
		expect(t, e.get(base, e.fx.Tokens["outsider"]), 404, `{"message":"404 Project Not Found"}`)
		expect(t, e.get(base, ""), 401, `{"message":"401 Unauthorized"}`)
		// Bad input.
		expect(t, e.get("/api/v4/projects/"+pid(e.env)+"/jobs/search", dev), 400, `{"error":"q is missing"}`)
		tooShort := `{"error":"q must be 3 to 256 bytes long"}`
		expect(t, e.get(base[:len(base)-len("needle-xyz")]+"ab", dev), 400, tooShort)
		expect(t, e.get(base[:len(base)-len("needle-xyz")]+strings.Repeat("a", 257), dev), 400, tooShort)
		for q, msg := range map[string]string{
			"&created_after=soon":       `{"error":"created_after is invalid"}`,
			"&case_insensitive=perhaps": `{"error":"case_insensitive is invalid"}`,
			"&cursor=!!!":               `{"error":"cursor is invalid"}`,
			"&scope[]=bogus":            `{"error":"scope does not have a valid value"}`,
			"&per_page=abc":             `{"error":"per_page is invalid"}`,
		} {
			expect(t, e.get(base+q, dev), 400, msg)
		}
		expect(t, e.get("/api/v4/projects/999999/jobs/search?q=ab", dev), 400, tooShort)
	})
}
