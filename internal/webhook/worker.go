// Package webhook delivers project webhooks (GitLab's job and pipeline
// events). Deliveries are rows the database queues with each status change;
// workers on every node claim due ones (each is sent by one node), POST
// them with GitLab's headers, and retry failures with exponential backoff.
package webhook

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// Config tunes deliveries; zero values take the defaults.
type Config struct {
	// ExternalURL is the base of the URLs payloads carry.
	ExternalURL string
	// UserAgent is sent with every delivery.
	UserAgent string
	// MaxAttempts caps the attempts of one delivery (default 5).
	MaxAttempts int
	// Backoff is the wait after the first failed attempt; each further
	// failure doubles it (default 10 s: retries after 10, 20, 40 and 80 s).
	Backoff time.Duration
	// Timeout bounds one request, connection to last byte (default 10 s).
	Timeout time.Duration
	// EventRetention is how long status events are kept (default 24 h).
	EventRetention time.Duration
	// LogRetention is how long finished deliveries are kept (default 7 days).
	LogRetention time.Duration
}

const (
	defaultMaxAttempts    = 5
	defaultBackoff        = 10 * time.Second
	defaultTimeout        = 10 * time.Second
	defaultEventRetention = 24 * time.Hour
	defaultLogRetention   = 7 * 24 * time.Hour
	// batch is how many deliveries one claim takes; they are sent at once.
	batch = 8
	// idleCheck bounds how long the worker sleeps: deliveries queued by
	// changes another node made wake no worker here.
	idleCheck = time.Minute
	// pruneEvery is how often old events and deliveries are deleted.
	pruneEvery = 10 * time.Minute
	// excerptBytes bounds the response body kept in the delivery log.
	excerptBytes = 1024
)

// Worker sends due deliveries until stopped.
type Worker struct {
	cfg      Config
	store    store.Store
	log      *slog.Logger
	now      func() time.Time
	client   *http.Client
	insecure *http.Client // for hooks with enable_ssl_verification off

	wake    chan struct{}
	startMu sync.Mutex
	stop    chan struct{}
	done    chan struct{}
}

// New builds a worker; Start runs it.
func New(cfg Config, st store.Store, log *slog.Logger, now func() time.Time) *Worker {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = defaultMaxAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = defaultBackoff
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.EventRetention <= 0 {
		cfg.EventRetention = defaultEventRetention
	}
	if cfg.LogRetention <= 0 {
		cfg.LogRetention = defaultLogRetention
	}
	if now == nil {
		now = time.Now
	}
	client := func(verify bool) *http.Client {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: !verify} //nolint:gosec // the hook's owner turned verification off
		return &http.Client{Transport: tr, Timeout: cfg.Timeout,
			// A redirect is an answer, not a delivery: GitLab does not follow them either.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Worker{cfg: cfg, store: st, log: log, now: now, client: client(true), insecure: client(false), wake: make(chan struct{}, 1)}
}

// Wake makes the worker look for due deliveries now; it never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Start runs the worker until Stop or ctx ends.
func (w *Worker) Start(ctx context.Context) {
	w.startMu.Lock()
	defer w.startMu.Unlock()
	if w.stop != nil {
		return
	}
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		<-w.stop
		cancel() // cuts requests in flight short
	}()
	go w.loop(ctx)
}

// Stop ends the worker and waits for it; safe to call twice.
func (w *Worker) Stop() {
	w.startMu.Lock()
	defer w.startMu.Unlock()
	if w.stop == nil {
		return
	}
	close(w.stop)
	<-w.done
	w.stop = nil
}

func (w *Worker) loop(ctx context.Context) {
	defer close(w.done)
	w.prune(ctx)
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	next := time.NewTimer(0)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			w.prune(ctx)
			continue
		case <-w.wake:
		case <-next.C:
		}
		if _, err := w.RunOnce(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("webhook deliveries", "err", err)
		}
		next.Reset(w.untilNext(ctx))
	}
}

// untilNext is how long to sleep before the next due delivery.
func (w *Worker) untilNext(ctx context.Context) time.Duration {
	at, err := w.store.NextHookAttemptAt(ctx)
	if err != nil || at == nil {
		return idleCheck
	}
	return min(max(at.Sub(w.now()), 0), idleCheck)
}

