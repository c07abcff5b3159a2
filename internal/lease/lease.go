// Package lease lets several nodes sharing one database run each
// background sweep on one node at a time. A Keeper claims a set of named
// leases and renews them while its node lives; a sweep runs only where its
// lease is held. A node that dies stops renewing, and another node's
// keeper takes the lease once it expires.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"gantry/internal/store"
)

// Names of the sweeps that hold leases.
const (
	Watchdog       = "watchdog"
	ArtifactExpiry = "artifact-expiry"
	LogArchive     = "log-archive"
	PipelineSweep  = "pipeline-sweep"
	LogIndex       = "log-index"
)

// All are the leases a node claims.
var All = []string{Watchdog, ArtifactExpiry, LogArchive, PipelineSweep, LogIndex}

// DefaultTTL is how long a lease outlives its holder's last renewal: the
// longest a dead node's sweeps wait for another node to take them.
const DefaultTTL = 30 * time.Second

// NodeID names this process as a lease holder: host, process and a random
// part, so two nodes on one host, or a restart, never share an id.
func NodeID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b[:])
}

// Keeper claims and renews one node's leases.
type Keeper struct {
	store  store.Leases
	holder string
	names  []string
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu        sync.Mutex
	heldUntil map[string]time.Time // by this node's clock; absent: not held

	stop, done chan struct{}
	stopOnce   sync.Once
}

// NewKeeper builds a keeper for holder's claims on names; ttl 0 means
// DefaultTTL.
func NewKeeper(st store.Leases, holder string, names []string, ttl time.Duration, now func() time.Time, log *slog.Logger) *Keeper {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Keeper{store: st, holder: holder, names: names, ttl: ttl, now: now, log: log, heldUntil: map[string]time.Time{}}
}

// Holder is the id this keeper claims leases as.
func (k *Keeper) Holder() string { return k.holder }

// Renew claims or renews every lease once. A lease is counted held until
// the expiry it was just given, measured from before the claim was sent,
// so this node stops sweeping no later than another may start.
func (k *Keeper) Renew(ctx context.Context) {
	for _, name := range k.names {
		now := k.now()
		held, err := k.store.ClaimLease(ctx, name, k.holder, now, now.Add(k.ttl))
		if err != nil && ctx.Err() == nil {
			k.log.Warn("lease: claim failed", "lease", name, "err", err)
		}
		k.mu.Lock()
		was := k.now().Before(k.heldUntil[name])
		if held {
			k.heldUntil[name] = now.Add(k.ttl)
		} else if err == nil {
			delete(k.heldUntil, name)
		}
		k.mu.Unlock()
		// A failed claim keeps what was held until it runs out.
		if held && !was {
			k.log.Info("lease: acquired", "lease", name, "holder", k.holder)
		} else if !held && err == nil && was {
			k.log.Info("lease: lost", "lease", name, "holder", k.holder)
		}
	}
}

// Held reports whether this node holds the named lease now.
func (k *Keeper) Held(name string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.now().Before(k.heldUntil[name])
}

// Gate is Held for one lease, in the form the workers take.
func (k *Keeper) Gate(name string) func() bool {
	return func() bool { return k.Held(name) }
}

// Start renews the leases every third of their lifetime until Stop or ctx
// ends; the first round runs before it returns, so a lone node's sweeps
// find their leases held from the start.
func (k *Keeper) Start(ctx context.Context) {
	k.Renew(ctx)
	k.stop, k.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(k.done)
		t := time.NewTicker(k.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-k.stop:
				return
			case <-t.C:
				k.Renew(ctx)
			}
		}
	}()
}

// Stop ends renewal and releases the leases this node holds, so another
// node takes them at its next renewal instead of after the lifetime. Safe
// to call twice or unstarted.
func (k *Keeper) Stop() {
	k.stopOnce.Do(func() {
		if k.stop != nil {
			close(k.stop)
			<-k.done
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		k.mu.Lock()
		var held []string
		for name := range k.heldUntil {
			held = append(held, name)
		}
		k.heldUntil = map[string]time.Time{}
		k.mu.Unlock()
		for _, name := range held {
			if err := k.store.ReleaseLease(ctx, name, k.holder); err != nil {
				k.log.Warn("lease: release failed", "lease", name, "err", err)
			}
		}
	})
}
