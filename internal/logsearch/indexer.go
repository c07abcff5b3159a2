package logsearch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/joblog"
	"gantry/internal/store"
)

// Segment limits: a segment holds at most this many logs (one bit each
// per bucket) and this many log bytes.
const (
	segmentMaxLogs  = 1024
	segmentMaxBytes = 1 << 30
	pendingPage     = 1000
)

// Indexer puts archived logs into index segments in the background.
type Indexer struct {
	Store store.Store
	Blobs blob.Store
	Logs  *joblog.Reader
	Log   *slog.Logger
	Now   func() time.Time
	// Interval is how often it looks for pending logs (1 minute when 0).
	Interval time.Duration
	// A project's pending logs become a segment once there are MinLogs of
	// them (256 when 0) or the oldest has waited MaxWait (10 minutes when
	// 0), so segments stay large; search scans the logs still pending.
	MinLogs int
	MaxWait time.Duration
	// Gate, when set, is asked before each sweep of the started worker;
	// nodes sharing a database index only where it says yes (two nodes
	// indexing the same logs would build duplicate segments), see package
	// lease.
	Gate func() bool

	stop, done chan struct{}
	stopOnce   sync.Once
}

func (ix *Indexer) now() time.Time {
	if ix.Now != nil {
		return ix.Now()
	}
	return time.Now()
}

// Start sweeps every Interval until Stop or ctx ends.
func (ix *Indexer) Start(ctx context.Context) {
	interval := ix.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	ix.stop, ix.done = make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(ix.done)
		defer cancel()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ix.stop:
				return
			case <-t.C:
				if ix.Gate != nil && !ix.Gate() {
					continue
				}
				if _, err := ix.Sweep(ctx, false); err != nil && ctx.Err() == nil && ix.Log != nil {
					ix.Log.Warn("index logs", "err", err)
				}
			}
		}
	}()
}

// Stop ends the worker and waits for it; safe to call twice or unstarted.
func (ix *Indexer) Stop() {
	if ix.stop == nil {
		return
	}
	ix.stopOnce.Do(func() { close(ix.stop) })
	<-ix.done
}

// Sweep builds the segments that are due (all pending logs when force)
// and returns how many logs it indexed.
func (ix *Indexer) Sweep(ctx context.Context, force bool) (int, error) {
	minLogs, maxWait := ix.MinLogs, ix.MaxWait
	if minLogs <= 0 {
		minLogs = 256
	}
	if maxWait <= 0 {
		maxWait = 10 * time.Minute
	}
	done := 0
	var group []store.PendingLog
	var groupBytes int64
	flush := func(full bool) error {
		if len(group) == 0 {
			return nil
		}
		due := force || full || len(group) >= minLogs || ix.now().Sub(group[0].CreatedAt) >= maxWait
		if due {
			if err := ix.buildSegment(ctx, group); err != nil {
				return err
			}
			done += len(group)
		}
		group, groupBytes = nil, 0
		return nil
	}
	var afterProject, afterJob int64
	for {
		page, err := ix.Store.PendingLogs(ctx, afterProject, afterJob, pendingPage)
		if err != nil {
			return done, err
		}
		for _, p := range page {
			if len(group) > 0 && group[0].ProjectID != p.ProjectID {
				if err := flush(false); err != nil {
					return done, err
				}
			}
			group = append(group, p)
			groupBytes += p.Size
			if len(group) == segmentMaxLogs || groupBytes >= segmentMaxBytes {
				if err := flush(true); err != nil {
					return done, err
				}
			}
		}
		if len(page) < pendingPage {
			return done, flush(false)
		}
		afterProject, afterJob = page[len(page)-1].ProjectID, page[len(page)-1].JobID
	}
}

// buildSegment reads the logs, writes their segment and records it.
func (ix *Indexer) buildSegment(ctx context.Context, logs []store.PendingLog) error {
	var maxSize, total int64
	ids := make([]int64, len(logs))
	for i, l := range logs {
		maxSize, total, ids[i] = max(maxSize, l.Size), total+l.Size, l.JobID
	}
	b := newSegmentBuilder(len(logs), maxSize)
	for _, l := range logs {
		w := b.add(l.JobID)
		lg, err := ix.Logs.Open(ctx, l.JobID)
		if err != nil {
			return err
		}
		_, err = lg.CopyRange(ctx, w, 0, lg.Size())
		lg.Close()
		w.finish()
		if err != nil {
			return fmt.Errorf("index log of job %d: %w", l.JobID, err)
		}
	}
	data := b.encode()
	now := ix.now()
	key := fmt.Sprintf("log-index/%d/%d-%d-%d.seg", logs[0].ProjectID, ids[0], ids[len(ids)-1], now.UnixNano())
	if _, err := ix.Blobs.Put(ctx, key, bytes.NewReader(data), 0); err != nil {
		return err
	}
	_, err := ix.Store.RecordLogSegment(ctx, store.LogSegment{ProjectID: logs[0].ProjectID, BlobKey: key, FirstJobID: ids[0], LastJobID: ids[len(ids)-1],
		JobIDs: ids, Logs: len(ids), LogBytes: total, IndexBytes: int64(len(data)), CreatedAt: now})
	if err != nil {
		_ = ix.Blobs.Delete(ctx, key)
	}
	if errors.Is(err, ci.ErrConflict) {
		return nil // another node indexed them first; the next sweep sees what is left
	}
	return err
}
