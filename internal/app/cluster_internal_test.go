package app

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

// Wake-ups queued while the sender is busy go out deduplicated and packed
// into few notifications, each under the payload limit.
func TestClusterBatchesWakeUps(t *testing.T) {
	c := newCluster(nil, slog.New(slog.DiscardHandler))
	first := "l:1"
	for i := 0; i < 500; i++ {
		c.publish("l:" + strconv.Itoa(i%300))
	}
	items := c.drain(first)
	if len(items) != 300 {
		t.Fatalf("%d distinct wake-ups, want 300", len(items))
	}
	var payloads []string
	pack(items, func(p string) { payloads = append(payloads, p) })
	total := 0
	for _, p := range payloads {
		if len(p) > payloadBudget {
			t.Fatalf("payload of %d bytes", len(p))
		}
		total += len(strings.Split(p, "\n"))
	}
	if total != 300 || len(payloads) != 1 {
		t.Fatalf("%d items in %d payloads", total, len(payloads))
	}
	// Past the budget, items spill into further payloads, none split.
	var long []string
	for i := 0; i < 100; i++ {
		long = append(long, "j:1:"+strings.Repeat("9", 96))
	}
	payloads = nil
	pack(long, func(p string) { payloads = append(payloads, p) })
	if len(payloads) != 2 || len(payloads[0]) > payloadBudget || strings.Count(payloads[0]+"\n"+payloads[1], "\n") != 99 {
		t.Fatalf("%d payloads", len(payloads))
	}
}
