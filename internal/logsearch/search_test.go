package logsearch_test

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/joblog"
	"gantry/internal/logsearch"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

func TestSearchIndexedAndLive(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			fx := testenv.Seed(t, st)
			t.Run("files", func(t *testing.T) { testSearch(t, st, fx, &blob.FS{Root: t.TempDir()}) })
			t.Run("s3", func(t *testing.T) {
				s3, _ := testenv.S3(t).OpenBucket(t)
				testSearch(t, st, fx, s3)
			})
		})
	}
}

func testSearch(t *testing.T, st store.Store, fx *testenv.Fixture, blobs blob.Store) {
	ctx := context.Background()
	p, err := st.CreateProject(ctx, store.CreateProjectParams{NamespaceID: fx.Group.ID, Name: "s", Path: fmt.Sprintf("s%d", time.Now().UnixNano()), Visibility: ci.Private, CreatorID: fx.Root.ID, Now: testenv.T0})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := st.InsertPipeline(ctx, ci.Pipeline{ProjectID: p.ID, SHA: fx.Pipeline.SHA, Ref: "main", Status: ci.StatusRunning, Source: ci.SourcePush, CreatedAt: testenv.T0, UpdatedAt: testenv.T0})
	if err != nil {
		t.Fatal(err)
	}
	reader := &joblog.Reader{Store: st, Blobs: blobs}
	archiver := &joblog.Archiver{Store: st, Blobs: blobs}
	r := rand.New(rand.NewSource(2))
	var ids []int64
	for i := range 40 {
		status := ci.StatusSuccess
		if i == 39 {
			status = ci.StatusRunning
		}
		j, err := st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "t", Stage: "test", Status: status, Ref: "main", CreatedAt: testenv.T0, UpdatedAt: testenv.T0})
		if err != nil {
			t.Fatal(err)
		}
		log := logsearch.GenerateLog(r, 8<<10, int64(i))
		if i%10 == 3 {
			log = append(log, "rare-marker here\n"...)
		}
		if _, err := st.AppendTrace(ctx, j.ID, 0, log); err != nil {
			t.Fatal(err)
		}
		if status != ci.StatusRunning {
			if err := archiver.ArchiveJob(ctx, store.UnarchivedTrace{JobID: j.ID, ProjectID: p.ID, Size: int64(len(log))}); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, j.ID)
	}
	ix := &logsearch.Indexer{Store: st, Blobs: blobs, Logs: reader, MinLogs: 20, MaxWait: time.Hour, Now: func() time.Time { return testenv.T0 }}
	if n, err := ix.Sweep(ctx, false); err != nil || n != 39 {
		t.Fatalf("sweep indexed %d, %v", n, err)
	}
	if n, err := ix.Sweep(ctx, false); err != nil || n != 0 {
		t.Fatalf("second sweep indexed %d, %v", n, err)
	}
	s := &logsearch.Searcher{Store: st, Blobs: blobs, Logs: reader}
	res, err := s.Search(ctx, logsearch.Query{Filter: store.LogSearchFilter{ProjectID: p.ID}, Text: []byte("rare-marker"), Jobs: 20})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, h := range res.Hits {
		got = append(got, h.JobID)
	}
	if want := []int64{ids[33], ids[23], ids[13], ids[3]}; !slices.Equal(got, want) {
		t.Fatalf("hits %v, want %v", got, want)
	}
	if res.Candidates != 40 || res.Scanned > 10 {
		t.Errorf("the index pruned too little: %+v", res)
	}
	// The live log is scanned, never ruled out.
	if _, err := st.AppendTrace(ctx, ids[39], mustSize(t, st, ids[39]), []byte("live-only text\n")); err != nil {
		t.Fatal(err)
	}
	res, err = s.Search(ctx, logsearch.Query{Filter: store.LogSearchFilter{ProjectID: p.ID}, Text: []byte("LIVE-only"), FoldCase: true, Jobs: 20})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].JobID != ids[39] {
		t.Fatalf("live search: %+v, %v", res, err)
	}
}

func mustSize(t *testing.T, st store.Store, jobID int64) int64 {
	n, err := st.TraceSize(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
