package storetest

import (
	"context"
	"errors"
	"testing"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func init() {
	extra["TraceArchive"] = testTraceArchive
}

// testTraceArchive walks a log from chunks to its archive record, with the
// guards that keep an acknowledged byte from being lost on the way.
func testTraceArchive(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, pl := seedProject(t, st)
	j := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "j", Stage: "s", Status: ci.StatusRunning, Ref: "main", CreatedAt: t0}))
	other := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "k", Stage: "s", Status: ci.StatusRunning, Ref: "main", CreatedAt: t0}))
	for _, piece := range []string{"aaa", "bbb", "cc"} {
		size := ok[int64](t)(st.TraceSize(ctx, j.ID))
		ok[int64](t)(st.AppendTrace(ctx, j.ID, size, []byte(piece)))
	}
	ok[int64](t)(st.AppendTrace(ctx, other.ID, 0, []byte("other")))

	starts := func(cs []store.TraceChunk) (out []int64) {
		for _, c := range cs {
			out = append(out, c.Start)
		}
		return out
	}
	for _, c := range []struct {
		from, to int64
		max      int
		want     []int64
	}{
		{0, 8, 10, []int64{0, 3, 6}},
		{4, 5, 10, []int64{3}},
		{5, 8, 10, []int64{3, 6}},
		{6, 8, 1, []int64{6}},
		{0, 8, 2, []int64{0, 3}},
		{8, 8, 10, nil},
	} {
		got := starts(ok[[]store.TraceChunk](t)(st.TraceChunks(ctx, j.ID, c.from, c.to, c.max)))
		if len(got) != len(c.want) || (len(got) > 0 && (got[0] != c.want[0] || got[len(got)-1] != c.want[len(c.want)-1])) {
			t.Fatalf("chunks of [%d,%d) max %d: %v, want %v", c.from, c.to, c.max, got, c.want)
		}
	}
	if cs := ok[[]store.TraceChunk](t)(st.TraceChunks(ctx, j.ID, 6, 8, 1)); string(cs[0].Data) != "cc" {
		t.Fatalf("chunk data %q", cs[0].Data)
	}

	if u := ok[[]store.UnarchivedTrace](t)(st.UnarchivedTraces(ctx, 0, 10)); len(u) != 0 {
		t.Fatalf("running jobs listed as unarchived: %v", u)
	}
	ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusRunning, To: ci.StatusSuccess, Now: t0}))
	u := ok[[]store.UnarchivedTrace](t)(st.UnarchivedTraces(ctx, 0, 10))
	if len(u) != 1 || u[0] != (store.UnarchivedTrace{JobID: j.ID, ProjectID: p.ID, Size: 8}) {
		t.Fatalf("unarchived %v", u)
	}
	if u := ok[[]store.UnarchivedTrace](t)(st.UnarchivedTraces(ctx, j.ID, 10)); len(u) != 0 {
		t.Fatalf("unarchived after job %d: %v", j.ID, u)
	}
	if n := ok[int64](t)(st.DeleteArchivedTraceChunks(ctx, j.ID)); n != 0 {
		t.Fatalf("chunks deleted before the archive was recorded: %d", n)
	}
	if _, err := st.TraceArchiveOf(ctx, j.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("archive before recording: %v", err)
	}
	rec := store.TraceArchive{JobID: j.ID, ProjectID: p.ID, BlobKey: "traces/x.log", Size: 7, SHA256: "abc", CreatedAt: t0}
	if _, err := st.RecordTraceArchive(ctx, rec); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("archive of the wrong length: %v", err)
	}
	rec.Size = 8
	if !ok[bool](t)(st.RecordTraceArchive(ctx, rec)) {
		t.Fatal("first record not inserted")
	}
	if ok[bool](t)(st.RecordTraceArchive(ctx, rec)) {
		t.Fatal("second record inserted")
	}
	got := ok[*store.TraceArchive](t)(st.TraceArchiveOf(ctx, j.ID))
	if *got != rec {
		t.Fatalf("archive %+v, want %+v", got, rec)
	}
	arts := ok[map[int64][]*ci.Artifact](t)(st.ArtifactsByJobIDs(ctx, []int64{j.ID}))[j.ID]
	if len(arts) != 1 || arts[0].FileType != "trace" || arts[0].FileFormat != "raw" || arts[0].Filename != "job.log" || arts[0].Size != 8 {
		t.Fatalf("artifacts %+v", arts)
	}
	if _, err := st.AppendTrace(ctx, j.ID, 8, []byte("late")); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("append after archiving: %v", err)
	}
	if n := ok[int64](t)(st.DeleteArchivedTraceChunks(ctx, j.ID)); n != 3 {
		t.Fatalf("deleted %d chunks", n)
	}
	if n := ok[int64](t)(st.DeleteArchivedTraceChunks(ctx, j.ID)); n != 0 {
		t.Fatalf("deleted %d chunks twice", n)
	}
	if n := ok[int64](t)(st.TraceSize(ctx, j.ID)); n != 8 {
		t.Fatalf("size after archiving %d", n)
	}
	if u := ok[[]store.UnarchivedTrace](t)(st.UnarchivedTraces(ctx, 0, 10)); len(u) != 0 {
		t.Fatalf("unarchived after archiving %v", u)
	}
	if b := ok[[]byte](t)(st.ReadTrace(ctx, other.ID)); string(b) != "other" {
		t.Fatalf("other job's log %q", b)
	}
}
