package fleet

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Work is what a simulated runner does with each job it takes: its log in
// Chunks PATCH requests of ChunkSize bytes (the content names the job, so
// a log landing on the wrong job shows), an artifact archive when
// Artifacts is set, then PUT success.
type Work struct {
	Chunks    int
	ChunkSize int
	Artifacts bool
}

// ExpectedLog is the log a simulated runner writes for jobID.
func (w Work) ExpectedLog(jobID int64) []byte {
	var b bytes.Buffer
	for k := 0; k < w.Chunks; k++ {
		b.Write(w.chunk(jobID, k))
	}
	return b.Bytes()
}

func (w Work) chunk(jobID int64, k int) []byte {
	line := fmt.Sprintf("job %d chunk %d ", jobID, k)
	out := make([]byte, 0, w.ChunkSize)
	for len(out) < w.ChunkSize {
		out = append(out, line...)
	}
	out = out[:w.ChunkSize]
	out[len(out)-1] = '\n'
	return out
}

// ExpectedArtifact is the archive a simulated runner uploads for jobID.
func ExpectedArtifact(jobID int64) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	f, _ := zw.CreateHeader(&zip.FileHeader{Name: "out/result.txt", Method: zip.Store, Modified: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	fmt.Fprintf(f, "result of job %d\n", jobID)
	zw.Close()
	return b.Bytes()
}

// JobRecord is what the runners saw of one job.
type JobRecord struct {
	Claims       int             // times a runner received it (must be 1)
	AckedLog     int64           // log bytes answered 202 (or found written on a retry)
	WrittenVia   map[string]bool // node URLs its log was written through
	ArtifactAck  bool            // the upload was answered 201
	Finished     bool            // PUT success answered 200 (or the job was found succeeded)
	FinalStatus  string          // Job-Status when the runner gave up on a job it no longer runs
	QueueSeconds float64         // the payload's time_in_queue_seconds
	ReceivedAt   time.Time
}

// Ledger is shared by all simulated runners: what each job went through,
// and what the runners met on the way.
type Ledger struct {
	mu   sync.Mutex
	jobs map[int64]*JobRecord

	Finished  atomic.Int64 // jobs whose PUT success was acknowledged
	Failovers atomic.Int64 // requests moved to another node after a connection error
	Retries   atomic.Int64 // requests sent again after a 5xx or a connection error
	status5xx sync.Map     // status code → *atomic.Int64
	// OnJob, when set, is told about every job a runner receives.
	OnJob func(jobID int64, at time.Time)
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{jobs: map[int64]*JobRecord{}} }

// Jobs returns a copy of the records by job id.
func (l *Ledger) Jobs() map[int64]JobRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int64]JobRecord, len(l.jobs))
	for id, r := range l.jobs {
		c := *r
		c.WrittenVia = map[string]bool{}
		for k, v := range r.WrittenVia {
			c.WrittenVia[k] = v
		}
		out[id] = c
	}
	return out
}

