// Package pgnotify lets gantry nodes sharing one PostgreSQL database tell
// each other about events through LISTEN/NOTIFY. Each node holds one
// dedicated listening connection, whatever the number of local waiters.
// Delivery is best effort: a notification sent while a listener is
// reconnecting is lost, so receivers keep a slower fallback of their own.
package pgnotify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxPayload bounds one notification's payload, node prefix included;
// PostgreSQL refuses payloads of 8000 bytes or more.
const MaxPayload = 7000

// channelBase names the channel; a schema other than public gets its own,
// since channels are per database, not per schema.
const channelBase = "gantry_events"

// Notifier publishes to and listens on the node group's channel.
type Notifier struct {
	url     string
	channel string
	node    string // prefixes every payload this node sends
	pool    *pgxpool.Pool
	log     *slog.Logger

	mu       sync.Mutex
	handlers []func(payload string)
	resumed  []func()

	listenerPID atomic.Uint32
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	closeOnce   sync.Once
}

// Open connects a small pool for publishing and picks the channel from
// the connection's schema. Listening starts with Start.
func Open(ctx context.Context, url string, log *slog.Logger) (*Notifier, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("notifier: %w", err)
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	return &Notifier{url: url, channel: channelName(schema), node: hex.EncodeToString(id[:]), pool: pool, log: log}, nil
}

// channelName keeps within PostgreSQL's 63-byte identifiers.
func channelName(schema string) string {
	if schema == "public" || schema == "" {
		return channelBase
	}
	name := channelBase + "_" + schema
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// Handle registers h to receive every payload other nodes publish. Call
// it before Start; handlers run on the listener's goroutine and must not
// block for long.
func (n *Notifier) Handle(h func(payload string)) {
	n.mu.Lock()
	n.handlers = append(n.handlers, h)
	n.mu.Unlock()
}

// OnResume registers fn to run each time listening starts again after the
// connection dropped: notifications sent meanwhile are lost, so waiters
// should look for work once more. It may be registered at any time.
func (n *Notifier) OnResume(fn func()) {
	n.mu.Lock()
	n.resumed = append(n.resumed, fn)
	n.mu.Unlock()
}

// Publish sends payload to every other node.
func (n *Notifier) Publish(ctx context.Context, payload string) error {
	msg := n.node + " " + payload
	if len(msg) > MaxPayload {
		return fmt.Errorf("notifier: payload of %d bytes is too long", len(msg))
	}
	_, err := n.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, n.channel, msg)
	return err
}

// ListenerPID is the backend process id of the listening connection, or
// 0 while it is not connected.
func (n *Notifier) ListenerPID() uint32 { return n.listenerPID.Load() }

// Start listens until Close, reconnecting when the connection drops.
func (n *Notifier) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.run(ctx)
	}()
}

// Close stops listening, waits for the listener and closes the pool.
func (n *Notifier) Close() {
	n.closeOnce.Do(func() {
		if n.cancel != nil {
			n.cancel()
		}
		n.wg.Wait()
		n.pool.Close()
	})
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
	// idleCheck is how long the listener waits before checking that a
	// silent connection is still alive.
	idleCheck = 30 * time.Second
)

func (n *Notifier) run(ctx context.Context) {
	backoff := minBackoff
	for attempt := 0; ; attempt++ {
		started := time.Now()
		err := n.listen(ctx, attempt > 0)
		n.listenerPID.Store(0)
		if ctx.Err() != nil {
			return
		}
		// A connection that lasted was healthy: start backing off afresh.
		if time.Since(started) > maxBackoff {
			backoff = minBackoff
		}
		n.log.Warn("event listener disconnected; reconnecting", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// listen holds one connection until it fails or ctx ends; resumed says an
// earlier connection was lost.
func (n *Notifier) listen(ctx context.Context, resumed bool) error {
	conn, err := pgx.Connect(ctx, n.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{n.channel}.Sanitize()); err != nil {
		return err
	}
	n.listenerPID.Store(conn.PgConn().PID())
	if resumed {
		n.mu.Lock()
		fns := append([]func(){}, n.resumed...)
		n.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, idleCheck)
		note, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// A timed-out wait leaves the connection usable; a
			// round trip proves it still reaches the server.
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		n.deliver(note.Payload)
	}
}

func (n *Notifier) deliver(msg string) {
	from, payload, ok := strings.Cut(msg, " ")
	if !ok || from == n.node {
		return // malformed, or sent by this node, which acted on it already
	}
	n.mu.Lock()
	hs := n.handlers
	n.mu.Unlock()
	for _, h := range hs {
		h(payload)
	}
}
