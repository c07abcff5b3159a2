package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"gantry/internal/store"
)

func init() { extra["Leases"] = testLeases }

func testLeases(t *testing.T, st store.Store) {
	ctx := context.Background()
	ttl := 30 * time.Second
	claim := func(name, holder string, now time.Time) bool {
		t.Helper()
		held, err := st.ClaimLease(ctx, name, holder, now, now.Add(ttl))
		if err != nil {
			t.Fatalf("claim %s by %s: %v", name, holder, err)
		}
		return held
	}
	if !claim("sweep", "a", t0) {
		t.Fatal("a free lease was not granted")
	}
	if claim("sweep", "b", t0.Add(ttl-time.Microsecond)) {
		t.Fatal("b took a lease a holds")
	}
	// Renewal extends a's lease; b still cannot take it at the old expiry.
	if !claim("sweep", "a", t0.Add(10*time.Second)) {
		t.Fatal("a could not renew its lease")
	}
	if claim("sweep", "b", t0.Add(ttl)) {
		t.Fatal("b took a renewed lease")
	}
	// Leases are independent of each other.
	if !claim("other", "b", t0) {
		t.Fatal("b could not claim another lease")
	}
	// a stops renewing: once expired the lease moves to b, and a's late
	// renewal fails.
	late := t0.Add(10*time.Second + ttl)
	if !claim("sweep", "b", late) {
		t.Fatal("b could not take an expired lease")
	}
	if claim("sweep", "a", late.Add(time.Second)) {
		t.Fatal("a renewed a lease b took over")
	}
	// Releasing by a non-holder does nothing; by the holder frees it at once.
	if err := st.ReleaseLease(ctx, "sweep", "a"); err != nil {
		t.Fatal(err)
	}
	if claim("sweep", "a", late.Add(2*time.Second)) {
		t.Fatal("a release by a non-holder freed the lease")
	}
	if err := st.ReleaseLease(ctx, "sweep", "b"); err != nil {
		t.Fatal(err)
	}
	if !claim("sweep", "a", late.Add(2*time.Second)) {
		t.Fatal("a released lease was not free")
	}

	// Many claimants at once: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	now := t0.Add(time.Hour)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			held, err := st.ClaimLease(ctx, "race", string(rune('a'+i)), now, now.Add(ttl))
			if err != nil {
				t.Error(err)
				return
			}
			if held {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if winners != 1 {
		t.Fatalf("%d claimants won one lease", winners)
	}
}
