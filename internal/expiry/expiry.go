// Package expiry deletes expired job artifacts, records first and then
// their files, sparing the artifacts GitLab's keep-latest-artifact rule
// locks (the latest successful pipeline of each ref, see store.Artifacts).
package expiry

import (
	"context"
	"log/slog"
	"time"

	"gantry/internal/blob"
	"gantry/internal/store"
)

// batchSize bounds one delete statement, so a large backlog never holds a
// long write transaction.
const batchSize = 100

// Worker sweeps every Interval until Stop or its context ends.
type Worker struct {
	store    store.Artifacts
	blobs    blob.Store
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration
	// Gate, when set, is asked before each periodic sweep; nodes sharing
	// a database sweep only where it says yes (see package lease).
	Gate func() bool
	stop chan struct{}
	done chan struct{}
}

// New builds a worker; now is the clock expiry is judged by.
func New(st store.Artifacts, blobs blob.Store, log *slog.Logger, now func() time.Time, interval time.Duration) *Worker {
	return &Worker{store: st, blobs: blobs, log: log, now: now, interval: interval}
}

// Start runs the sweeps in a goroutine; an interval of 0 runs none.
func (w *Worker) Start(ctx context.Context) {
	if w.interval <= 0 {
		return
	}
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		tick := time.NewTicker(w.interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.stop:
				return
			case <-tick.C:
				if _, err := w.Tick(ctx); err != nil && ctx.Err() == nil {
					w.log.Warn("artifact expiry", "err", err)
				}
			}
		}
	}()
}

// Stop ends the goroutine and waits for it; safe to call twice or unstarted.
func (w *Worker) Stop() {
	if w.stop == nil {
		return
	}
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Tick is one round of the started worker: a sweep, if the gate allows.
func (w *Worker) Tick(ctx context.Context) (int, error) {
	if w.Gate != nil && !w.Gate() {
		return 0, nil
	}
	return w.Sweep(ctx)
}

// Sweep deletes everything expired now, batch by batch, and returns how
// many artifacts it deleted.
func (w *Worker) Sweep(ctx context.Context) (int, error) {
	now := w.now()
	total := 0
	for {
		keys, err := w.store.DeleteExpiredArtifacts(ctx, now, batchSize)
		if err != nil {
			return total, err
		}
		total += len(keys)
		for _, k := range keys {
			// The record is gone; a file left behind is only wasted space.
			if err := w.blobs.Delete(ctx, k); err != nil {
				w.log.Warn("delete expired artifact blob", "key", k, "err", err)
			}
		}
		if len(keys) < batchSize {
			return total, nil
		}
	}
}