// ServerErrors counts the 5xx answers runners got, by status.
func (l *Ledger) ServerErrors() map[int]int64 {
	out := map[int]int64{}
	l.status5xx.Range(func(k, v any) bool {
		out[k.(int)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

func (l *Ledger) count5xx(code int) {
	v, _ := l.status5xx.LoadOrStore(code, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (l *Ledger) update(jobID int64, f func(r *JobRecord)) {
	l.mu.Lock()
	r := l.jobs[jobID]
	if r == nil {
		r = &JobRecord{WrittenVia: map[string]bool{}}
		l.jobs[jobID] = r
	}
	f(r)
	l.mu.Unlock()
}

// Runner is one simulated runner. It prefers URLs[first] and moves to the
// next URL when a node does not answer (connection refused or dropped),
// as a load balancer would; 5xx answers are retried with backoff.
type Runner struct {
	Token    string
	SystemID string
	URLs     []string
	Work     Work
	Ledger   *Ledger

	cur        int
	client     *http.Client
	lastUpdate string
	requests   atomic.Int64
}

// NewRunner makes a runner preferring URLs[first].
func NewRunner(token, systemID string, urls []string, first int, w Work, l *Ledger) *Runner {
	return &Runner{Token: token, SystemID: systemID, URLs: urls, cur: first % len(urls), Work: w, Ledger: l,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}}
}

// Requests is how many HTTP requests the runner has sent.
func (r *Runner) Requests() int64 { return r.requests.Load() }

type answer struct {
	code   int
	header http.Header
	body   []byte
	via    string
}

// send retries until a node answers with something other than a 5xx, or
// ctx ends. body builds the request body afresh for each try.
func (r *Runner) send(ctx context.Context, method, path string, body func() (io.Reader, string), hdr map[string]string) (answer, error) {
	backoff := 25 * time.Millisecond
	for {
		base := r.URLs[r.cur]
		rd, ctype := body()
		req, err := http.NewRequestWithContext(ctx, method, base+"/api/v4"+path, rd)
		if err != nil {
			return answer{}, err
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		r.requests.Add(1)
		res, err := r.client.Do(req)
		if err == nil {
			raw, rerr := io.ReadAll(res.Body)
			res.Body.Close()
			if rerr == nil && res.StatusCode < 500 {
				return answer{code: res.StatusCode, header: res.Header, body: raw, via: base}, nil
			}
			if rerr == nil {
				r.Ledger.count5xx(res.StatusCode)
			}
		}
		if ctx.Err() != nil {
			return answer{}, ctx.Err()
		}
		if err != nil {
			// The node is gone (or its connection dropped): try the next.
			r.cur = (r.cur + 1) % len(r.URLs)
			r.Ledger.Failovers.Add(1)
		}
		r.Ledger.Retries.Add(1)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return answer{}, ctx.Err()
		}
		backoff = min(2*backoff, time.Second)
	}
}

func jsonBody(v any) func() (io.Reader, string) {
	b, _ := json.Marshal(v)
	return func() (io.Reader, string) { return bytes.NewReader(b), "application/json" }
}

// Run takes and works jobs until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := r.Step(ctx); err != nil && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// Step asks for one job and works it if one comes.
func (r *Runner) Step(ctx context.Context) error {
	id, token, err := r.Poll(ctx)
	if err != nil || id == 0 {
		return err
	}
	r.work(ctx, id, token)
	return nil
}

// Poll asks for a job once (held by the server while there is none); it
// returns id 0 when none came.
func (r *Runner) Poll(ctx context.Context) (int64, string, error) {
	body := map[string]any{"token": r.Token, "system_id": r.SystemID, "info": map[string]any{"name": "fleet", "version": "17.9.3"}}
	if r.lastUpdate != "" {
		body["last_update"] = r.lastUpdate
	}
	a, err := r.send(ctx, "POST", "/jobs/request", jsonBody(body), nil)
	if err != nil {
		return 0, "", err
	}
	switch a.code {
	case http.StatusNoContent:
		r.lastUpdate = a.header.Get("X-GitLab-Last-Update")
		return 0, "", nil
	case http.StatusCreated:
	default:
		return 0, "", fmt.Errorf("jobs/request: %d %s", a.code, a.body)
	}
	var p struct {
		ID      int64  `json:"id"`
		Token   string `json:"token"`
		JobInfo struct {
			TimeInQueue float64 `json:"time_in_queue_seconds"`
		} `json:"job_info"`
	}
	if err := json.Unmarshal(a.body, &p); err != nil {
		return 0, "", err
	}
	now := time.Now()
	r.Ledger.update(p.ID, func(rec *JobRecord) {
		rec.Claims++
		rec.QueueSeconds, rec.ReceivedAt = p.JobInfo.TimeInQueue, now
	})
	if r.Ledger.OnJob != nil {
		r.Ledger.OnJob(p.ID, now)
	}
	return p.ID, p.Token, nil
}

// work writes the job's log, uploads its artifact and reports success,
// each step retried until the server gives a definite answer. It stops
// early if the server says the job no longer runs (403 with Job-Status).
func (r *Runner) work(ctx context.Context, id int64, token string) {
	jobPath := "/jobs/" + strconv.FormatInt(id, 10)
	var offset int64
	for k := 0; k < r.Work.Chunks; k++ {
		data := r.Work.chunk(id, k)
		end := offset + int64(len(data))
		a, err := r.send(ctx, "PATCH", jobPath+"/trace", func() (io.Reader, string) { return bytes.NewReader(data), "text/plain" },
			map[string]string{"JOB-TOKEN": token, "Content-Range": fmt.Sprintf("%d-%d", offset, end-1)})
		if err != nil {
			return
		}
		switch {
		case a.code == http.StatusAccepted:
		case a.code == http.StatusRequestedRangeNotSatisfiable && rangeEnd(a.header.Get("Range")) >= end:
			// An earlier try landed but its answer was lost.
		default:
			r.gaveUp(id, a)
			return
		}
		offset = end
		r.Ledger.update(id, func(rec *JobRecord) { rec.AckedLog = end; rec.WrittenVia[a.via] = true })
	}
	if r.Work.Artifacts {
		art := ExpectedArtifact(id)
		a, err := r.send(ctx, "POST", jobPath+"/artifacts?artifact_format=zip&artifact_type=archive", func() (io.Reader, string) {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			fw, _ := mw.CreateFormFile("file", "artifacts.zip")
			_, _ = fw.Write(art)
			mw.Close()
			return &b, mw.FormDataContentType()
		}, map[string]string{"JOB-TOKEN": token})
		if err != nil {
			return
		}
		if a.code != http.StatusCreated {
			r.gaveUp(id, a)
			return
		}
		r.Ledger.update(id, func(rec *JobRecord) { rec.ArtifactAck = true })
	}
	a, err := r.send(ctx, "PUT", jobPath, jsonBody(map[string]any{"token": token, "state": "success", "exit_code": 0}), nil)
	if err != nil {
		return
	}
	if a.code == http.StatusOK || (a.code == http.StatusForbidden && a.header.Get("Job-Status") == "success") {
		// 403 success: an earlier try finished it but its answer was lost.
		r.Ledger.update(id, func(rec *JobRecord) { rec.Finished = true })
		r.Ledger.Finished.Add(1)
		return
	}
	r.gaveUp(id, a)
}

func (r *Runner) gaveUp(id int64, a answer) {
	st := a.header.Get("Job-Status")
	if st == "" {
		st = fmt.Sprintf("answer %d %s", a.code, strings.TrimSpace(string(a.body)))
	}
	r.Ledger.update(id, func(rec *JobRecord) { rec.FinalStatus = st })
}

// rangeEnd reads the log length from a "0-N" Range header (-1 if absent).
func rangeEnd(v string) int64 {
	_, end, ok := strings.Cut(v, "-")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(end, 10, 64)
	if err != nil {
		return -1
	}
	return n
}
