// Package events streams a project's job and pipeline status changes as
// server-sent events. The changes come from the store's event log (written
// by the database with each change), so a stream can resume from any kept
// event id, and every node sees every change, whichever node made it.
package events

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"gantry/internal/ci"
	"gantry/internal/joblog"
	"gantry/internal/store"
)

// Filter selects the events a stream sends.
type Filter struct {
	ProjectID int64
	Kind      ci.EventKind   // "" for both
	Statuses  []ci.JobStatus // empty for all
}

// Stream serves event streams.
type Stream struct {
	Store store.Events
	// Hub is keyed by project id: a publish says the project has new events.
	Hub *joblog.Hub
	// Render turns an event into its data line (JSON, no newlines).
	Render func(*ci.StatusEvent) []byte
	// Poll is how often a stream looks for events no wake-up announced.
	Poll time.Duration
	// KeepAlive is how often an idle stream sends a comment, so proxies
	// and clients keep the connection.
	KeepAlive time.Duration
	// WriteTimeout disconnects a client that stops reading.
	WriteTimeout time.Duration
}

// Defaults of Stream's durations.
const (
	DefaultPoll         = 5 * time.Second
	DefaultKeepAlive    = 15 * time.Second
	DefaultWriteTimeout = 30 * time.Second
)

// pageSize bounds one read of the log.
const pageSize = 200

// lookback is how many ids below the newest one sent a stream reads again.
// Ids are taken when a change is written, not when it commits, so on
// PostgreSQL a concurrent transaction may commit an event with an id lower
// than one already sent; re-reading a window (and skipping what was sent)
// delivers such late events too.
const lookback = 256

// Serve streams f's events until the client goes away or the hub closes.
// With resume, it starts after the event id from (a client's
// Last-Event-ID); otherwise with the next change. Each event carries its
// id; when events after from were pruned already, a "resync" event comes
// first.
func (s *Stream) Serve(ctx context.Context, w http.ResponseWriter, f Filter, from int64, resume bool) error {
	changed, unsubscribe := s.Hub.Subscribe(f.ProjectID)
	defer unsubscribe()
	oldest, latest, err := s.Store.EventLogBounds(ctx)
	if err != nil {
		return err
	}
	if !resume {
		from = latest
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	buf.WriteString("retry: 3000\n\n")
	if resume && oldest > from+1 {
		buf.WriteString("event: resync\ndata: {\"message\":\"events after the given id are no longer kept\"}\n\n")
	}
	if err := s.flush(rc, w, &buf); err != nil {
		return err
	}
	poll := time.NewTicker(orDefault(s.Poll, DefaultPoll))
	defer poll.Stop()
	keepAlive := time.NewTicker(orDefault(s.KeepAlive, DefaultKeepAlive))
	defer keepAlive.Stop()
	floor, newest := from, from
	sent := map[int64]bool{}
	for {
		after := max(floor, newest-lookback)
		for {
			evs, err := s.Store.StatusEvents(ctx, store.EventFilter{ProjectID: f.ProjectID, Kind: f.Kind, Statuses: f.Statuses, AfterID: after, Limit: pageSize})
			if err != nil {
				return err
			}
			for _, e := range evs {
				after = e.ID
				if sent[e.ID] {
					continue
				}
				sent[e.ID] = true
				newest = max(newest, e.ID)
				writeEvent(&buf, e, s.Render(e))
			}
			if len(evs) < pageSize {
				break
			}
			if err := s.flush(rc, w, &buf); err != nil {
				return err
			}
		}
		for id := range sent {
			if id <= newest-lookback {
				delete(sent, id)
			}
		}
		if buf.Len() > 0 {
			if err := s.flush(rc, w, &buf); err != nil {
				return err
			}
			keepAlive.Reset(orDefault(s.KeepAlive, DefaultKeepAlive))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.Hub.Done():
			return nil
		case <-changed:
		case <-poll.C:
		case <-keepAlive.C:
			buf.WriteString(": keep-alive\n\n")
			if err := s.flush(rc, w, &buf); err != nil {
				return err
			}
		}
	}
}

// flush writes what buf holds within the write timeout.
func (s *Stream) flush(rc *http.ResponseController, w http.ResponseWriter, buf *bytes.Buffer) error {
	_ = rc.SetWriteDeadline(time.Now().Add(orDefault(s.WriteTimeout, DefaultWriteTimeout)))
	_, err := w.Write(buf.Bytes())
	buf.Reset()
	if err != nil {
		return err
	}
	return rc.Flush()
}

func writeEvent(b *bytes.Buffer, e *ci.StatusEvent, data []byte) {
	b.WriteString("event: " + string(e.Kind) + "\nid: " + strconv.FormatInt(e.ID, 10) + "\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
