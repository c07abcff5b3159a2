package logsearch

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"

	"gantry/internal/blob"
	"gantry/internal/joblog"
	"gantry/internal/store"
)

// Limits of one search request (documented in README and COMPATIBILITY).
const (
	MinQueryBytes = 3
	MaxQueryBytes = 256
	// MaxLinesPerJob is how many matching lines a job shows.
	MaxLinesPerJob = 20
	// MaxScanBytes and MaxCandidates bound one request's work: past them
	// it answers with what it found and a cursor to continue.
	MaxScanBytes  = 2 << 30
	MaxCandidates = 50000
	// candidateBatch is how many candidate jobs one query lists.
	candidateBatch = 1000
)

// Searcher answers log searches.
type Searcher struct {
	Store store.Store
	Blobs blob.Store // nil: no segment is read, every log is scanned
	Logs  *joblog.Reader
	Log   *slog.Logger
	// Workers scan logs at once (GOMAXPROCS when 0).
	Workers int

	mu      sync.Mutex
	headers map[string]*segmentHeader // immutable once written
}

// maxCachedHeaders bounds the header cache (a header is 8 bytes per log).
const maxCachedHeaders = 4096

// Query is one search.
type Query struct {
	Filter   store.LogSearchFilter // BeforeID continues a previous page
	Text     []byte
	FoldCase bool
	Jobs     int // page size
}

// Hit is a job whose log holds the text.
type Hit struct {
	JobID int64
	Lines []Line
	More  bool // more matching lines than shown
}

// Result is a page of hits, newest job first.
type Result struct {
	Hits []Hit
	// Next, when > 0, continues the search below this job id.
	Next int64
	// Stats of the work done, for benchmarks.
	Candidates, Pruned, Scanned int
	ScannedBytes                int64
}

// Search runs q.
func (s *Searcher) Search(ctx context.Context, q Query) (*Result, error) {
	res := &Result{}
	before := q.Filter.BeforeID
	workers := s.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	for {
		f := q.Filter
		f.BeforeID, f.Limit = before, candidateBatch
		cands, err := s.Store.LogSearchCandidates(ctx, f)
		if err != nil {
			return nil, err
		}
		if len(cands) == 0 {
			return res, nil
		}
		res.Candidates += len(cands)
		keep, err := s.prune(ctx, q, cands)
		if err != nil {
			return nil, err
		}
		res.Pruned += len(cands) - len(keep)
		for len(keep) > 0 {
			window := keep[:min(len(keep), 4*workers)]
			keep = keep[len(window):]
			hits, err := s.scan(ctx, q, window, workers)
			if err != nil {
				return nil, err
			}
			res.Scanned += len(window)
			for _, c := range window {
				res.ScannedBytes += c.TraceSize
			}
			for _, h := range hits {
				res.Hits = append(res.Hits, h)
				if len(res.Hits) == q.Jobs {
					res.Next = h.JobID
					return res, nil
				}
			}
			if res.ScannedBytes >= MaxScanBytes {
				if len(keep) > 0 {
					res.Next = window[len(window)-1].ID
				} else {
					res.Next = cands[len(cands)-1].ID
				}
				return res, nil
			}
		}
		before = cands[len(cands)-1].ID
		if len(cands) < candidateBatch {
			return res, nil
		}
		if res.Candidates >= MaxCandidates {
			res.Next = before
			return res, nil
		}
	}
}

// prune drops the candidates an index segment rules out.
func (s *Searcher) prune(ctx context.Context, q Query, cands []store.LogCandidate) ([]store.LogCandidate, error) {
	if s.Blobs == nil {
		return cands, nil
	}
	segs, err := s.Store.LogSegments(ctx, q.Filter.ProjectID, cands[len(cands)-1].ID, cands[0].ID)
	if err != nil || len(segs) == 0 {
		return cands, err
	}
	indexed, possible := map[int64]bool{}, map[int64]bool{}
	for _, seg := range segs {
		ids, all, err := s.segmentMatches(ctx, seg.BlobKey, q.Text)
		if err != nil {
			// An unreadable segment only costs speed: its logs are scanned.
			if s.Log != nil && ctx.Err() == nil {
				s.Log.Warn("read log search segment", "key", seg.BlobKey, "err", err)
			}
			continue
		}
		for _, id := range all {
			indexed[id] = true
		}
		for _, id := range ids {
			possible[id] = true
		}
	}
	keep := cands[:0:0]
	for _, c := range cands {
		if !indexed[c.ID] || possible[c.ID] {
			keep = append(keep, c)
		}
	}
	return keep, nil
}

// segmentMatches returns the logs of a segment that may hold text, and all its logs.
func (s *Searcher) segmentMatches(ctx context.Context, key string, text []byte) (possible, all []int64, err error) {
	f, size, err := s.Blobs.Open(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	ra, ok := f.(interface {
		ReadAt(p []byte, off int64) (int, error)
	})
	if !ok {
		return nil, nil, errors.New("logsearch: blob reader cannot read at offsets")
	}
	s.mu.Lock()
	h := s.headers[key]
	s.mu.Unlock()
	if h == nil {
		if h, err = readSegmentHeader(ra, size); err != nil {
			return nil, nil, err
		}
		s.mu.Lock()
		if s.headers == nil || len(s.headers) >= maxCachedHeaders {
			s.headers = map[string]*segmentHeader{}
		}
		s.headers[key] = h
		s.mu.Unlock()
	}
	possible, err = h.mayContain(ra, text)
	return possible, h.jobIDs, err
}

// scan searches the logs of window at once and returns the hits in order.
func (s *Searcher) scan(ctx context.Context, q Query, window []store.LogCandidate, workers int) ([]Hit, error) {
	hits := make([]*Hit, len(window))
	errs := make([]error, len(window))
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i, c := range window {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			hits[i], errs[i] = s.scanLog(ctx, q, c.ID)
		}()
	}
	wg.Wait()
	var out []Hit
	for i, h := range hits {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if h != nil {
			out = append(out, *h)
		}
	}
	return out, nil
}

func (s *Searcher) scanLog(ctx context.Context, q Query, jobID int64) (*Hit, error) {
	l, err := s.Logs.Open(ctx, jobID)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	m := newLineMatcher(q.Text, q.FoldCase, MaxLinesPerJob)
	if _, err := l.CopyRange(ctx, m, 0, l.Size()); err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	m.flush()
	if len(m.lines) == 0 {
		return nil, nil
	}
	return &Hit{JobID: jobID, Lines: m.lines, More: m.more}, nil
}
