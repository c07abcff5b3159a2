package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/joblog"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

// A process killed in the middle of archiving a log loses nothing: after a
// restart the log is served whole, the archive is recorded once and the
// chunks are deleted exactly once.
func TestLogArchiveCrash(t *testing.T) {
	for _, crash := range []struct {
		name string
		at   joblog.Step
	}{
		{"after the blob is written, before it is verified", joblog.StepBlobWritten},
		{"after the blob is verified, before the artifact row", joblog.StepVerified},
		{"after the artifact row, before the chunks are deleted", joblog.StepRecorded},
	} {
		for _, b := range testenv.Backends(t) {
			t.Run(b.Name+"/"+crash.name, func(t *testing.T) {
				ctx := context.Background()
				durable := testenv.Reopenable(t, b)
				dataDir := t.TempDir()
				n, stop := startNodeAt(t, durable.Open(t), dataDir)
				want := sampleLog(250_000)
				pid, jobID, pieces := n.crashArchiving(t, "crash", want, crash.at)
				if _, _, err := n.app.Blobs.Open(ctx, joblog.BlobKey(jobID)); err != nil {
					t.Fatalf("blob after the crash: %v", err)
				}
				_, err := n.app.Store.TraceArchiveOf(ctx, jobID)
				if recorded := err == nil; recorded != (crash.at == joblog.StepRecorded) {
					t.Fatalf("archive recorded: %v (%v)", recorded, err)
				}
				// Served whole in the crashed state too.
				n.checkRanges(pid, jobID, want)
				stop()

				// The restarted node's archiver finishes the job at startup.
				n, stop = startNodeAt(t, durable.Open(t), dataDir)
				defer stop()
				waitFor(t, "the chunks deleted", func() bool { return chunkCount(t, n.app.Store, jobID) == 0 })
				// The archiver counts a job after deleting its chunks.
				waitFor(t, "the archiver to count the job", func() bool {
					st := n.app.LogArchiver.Stats()
					return st.Archived >= 1 && st.ChunksDeleted >= int64(pieces)
				})
				if st := n.app.LogArchiver.Stats(); st.Archived != 1 || st.ChunksDeleted != int64(pieces) {
					t.Fatalf("restarted archiver %+v, %d pieces sent", st, pieces)
				}
				again := &joblog.Archiver{Store: n.app.Store, Blobs: n.app.Blobs}
				if done := again.Sweep(ctx); done != 0 || again.Stats().ChunksDeleted != 0 {
					t.Fatalf("second sweep archived %d, %+v", done, again.Stats())
				}
				if arts := n.traceArtifacts(pid, jobID); len(arts) != 1 || arts[0]["size"] != float64(len(want)) {
					t.Fatalf("trace artifacts %v", arts)
				}
				n.checkRanges(pid, jobID, want)
			})
		}
	}
}

// A blob damaged after its row was recorded, while the chunks still
// exist, is rewritten from them before they go.
func TestLogArchiveRepairsDamagedBlob(t *testing.T) {
	b := testenv.Backends(t)[0]
	ctx := context.Background()
	n := startNode(t, b)
	n.app.LogArchiver.Stop()
	pid, jobID, jobToken := n.runningJob("damaged")
	want := sampleLog(100_000)
	n.appendInPieces(jobID, jobToken, want)
	n.finishJob(jobID, jobToken, "success")
	job := store.UnarchivedTrace{JobID: jobID, ProjectID: pid, Size: int64(len(want))}
	crashing := &joblog.Archiver{Store: n.app.Store, Blobs: n.app.Blobs,
		Interrupt: func(_ int64, step joblog.Step) bool { return step == joblog.StepRecorded }}
	if err := crashing.ArchiveJob(ctx, job); !errors.Is(err, joblog.ErrInterrupted) {
		t.Fatal(err)
	}
	if _, err := n.app.Blobs.Put(ctx, joblog.BlobKey(jobID), bytes.NewReader(want[:1000]), 0); err != nil {
		t.Fatal(err)
	}
	repair := &joblog.Archiver{Store: n.app.Store, Blobs: n.app.Blobs}
	if err := repair.ArchiveJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	if chunkCount(t, n.app.Store, jobID) != 0 {
		t.Fatal("chunks left")
	}
	n.checkRanges(pid, jobID, want)
}

