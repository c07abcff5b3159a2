// Package bench holds the benchmarks gantry ships (`gantry bench`): each
// runs gantry over real HTTP on loopback against real storage, and reports
// its figures next to a ceiling measured in the same run.
package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Result summarises one load run.
type Result struct {
	Requests int
	Errors   int
	Elapsed  time.Duration
	P50, P99 time.Duration
}

// RPS is requests per second.
func (r Result) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

func (r Result) String() string {
	return fmt.Sprintf("%8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  (%d requests, %d errors)",
		r.RPS(), ms(r.P50), ms(r.P99), r.Requests, r.Errors)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// newClient is a keep-alive client sized for conns concurrent requests.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}, Timeout: 30 * time.Second}
}

// Load runs conns workers for d; next(worker, i) returns the URL and the
// headers of each request. Every response must be 200.
func Load(ctx context.Context, conns int, d time.Duration, next func(worker, i int) (string, http.Header)) Result {
	client := newClient(conns)
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			bad := 0
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				u, h := next(w, i)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				req.Header = h
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					bad++
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat = append(lat, time.Since(t0))
				if res.StatusCode != http.StatusOK {
					bad++
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errs += bad
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(all)
	r := Result{Requests: len(all), Errors: errs, Elapsed: elapsed}
	if len(all) > 0 {
		r.P50 = all[len(all)*50/100]
		r.P99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return r
}

// perStore runs a benchmark on each store in turn; the first failure
// stops it, naming its store.
func perStore[R any](stores []string, run func(store string) (R, error)) ([]R, error) {
	var reps []R
	for _, name := range stores {
		r, err := run(name)
		if err != nil {
			return reps, fmt.Errorf("%s: %w", name, err)
		}
		reps = append(reps, r)
	}
	return reps, nil
}

// Sequential times n one-at-a-time requests to u and returns the median.
func Sequential(ctx context.Context, n int, u string, h http.Header) (time.Duration, error) {
	lat, err := Latencies(ctx, n, u, h)
	if err != nil {
		return 0, err
	}
	return lat[len(lat)/2], nil
}

// Latencies times n one-at-a-time requests to u, sorted ascending; any
// answer but 200 is an error.
func Latencies(ctx context.Context, n int, u string, h http.Header) ([]time.Duration, error) {
	client := newClient(1)
	defer client.CloseIdleConnections()
	var lat []time.Duration
	for i := 0; i < n; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header = h
		t0 := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: status %d", u, res.StatusCode)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	return lat, nil
}
