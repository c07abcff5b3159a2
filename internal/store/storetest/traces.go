package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func init() {
	extra["TraceArchive"] = testTraceArchive
	extra["TraceArchiveBatch"] = testTraceArchiveBatch
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
	record := func(records []store.TraceArchive, deleteChunksOf ...int64) store.RecordedTraceArchives {
		t.Helper()
		return ok[store.RecordedTraceArchives](t)(st.RecordTraceArchives(ctx, records, deleteChunksOf))
	}
	if d := record(nil, j.ID).ChunksDeleted; len(d) != 0 {
		t.Fatalf("chunks deleted before the archive was recorded: %v", d)
	}
	if _, err := st.TraceArchiveOf(ctx, j.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("archive before recording: %v", err)
	}
	if m := ok[map[int64]*store.TraceArchive](t)(st.TraceArchivesOf(ctx, []int64{j.ID, other.ID})); len(m) != 0 {
		t.Fatalf("archives before recording: %v", m)
	}
	rec := store.TraceArchive{JobID: j.ID, ProjectID: p.ID, BlobKey: "traces/x.log", Size: 7, SHA256: "abc", CreatedAt: t0}
	if r := record([]store.TraceArchive{rec}, j.ID); !slices.Equal(r.Conflicts, []int64{j.ID}) || len(r.Inserted) != 0 || len(r.ChunksDeleted) != 0 {
		t.Fatalf("archive of the wrong length: %+v", r)
	}
	rec.Size = 8
	if r := record([]store.TraceArchive{rec}); !slices.Equal(r.Inserted, []int64{j.ID}) || len(r.Conflicts) != 0 {
		t.Fatalf("first record: %+v", r)
	}
	if r := record([]store.TraceArchive{rec}); len(r.Inserted) != 0 || len(r.Conflicts) != 0 {
		t.Fatalf("second record: %+v", r)
	}
	got := ok[*store.TraceArchive](t)(st.TraceArchiveOf(ctx, j.ID))
	if !reflect.DeepEqual(*got, rec) {
		t.Fatalf("archive %+v, want %+v", got, rec)
	}
	if m := ok[map[int64]*store.TraceArchive](t)(st.TraceArchivesOf(ctx, []int64{other.ID, j.ID, j.ID})); len(m) != 1 || !reflect.DeepEqual(*m[j.ID], rec) {
		t.Fatalf("archives %v, want job %d's %+v", m, j.ID, rec)
	}
	arts := ok[map[int64][]*ci.Artifact](t)(st.ArtifactsByJobIDs(ctx, []int64{j.ID}))[j.ID]
	if len(arts) != 1 || arts[0].FileType != "trace" || arts[0].FileFormat != "raw" || arts[0].Filename != "job.log" || arts[0].Size != 8 {
		t.Fatalf("artifacts %+v", arts)
	}
	if _, err := st.AppendTrace(ctx, j.ID, 8, []byte("late")); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("append after archiving: %v", err)
	}
	// The running job's chunks stay: it has no archive.
	if d := record(nil, j.ID, other.ID).ChunksDeleted; len(d) != 1 || d[j.ID] != 3 {
		t.Fatalf("deleted chunks %v", d)
	}
	if d := record(nil, j.ID).ChunksDeleted; len(d) != 0 {
		t.Fatalf("deleted chunks twice: %v", d)
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

// testTraceArchiveBatch records and deletes several jobs' logs in one call:
// a refused record stops only its own job.
func testTraceArchiveBatch(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, pl := seedProject(t, st)
	ended := func(name, log string) int64 {
		j := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: name, Stage: "s", Status: ci.StatusRunning, Ref: "main", CreatedAt: t0}))
		ok[int64](t)(st.AppendTrace(ctx, j.ID, 0, []byte(log)))
		ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusRunning, To: ci.StatusSuccess, Now: t0}))
		return j.ID
	}
	x, y, z := ended("x", "xx"), ended("y", "yyy"), ended("z", "z")
	rec := func(id, size int64) store.TraceArchive {
		return store.TraceArchive{JobID: id, ProjectID: p.ID, BlobKey: "traces/k", Size: size, SHA256: "s", CreatedAt: t0}
	}
	if r := ok[store.RecordedTraceArchives](t)(st.RecordTraceArchives(ctx, []store.TraceArchive{rec(z, 1)}, nil)); !slices.Equal(r.Inserted, []int64{z}) {
		t.Fatalf("record z: %+v", r)
	}
	r := ok[store.RecordedTraceArchives](t)(st.RecordTraceArchives(ctx, []store.TraceArchive{rec(x, 2), rec(y, 2)}, []int64{x, y, z}))
	if !slices.Equal(r.Inserted, []int64{x}) || !slices.Equal(r.Conflicts, []int64{y}) || len(r.ChunksDeleted) != 2 || r.ChunksDeleted[x] != 1 || r.ChunksDeleted[z] != 1 {
		t.Fatalf("batch: %+v", r)
	}
	if b := ok[[]byte](t)(st.ReadTrace(ctx, y)); string(b) != "yyy" {
		t.Fatalf("refused job's log %q", b)
	}
	// The refused log is not marked archived: it may still grow.
	if n := ok[int64](t)(st.AppendTrace(ctx, y, 3, []byte("!"))); n != 4 {
		t.Fatalf("refused job's log grew to %d", n)
	}
	archives := ok[map[int64]*store.TraceArchive](t)(st.TraceArchivesOf(ctx, []int64{x, y, z}))
	if len(archives) != 2 || !reflect.DeepEqual(*archives[x], rec(x, 2)) || !reflect.DeepEqual(*archives[z], rec(z, 1)) {
		t.Fatalf("archives %v", archives)
	}
	var pending []int64
	for _, l := range ok[[]store.PendingLog](t)(st.PendingLogs(ctx, 0, 0, 10)) {
		pending = append(pending, l.JobID)
	}
	slices.Sort(pending)
	if !slices.Equal(pending, []int64{x, z}) {
		t.Fatalf("logs pending for search %v, want %v", pending, []int64{x, z})
	}
	if u := ok[[]store.UnarchivedTrace](t)(st.UnarchivedTraces(ctx, 0, 10)); len(u) != 1 || u[0].JobID != y {
		t.Fatalf("unarchived %v", u)
	}
	// A record carrying the log stores it as a small blob in the same
	// transaction; a refused one stores nothing.
	w, v := ended("w", "www"), ended("v", "vv")
	inline := func(id, size int64, key, data string) store.TraceArchive {
		r := rec(id, size)
		r.BlobKey, r.Data = key, []byte(data)
		return r
	}
	r = ok[store.RecordedTraceArchives](t)(st.RecordTraceArchives(ctx, []store.TraceArchive{inline(w, 3, "traces/w", "www"), inline(v, 9, "traces/v", "vv")}, nil))
	if !slices.Equal(r.Inserted, []int64{w}) || !slices.Equal(r.Conflicts, []int64{v}) {
		t.Fatalf("inline batch: %+v", r)
	}
	if b, err := st.SmallBlob(ctx, "traces/w"); err != nil || string(b) != "www" {
		t.Fatalf("inline archive's blob: %q %v", b, err)
	}
	if _, err := st.SmallBlob(ctx, "traces/v"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("refused inline archive's blob: %v", err)
	}
	// Small blobs on their own: replace, read, delete (twice).
	if err := st.PutSmallBlob(ctx, "traces/w", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, err := st.SmallBlob(ctx, "traces/w"); err != nil || string(b) != "new" {
		t.Fatalf("replaced blob: %q %v", b, err)
	}
	for range 2 {
		if err := st.DeleteSmallBlob(ctx, "traces/w"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.SmallBlob(ctx, "traces/w"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("deleted blob: %v", err)
	}
}