func (w *Worker) prune(ctx context.Context) {
	now := w.now()
	if _, err := w.store.PruneStatusEvents(ctx, now.Add(-w.cfg.EventRetention)); err != nil && ctx.Err() == nil {
		w.log.Warn("prune status events", "err", err)
	}
	if _, err := w.store.PruneHookDeliveries(ctx, now.Add(-w.cfg.LogRetention)); err != nil && ctx.Err() == nil {
		w.log.Warn("prune webhook deliveries", "err", err)
	}
}

// RunOnce makes an attempt at every delivery due now and returns how many
// it made.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		now := w.now()
		// A read first: most wake-ups find nothing due, and a claim is a
		// write (on SQLite, a turn of the single writer).
		due, err := w.store.NextHookAttemptAt(ctx)
		if err != nil || due == nil || due.After(now) {
			return total, err
		}
		claimed, err := w.store.ClaimHookDeliveries(ctx, now, now.Add(w.cfg.Timeout+30*time.Second), batch)
		if err != nil {
			return total, err
		}
		var wg sync.WaitGroup
		for _, c := range claimed {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.attempt(ctx, c)
			}()
		}
		wg.Wait()
		total += len(claimed)
		if len(claimed) < batch {
			break
		}
	}
	return total, nil
}

// attempt sends one delivery and records the outcome.
func (w *Worker) attempt(ctx context.Context, c *store.ClaimedDelivery) {
	d := c.Delivery
	rec := store.HookAttempt{DeliveryID: d.ID, Attempt: d.Attempts, UUID: d.UUID}
	payload := d.Payload
	if payload == nil {
		var err error
		payload, err = w.build(ctx, c.Event)
		if err != nil {
			rec.State, rec.Error, rec.Now = ci.DeliveryFailed, err.Error(), w.now()
			w.record(ctx, rec)
			return
		}
		rec.Payload, rec.UUID = payload, newUUID()
	}
	started := time.Now()
	status, excerpt, err := w.send(ctx, c.Hook, d.Kind, rec.UUID, payload)
	rec.Duration, rec.Now = time.Since(started), w.now()
	rec.ResponseExcerpt = excerpt
	if status != 0 {
		rec.ResponseStatus = &status
	}
	switch {
	case err == nil && status >= 200 && status < 300:
		rec.State = ci.DeliveryDelivered
	case ctx.Err() != nil:
		return // stopping: the lease runs out and the attempt is made again
	default:
		if err != nil {
			rec.Error = err.Error()
		} else {
			rec.Error = fmt.Sprintf("the receiver answered %d", status)
		}
		rec.State = ci.DeliveryFailed
		if d.Attempts < w.cfg.MaxAttempts {
			rec.State, rec.NextAttemptAt = ci.DeliveryPending, rec.Now.Add(w.cfg.Backoff<<(d.Attempts-1))
		}
	}
	w.record(ctx, rec)
}

func (w *Worker) record(ctx context.Context, rec store.HookAttempt) {
	err := w.store.RecordHookAttempt(ctx, rec)
	if errors.Is(err, ci.ErrConflict) {
		w.log.Info("webhook delivery taken over by another worker", "delivery", rec.DeliveryID)
	} else if err != nil && ctx.Err() == nil {
		w.log.Warn("record webhook attempt", "delivery", rec.DeliveryID, "err", err)
	}
}

func (w *Worker) build(ctx context.Context, e *ci.StatusEvent) ([]byte, error) {
	if e == nil {
		return nil, errors.New("the event is no longer kept")
	}
	b := &builder{store: w.store, externalURL: w.cfg.ExternalURL, now: w.now()}
	if e.Kind == ci.EventPipeline {
		return b.pipelinePayload(ctx, e)
	}
	return b.jobPayload(ctx, e)
}

// send POSTs payload and returns the answer's status and the start of its body.
func (w *Worker) send(ctx context.Context, h ci.ProjectHook, kind ci.EventKind, uuid string, payload []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, strings.NewReader(string(payload)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", kind.HookName())
	req.Header.Set("X-Gitlab-Event-UUID", uuid)
	req.Header.Set("X-Gitlab-Instance", w.cfg.ExternalURL)
	if w.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", w.cfg.UserAgent)
	}
	if h.Token != "" {
		req.Header.Set("X-Gitlab-Token", h.Token)
	}
	client := w.client
	if !h.EnableSSLVerification {
		client = w.insecure
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, excerptBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20)) // lets the connection be reused
	return res.StatusCode, excerpt(body), nil
}

// excerpt makes a response body storable text.
func excerpt(b []byte) string {
	s := strings.ReplaceAll(string(b), "\x00", "")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