// One sweep archives a batch of logs in one transaction; a log that grows
// after its blob was written (so the record is refused) stops only its own
// job: its blob is dropped, its chunks stay, and the next sweep archives
// it whole.
func TestLogArchiveBatchSkipsAChangedLog(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			n := startNode(t, b)
			n.app.LogArchiver.Stop()
			type ended struct {
				pid, jobID int64
				log        []byte
			}
			var jobs []ended
			for i := range 3 {
				pid, jobID, jobToken := n.runningJob(fmt.Sprintf("batch-%d", i))
				log := sampleLog(70_000 + i*1000)
				n.appendInPieces(jobID, jobToken, log)
				n.finishJob(jobID, jobToken, "success")
				jobs = append(jobs, ended{pid, jobID, log})
			}
			changed := &jobs[1]
			late := []byte("written after the blob\n")
			growing := &joblog.Archiver{Store: n.app.Store, Blobs: n.app.Blobs,
				Interrupt: func(jobID int64, step joblog.Step) bool {
					if jobID == changed.jobID && step == joblog.StepVerified {
						if _, err := n.app.Store.AppendTrace(ctx, jobID, int64(len(changed.log)), late); err != nil {
							t.Errorf("append: %v", err)
						}
						changed.log = append(changed.log, late...)
					}
					return false
				}}
			if done := growing.Sweep(ctx); done != 2 {
				t.Fatalf("first sweep archived %d logs, want 2", done)
			}
			if got := chunkCount(t, n.app.Store, changed.jobID); got == 0 {
				t.Fatal("the changed log's chunks were deleted")
			}
			if _, err := n.app.Store.TraceArchiveOf(ctx, changed.jobID); !errors.Is(err, ci.ErrNotFound) {
				t.Fatalf("the changed log's archive: %v", err)
			}
			if _, _, err := n.app.Blobs.Open(ctx, joblog.BlobKey(changed.jobID)); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("the changed log's blob: %v", err)
			}
			if again := (&joblog.Archiver{Store: n.app.Store, Blobs: n.app.Blobs}); again.Sweep(ctx) != 1 {
				t.Fatalf("second sweep: %+v", again.Stats())
			}
			for _, j := range jobs {
				if got := chunkCount(t, n.app.Store, j.jobID); got != 0 {
					t.Fatalf("job %d keeps %d chunks", j.jobID, got)
				}
				if arts := n.traceArtifacts(j.pid, j.jobID); len(arts) != 1 || arts[0]["size"] != float64(len(j.log)) {
					t.Fatalf("job %d's trace artifacts %v", j.jobID, arts)
				}
				n.checkRanges(j.pid, j.jobID, j.log)
			}
		})
	}
}

// A log small enough to be a database row is archived by the transaction
// that records it: no file is written, and a crash before the chunks are
// deleted is finished by the restarted node like any other.
func TestLogArchiveInlineCrash(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			durable := testenv.Reopenable(t, b)
			dataDir := t.TempDir()
			n, stop := startNodeAt(t, durable.Open(t), dataDir)
			want := sampleLog(3000)
			pid, jobID, _ := n.crashArchiving(t, "small", want, joblog.StepRecorded)
			if data, err := n.app.Store.SmallBlob(ctx, joblog.BlobKey(jobID)); err != nil || !bytes.Equal(data, want) {
				t.Fatalf("the recorded archive's row: %d bytes, %v", len(data), err)
			}
			checkSmallLog(t, n, pid, jobID, want)
			stop()

			n, stop = startNodeAt(t, durable.Open(t), dataDir)
			defer stop()
			waitFor(t, "the chunks deleted", func() bool { return chunkCount(t, n.app.Store, jobID) == 0 })
			checkSmallLog(t, n, pid, jobID, want)
			err := filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					return fmt.Errorf("a file was written: %s", path)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// crashArchiving runs a job named name to success with log want, sent in
// pieces, then archives it with an archiver that stops at step as a killed
// process would, and checks that every chunk is still there. The node's
// own archiver is stopped first, out of the way.
func (n *node) crashArchiving(t *testing.T, name string, want []byte, step joblog.Step) (pid, jobID int64, pieces int) {
	t.Helper()
	n.app.LogArchiver.Stop()
	pid, jobID, jobToken := n.runningJob(name)
	pieces = n.appendInPieces(jobID, jobToken, want)
	n.finishJob(jobID, jobToken, "success")
	crashing := &joblog.Archiver{Store: n.app.Store, Blobs: n.app.Blobs,
		Interrupt: func(_ int64, at joblog.Step) bool { return at == step }}
	err := crashing.ArchiveJob(context.Background(), store.UnarchivedTrace{JobID: jobID, ProjectID: pid, Size: int64(len(want))})
	if !errors.Is(err, joblog.ErrInterrupted) {
		t.Fatalf("interrupted archive: %v", err)
	}
	if got := chunkCount(t, n.app.Store, jobID); got != pieces {
		t.Fatalf("chunks after the crash: %d of %d", got, pieces)
	}
	return pid, jobID, pieces
}

// checkSmallLog reads the log whole and one range of it through the API.
func checkSmallLog(t *testing.T, n *node, pid, jobID int64, want []byte) {
	t.Helper()
	if code, _, body := n.getLog(pid, jobID, "", nil); code != 200 || !bytes.Equal(body, want) {
		t.Fatalf("whole log: %d, %d bytes of %d", code, len(body), len(want))
	}
	if code, _, body := n.getLog(pid, jobID, "", map[string]string{"Range": "bytes=100-199"}); code != 206 || !bytes.Equal(body, want[100:200]) {
		t.Fatalf("range: %d, %q", code, body)
	}
}
