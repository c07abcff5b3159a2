package joblog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/store"
)

// Step is a point in archiving one log, in the order they happen.
type Step int

const (
	// StepBlobWritten: the log's bytes are in the blob store.
	StepBlobWritten Step = iota + 1
	// StepVerified: the blob was read back with the right size and sha256.
	StepVerified
	// StepRecorded: the trace artifact row points at the blob.
	StepRecorded
	// StepChunksDeleted: the live chunks are gone.
	StepChunksDeleted
)

// ErrInterrupted is returned when the Interrupt hook stops archiving.
var ErrInterrupted = errors.New("joblog: archiving interrupted")

// Archiver moves the logs of ended jobs from chunks into one blob each.
// Every step can be repeated, so a crash anywhere is repaired by the next
// run: the chunks stay the source of truth until the archive is written,
// verified and recorded, and only then are they deleted.
type Archiver struct {
	Store store.Store
	Blobs blob.Store
	Log   *slog.Logger
	Now   func() time.Time
	// Interval is how often it looks for ended jobs it was not told about
	// (jobs ended by another node or by a path that does not wake it).
	Interval time.Duration
	// Interrupt, when set, is asked after each step whether to stop there,
	// as a crash would (tests use it). With it set, recording the archives
	// and deleting the chunks take a transaction each, so that it can stop
	// between them.
	Interrupt func(jobID int64, step Step) bool
	// Gate, when set, is asked before each sweep of the started worker;
	// nodes sharing a database archive only where it says yes (two nodes
	// archiving one log at once could overwrite a good archive with a
	// short one), see package lease.
	Gate func() bool

	archived, chunksDeleted atomic.Int64

	wake       chan struct{}
	stop, done chan struct{}
	stopOnce   sync.Once
}

// Stats counts what the archiver did since it was created.
type Stats struct {
	// Archived counts logs whose chunks it deleted after archiving them.
	Archived int64
	// ChunksDeleted counts the chunk rows it deleted.
	ChunksDeleted int64
}

// BlobKeyPrefix begins every archived log's blob key.
const BlobKeyPrefix = "traces/"

// Stats reports the counters.
func (a *Archiver) Stats() Stats {
	return Stats{Archived: a.archived.Load(), ChunksDeleted: a.chunksDeleted.Load()}
}

// BlobKey is where the log of a job is archived. A thousand jobs share a
// directory, so that archiving a log seldom has to create one. (Logs
// archived before kept theirs in traces/<id>/job.log; their artifact rows
// hold that key, and the key is never derived again once recorded.)
func BlobKey(jobID int64) string {
	return BlobKeyPrefix + strconv.FormatInt(jobID/1000, 10) + "/" + strconv.FormatInt(jobID, 10) + ".log"
}

// Start archives every pending log at once (whatever a crash left), then
// whenever woken or every Interval, until Stop or ctx ends.
func (a *Archiver) Start(ctx context.Context) {
	if a.Interval <= 0 {
		a.Interval = 30 * time.Second
	}
	a.wake, a.stop, a.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-a.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	go func() {
		defer close(a.done)
		defer cancel()
		t := time.NewTicker(a.Interval)
		defer t.Stop()
		for {
			a.Tick(ctx)
			select {
			case <-ctx.Done():
				return
			case <-a.wake:
			case <-t.C:
			}
		}
	}()
}

