package lease_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"gantry/internal/lease"
	"gantry/internal/testenv"
)

// Two keepers on one store: the first to renew holds a lease, the other
// takes it only once it expires unrenewed or is released; a keeper counts
// a lease held only until the expiry it was given.
func TestKeepers(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			clk := testenv.NewClock(testenv.T0)
			ttl := 30 * time.Second
			log := slog.New(slog.DiscardHandler)
			a := lease.NewKeeper(st, "node-a", []string{"sweep", "other"}, ttl, clk.Now, log)
			b := lease.NewKeeper(st, "node-b", []string{"sweep"}, ttl, clk.Now, log)
			if a.Held("sweep") {
				t.Fatal("held before any renewal")
			}
			a.Renew(ctx)
			b.Renew(ctx)
			if !a.Held("sweep") || !a.Held("other") || b.Held("sweep") {
				t.Fatalf("after renewals: a %v/%v, b %v", a.Held("sweep"), a.Held("other"), b.Held("sweep"))
			}
			gate := a.Gate("sweep")
			// Renewed in time, a keeps it.
			clk.Advance(ttl - time.Second)
			a.Renew(ctx)
			clk.Advance(2 * time.Second)
			b.Renew(ctx)
			if !gate() || b.Held("sweep") {
				t.Fatal("a renewed lease moved")
			}
			// a stops renewing: it stops counting the lease held when it
			// expires, and b takes it.
			clk.Advance(ttl)
			if gate() {
				t.Fatal("a counts an expired lease held")
			}
			b.Renew(ctx)
			if !b.Held("sweep") {
				t.Fatal("b did not take the expired lease")
			}
			a.Renew(ctx)
			if a.Held("sweep") || !a.Held("other") {
				t.Fatal("a took back b's lease, or lost its other one")
			}
			// b releases on Stop; a takes it without waiting.
			b.Stop()
			if b.Held("sweep") {
				t.Fatal("a stopped keeper still holds")
			}
			a.Renew(ctx)
			if !a.Held("sweep") {
				t.Fatal("a released lease was not free")
			}
			a.Stop()
		})
	}
}
