package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func init() {
	extra["LogSearch"] = testLogSearch
}

// testLogSearch: archived logs wait on the pending list until a segment
// takes them; candidates are the builds with a log, newest first.
func testLogSearch(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, pl := seedProject(t, st)
	var jobs []*ci.Job
	for i, status := range []ci.JobStatus{ci.StatusSuccess, ci.StatusFailed, ci.StatusRunning, ci.StatusSuccess, ci.StatusSuccess} {
		ref := "main"
		if i == 3 {
			ref = "v1"
		}
		j := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "j", Stage: "s", Status: status,
			Ref: ref, CreatedAt: t0.Add(time.Duration(i) * time.Hour)}))
		if i != 4 { // the last has no log
			ok[int64](t)(st.AppendTrace(ctx, j.ID, 0, []byte("log text")))
		}
		jobs = append(jobs, j)
	}
	ids := func(cs []store.LogCandidate) (out []int64) {
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	for _, c := range []struct {
		f    store.LogSearchFilter
		want []int64
	}{
		{store.LogSearchFilter{}, []int64{jobs[3].ID, jobs[2].ID, jobs[1].ID, jobs[0].ID}},
		{store.LogSearchFilter{Statuses: []ci.JobStatus{ci.StatusRunning, ci.StatusFailed}}, []int64{jobs[2].ID, jobs[1].ID}},
		{store.LogSearchFilter{Ref: "v1"}, []int64{jobs[3].ID}},
		{store.LogSearchFilter{CreatedAfter: t0, CreatedBefore: t0.Add(3 * time.Hour)}, []int64{jobs[2].ID, jobs[1].ID}},
		{store.LogSearchFilter{BeforeID: jobs[2].ID, Limit: 1}, []int64{jobs[1].ID}},
	} {
		c.f.ProjectID = p.ID
		if c.f.Limit == 0 {
			c.f.Limit = 10
		}
		got := ok[[]store.LogCandidate](t)(st.LogSearchCandidates(ctx, c.f))
		if !slices.Equal(ids(got), c.want) || got[0].TraceSize != 8 {
			t.Errorf("candidates %+v: %v, want %v", c.f, ids(got), c.want)
		}
	}
	// Archiving puts a log on the pending list; a segment takes it off.
	var records []store.TraceArchive
	for _, j := range []*ci.Job{jobs[0], jobs[1]} {
		records = append(records, store.TraceArchive{JobID: j.ID, ProjectID: p.ID, BlobKey: "k", Size: 8, SHA256: "x", CreatedAt: t0})
	}
	ok[store.RecordedTraceArchives](t)(st.RecordTraceArchives(ctx, records, nil))
	pending := ok[[]store.PendingLog](t)(st.PendingLogs(ctx, 0, 0, 10))
	if len(pending) != 2 || pending[0].JobID != jobs[0].ID || pending[1].Size != 8 || !pending[0].CreatedAt.Equal(t0) {
		t.Fatalf("pending %+v", pending)
	}
	if after := ok[[]store.PendingLog](t)(st.PendingLogs(ctx, p.ID, jobs[0].ID, 10)); len(after) != 1 || after[0].JobID != jobs[1].ID {
		t.Errorf("pending after the first: %+v", after)
	}
	seg := ok[*store.LogSegment](t)(st.RecordLogSegment(ctx, store.LogSegment{ProjectID: p.ID, BlobKey: "seg", FirstJobID: jobs[0].ID, LastJobID: jobs[0].ID,
		JobIDs: []int64{jobs[0].ID}, Logs: 1, LogBytes: 8, IndexBytes: 100, CreatedAt: t0}))
	if pending := ok[[]store.PendingLog](t)(st.PendingLogs(ctx, 0, 0, 10)); len(pending) != 1 || pending[0].JobID != jobs[1].ID {
		t.Errorf("pending after the segment: %+v", pending)
	}
	// A log already taken (by another node's segment) refuses the whole segment.
	if _, err := st.RecordLogSegment(ctx, store.LogSegment{ProjectID: p.ID, BlobKey: "dup", FirstJobID: jobs[0].ID, LastJobID: jobs[1].ID,
		JobIDs: []int64{jobs[0].ID, jobs[1].ID}, Logs: 2, CreatedAt: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Errorf("a segment over an indexed log: %v", err)
	}
	if pending := ok[[]store.PendingLog](t)(st.PendingLogs(ctx, 0, 0, 10)); len(pending) != 1 {
		t.Errorf("a refused segment took logs off the list: %+v", pending)
	}
	segs := ok[[]store.LogSegment](t)(st.LogSegments(ctx, p.ID, jobs[0].ID, jobs[3].ID))
	if len(segs) != 1 || segs[0].ID != seg.ID || segs[0].BlobKey != "seg" || segs[0].IndexBytes != 100 {
		t.Errorf("segments %+v", segs)
	}
	if segs := ok[[]store.LogSegment](t)(st.LogSegments(ctx, p.ID, jobs[1].ID, jobs[3].ID)); len(segs) != 0 {
		t.Errorf("a segment outside the range: %+v", segs)
	}
}
