package pgnotify_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gantry/internal/pgnotify"
	"gantry/internal/testenv"
)

func schemaURL(t *testing.T) string {
	t.Helper()
	testenv.PostgresOnly(t, "LISTEN/NOTIFY is PostgreSQL's")
	u, _ := testenv.NewPostgresSchema(t)
	return u
}

// startNotifier opens a listening notifier whose payloads arrive on the
// returned channel.
func startNotifier(t *testing.T, url string) (*pgnotify.Notifier, <-chan string) {
	t.Helper()
	n, err := pgnotify.Open(context.Background(), url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	n.Handle(func(p string) { got <- p })
	n.Start()
	t.Cleanup(n.Close)
	waitListening(t, n, 0)
	return n, got
}

// waitListening waits for a listening connection other than backend old.
func waitListening(t *testing.T, n *pgnotify.Notifier, old uint32) uint32 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if pid := n.ListenerPID(); pid != 0 && pid != old {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatal("listener did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func receive(t *testing.T, got <-chan string, want string) {
	t.Helper()
	select {
	case p := <-got:
		if p != want {
			t.Fatalf("payload %q, want %q", p, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("payload %q never arrived", want)
	}
}

func TestNotifierDeliversToOtherNodes(t *testing.T) {
	url := schemaURL(t)
	a, gotA := startNotifier(t, url)
	_, gotB := startNotifier(t, url)
	ctx := context.Background()
	if err := a.Publish(ctx, "l:42"); err != nil {
		t.Fatal(err)
	}
	receive(t, gotB, "l:42")
	select {
	case p := <-gotA:
		t.Fatalf("the sender received its own payload %q", p)
	case <-time.After(200 * time.Millisecond):
	}
	if err := a.Publish(ctx, string(make([]byte, pgnotify.MaxPayload))); err == nil {
		t.Fatal("an oversized payload was accepted")
	}
}

func TestNotifierReconnects(t *testing.T) {
	url := schemaURL(t)
	a, _ := startNotifier(t, url)
	b, gotB := startNotifier(t, url)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	resumed := make(chan struct{}, 4)
	b.OnResume(func() { resumed <- struct{}{} })
	old := b.ListenerPID()
	var killed bool
	if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int64(old)).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate listener %d: %v %v", old, killed, err)
	}
	waitListening(t, b, old)
	// Whoever waits on b is told to look again: wake-ups may have been lost.
	select {
	case <-resumed:
	case <-time.After(5 * time.Second):
		t.Fatal("no resume after the listener reconnected")
	}
	if err := a.Publish(ctx, "j:1:2,3"); err != nil {
		t.Fatal(err)
	}
	receive(t, gotB, "j:1:2,3")
	if len(resumed) != 0 {
		t.Fatal("resumed more than once for one reconnect")
	}
}
