package fleet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Pickups are job pickup latencies.
type Pickups struct {
	// Queue is queued → taken by the server's clock (the payload's
	// time_in_queue_seconds); Trip is from sending the pipeline POST until
	// the runner has the job.
	Queue, Trip []time.Duration
}

// Percentile is the p-th percentile of d (p in 0..100).
func Percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// MeasurePickups has four runners (tag "pickup", so no other runner
// takes these jobs) long-poll node heldBy while n pipelines of one job
// each are created, one at a time, through node madeOn (in a project of
// its own, so it can be measured more than once on one cluster).
func MeasurePickups(ctx context.Context, c *Cluster, heldBy, madeOn, n int) (Pickups, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out Pickups
	p, err := c.CreateProject(ctx, madeOn, fmt.Sprintf("pickup-%d-%d-%d", heldBy, madeOn, time.Now().UnixNano()), "work:\n  tags: [pickup]\n  script: [\"true\"]\n")
	if err != nil {
		return out, err
	}
	tokens, err := CreateRunners(ctx, c, 4, []string{"pickup"})
	if err != nil {
		return out, err
	}
	ledger := NewLedger()
	got := make(chan time.Time, 16)
	ledger.OnJob = func(_ int64, at time.Time) { got <- at }
	var wg sync.WaitGroup
	for i, tok := range tokens {
		r := NewRunner(tok, fmt.Sprintf("s_pickup%06d", i), []string{c.Nodes[heldBy].URL}, 0, Work{Chunks: 1, ChunkSize: 16}, ledger)
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()
	wait := func() (time.Time, error) {
		select {
		case at := <-got:
			return at, nil
		case <-time.After(time.Minute):
			return time.Time{}, fmt.Errorf("a pickup job was not taken within a minute")
		}
	}
	if _, err := wait(); err != nil { // the commit's own pipeline
		return out, err
	}
	before := ledger.Jobs()
	for range n {
		time.Sleep(100 * time.Millisecond) // the runners park again
		t0 := time.Now()
		if _, err := c.API(madeOn).CreatePipeline(ctx, p.ID); err != nil {
			return out, err
		}
		at, err := wait()
		if err != nil {
			return out, err
		}
		out.Trip = append(out.Trip, at.Sub(t0))
	}
	for id, rec := range ledger.Jobs() {
		if _, old := before[id]; old {
			continue
		}
		out.Queue = append(out.Queue, time.Duration(rec.QueueSeconds*float64(time.Second)))
	}
	return out, nil
}