// Wake asks a started archiver to look for ended jobs now.
func (a *Archiver) Wake() {
	if a.wake == nil {
		return
	}
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Stop ends the worker and waits for it; safe to call twice or unstarted.
func (a *Archiver) Stop() {
	if a.stop == nil {
		return
	}
	a.stopOnce.Do(func() { close(a.stop) })
	<-a.done
}

// Tick is one round of the started worker: a sweep, if the gate allows.
// It returns how many logs it archived.
func (a *Archiver) Tick(ctx context.Context) int {
	if a.Gate != nil && !a.Gate() {
		return 0
	}
	return a.Sweep(ctx)
}

// sweepBatch is how many pending logs one query lists, and one
// transaction records.
const sweepBatch = 100

// Sweep archives the log of every ended job that still has chunks and
// returns how many it finished. A failing job is logged and skipped.
func (a *Archiver) Sweep(ctx context.Context) int {
	done := 0
	var after int64
	for ctx.Err() == nil {
		pending, err := a.Store.UnarchivedTraces(ctx, after, sweepBatch)
		if err != nil {
			a.warn(ctx, "list unarchived logs", "err", err)
			return done
		}
		for i, err := range a.archive(ctx, pending) {
			if err != nil {
				a.warn(ctx, "archive log", "job", pending[i].JobID, "err", err)
				continue
			}
			done++
		}
		if len(pending) < sweepBatch {
			return done
		}
		after = pending[len(pending)-1].JobID
	}
	return done
}

func (a *Archiver) warn(ctx context.Context, msg string, args ...any) {
	if ctx.Err() == nil && a.Log != nil {
		a.Log.Warn(msg, args...)
	}
}

func (a *Archiver) interrupted(jobID int64, step Step) bool {
	return a.Interrupt != nil && a.Interrupt(jobID, step)
}

// ArchiveJob archives one ended job's log, as Sweep does.
func (a *Archiver) ArchiveJob(ctx context.Context, p store.UnarchivedTrace) error {
	return a.archive(ctx, []store.UnarchivedTrace{p})[0]
}

// archive archives the logs of ended jobs: it writes and verifies each
// job's blob, then records the artifact rows and deletes the chunks of
// all of them in one transaction. It returns each job's outcome; a job
// that fails stops no other.
func (a *Archiver) archive(ctx context.Context, batch []store.UnarchivedTrace) []error {
	errs := make([]error, len(batch))
	ids := make([]int64, len(batch))
	for i, p := range batch {
		ids[i] = p.JobID
	}
	recorded, err := a.Store.TraceArchivesOf(ctx, ids)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	var records []store.TraceArchive
	var ready []int // the jobs whose archive is written and verified
	for i, p := range batch {
		record, err := a.writeArchive(ctx, p, recorded[p.JobID])
		if err != nil {
			errs[i] = err
			continue
		}
		if record != nil {
			records = append(records, *record)
		}
		ready = append(ready, i)
	}
	if len(ready) == 0 {
		return errs
	}
	done, err := a.record(ctx, batch, records, ready, errs)
	conflicts := map[int64]bool{}
	for _, id := range done.Conflicts {
		conflicts[id] = true
	}
	for _, r := range records {
		if conflicts[r.JobID] && r.Data == nil { // a refused inline record wrote nothing
			// The log changed under us (the job was erased): the blob
			// belongs to nothing.
			_ = a.Blobs.Delete(ctx, r.BlobKey)
		}
	}
	for _, i := range ready {
		p := batch[i]
		switch {
		case errs[i] != nil:
			continue
		case err != nil:
			errs[i] = err
			continue
		case conflicts[p.JobID]:
			errs[i] = fmt.Errorf("%w: log of job %d is no longer %d bytes long", ci.ErrConflict, p.JobID, p.Size)
			continue
		}
		n := done.ChunksDeleted[p.JobID]
		a.chunksDeleted.Add(n)
		if n > 0 {
			a.archived.Add(1)
		}
		if a.interrupted(p.JobID, StepChunksDeleted) {
			errs[i] = ErrInterrupted
		}
	}
	return errs
}

// record records the new archives and deletes the chunks of the ready
// jobs: one transaction, or two when Interrupt may stop between them (it
// sets the stopped jobs' errs).
func (a *Archiver) record(ctx context.Context, batch []store.UnarchivedTrace, records []store.TraceArchive, ready []int, errs []error) (store.RecordedTraceArchives, error) {
	var deleteChunksOf []int64
	if a.Interrupt == nil {
		for _, i := range ready {
			deleteChunksOf = append(deleteChunksOf, batch[i].JobID)
		}
		return a.Store.RecordTraceArchives(ctx, records, deleteChunksOf)
	}
	done, err := a.Store.RecordTraceArchives(ctx, records, nil)
	if err != nil {
		return done, err
	}
	for _, i := range ready {
		if a.interrupted(batch[i].JobID, StepRecorded) {
			errs[i] = ErrInterrupted
		} else {
			deleteChunksOf = append(deleteChunksOf, batch[i].JobID)
		}
	}
	deleted, err := a.Store.RecordTraceArchives(ctx, nil, deleteChunksOf)
	done.ChunksDeleted = deleted.ChunksDeleted
	return done, err
}

// writeArchive writes and verifies the blob of one job's log and returns
// the record to add, or nil when a recorded archive reads back intact.
// Steps already done by an interrupted run are checked rather than trusted.
func (a *Archiver) writeArchive(ctx context.Context, p store.UnarchivedTrace, recorded *store.TraceArchive) (*store.TraceArchive, error) {
	if recorded != nil && recorded.Size != p.Size {
		return nil, fmt.Errorf("archive of job %d holds %d bytes, the log %d", p.JobID, recorded.Size, p.Size)
	}
	if recorded != nil && a.verify(ctx, recorded.BlobKey, recorded.Size, recorded.SHA256) == nil {
		return nil, nil
	}
	// No archive yet, or a recorded one that does not read back intact:
	// the chunks still hold the log, so (re)write it.
	key := BlobKey(p.JobID)
	if recorded != nil {
		key = recorded.BlobKey
	}
	if recorded == nil && a.smallEnough(key, p.Size) {
		return a.inlineArchive(ctx, p, key)
	}
	sum, err := a.writeBlob(ctx, p, key)
	if err != nil {
		return nil, err
	}
	if a.interrupted(p.JobID, StepBlobWritten) {
		return nil, ErrInterrupted
	}
	if recorded != nil && recorded.SHA256 != sum {
		return nil, fmt.Errorf("log of job %d changed since it was archived", p.JobID)
	}
	if err := a.verify(ctx, key, p.Size, sum); err != nil {
		return nil, err
	}
	if a.interrupted(p.JobID, StepVerified) {
		return nil, ErrInterrupted
	}
	if recorded != nil {
		return nil, nil
	}
	return &store.TraceArchive{JobID: p.JobID, ProjectID: p.ProjectID, BlobKey: key, Size: p.Size, SHA256: sum, CreatedAt: a.now()}, nil
}

func (a *Archiver) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// smallEnough reports whether the log goes into the archive record itself:
// when Blobs keeps blobs of its size under key as database rows, the row
// is written by the transaction that records the archive, so there is no
// separate write and nothing to read back.
func (a *Archiver) smallEnough(key string, size int64) bool {
	t, ok := a.Blobs.(interface {
		KeepsSmall(key string, size int64) bool
	})
	return ok && t.KeepsSmall(key, size)
}

// inlineArchive reads a small log from its chunks into the record.
func (a *Archiver) inlineArchive(ctx context.Context, p store.UnarchivedTrace, key string) (*store.TraceArchive, error) {
	data, err := io.ReadAll(&chunkReader{ctx: ctx, store: a.Store, jobID: p.JobID, end: p.Size})
	if err != nil {
		return nil, fmt.Errorf("read log of job %d: %w", p.JobID, err)
	}
	if int64(len(data)) != p.Size {
		return nil, fmt.Errorf("read log of job %d: %d bytes, %d expected", p.JobID, len(data), p.Size)
	}
	sum := sha256.Sum256(data)
	return &store.TraceArchive{JobID: p.JobID, ProjectID: p.ProjectID, BlobKey: key, Size: p.Size, SHA256: hex.EncodeToString(sum[:]),
		CreatedAt: a.now(), Data: data}, nil
}

// writeBlob streams the chunks into the blob store, hashing on the way.
func (a *Archiver) writeBlob(ctx context.Context, p store.UnarchivedTrace, key string) (string, error) {
	h := sha256.New()
	chunks := &chunkReader{ctx: ctx, store: a.Store, jobID: p.JobID, end: p.Size}
	n, err := a.Blobs.Put(ctx, key, io.TeeReader(chunks, h), 0)
	if err != nil {
		return "", fmt.Errorf("write archive of job %d: %w", p.JobID, err)
	}
	if n != p.Size {
		return "", fmt.Errorf("write archive of job %d: %d bytes written, %d expected", p.JobID, n, p.Size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// verify reads the blob back and checks its size and sha256.
func (a *Archiver) verify(ctx context.Context, key string, size int64, sum string) error {
	f, stored, err := a.Blobs.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("verify %s: %w", key, err)
	}
	defer f.Close()
	if stored != size {
		return fmt.Errorf("verify %s: %d bytes stored, %d expected", key, stored, size)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("verify %s: %w", key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != sum {
		return fmt.Errorf("verify %s: sha256 %s over %d bytes, expected %s", key, got, n, sum)
	}
	return nil
}
