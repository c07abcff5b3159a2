package logsearch

import (
	"fmt"
	"math/rand"
	"time"
)

// GenerateLog writes a CI-like log of about size bytes for benchmarks and
// tests: timestamps, steps, test results, downloads with digests, warnings.
// The log of seed n names "job-id-%08d" once, and "unique-marker-<n%50>".
func GenerateLog(r *rand.Rand, size int, seed int64) []byte {
	return generateLog(r, size, seed)
}

func generateLog(r *rand.Rand, size int, seed int64) []byte {
	out := make([]byte, 0, size+256)
	at := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC).Add(time.Duration(seed) * time.Minute)
	out = fmt.Appendf(out, "Running with gantry-runner, job-id-%08d\nunique-marker-%d\n", seed, seed%50)
	for step := 0; len(out) < size; step++ {
		at = at.Add(time.Duration(r.Intn(900)) * time.Millisecond)
		ts := at.Format("2006-01-02T15:04:05.000Z")
		switch r.Intn(8) {
		case 0:
			out = fmt.Appendf(out, "%s [INFO] Step %d/%d : RUN make build-%d\n", ts, step%40, 40, r.Intn(20))
		case 1:
			out = fmt.Appendf(out, "ok  \tgithub.com/acme/app/internal/pkg%d\t0.%03ds\n", r.Intn(200), r.Intn(1000))
		case 2:
			out = fmt.Appendf(out, "--- PASS: TestHandler%d/case_%d (0.%02ds)\n", r.Intn(500), r.Intn(30), r.Intn(100))
		case 3:
			out = fmt.Appendf(out, "%s Downloading sha256:%016x%016x ... done\n", ts, r.Uint64(), r.Uint64())
		case 4:
			out = fmt.Appendf(out, "npm WARN deprecated package-%d@%d.%d.%d: use something else\n", r.Intn(300), r.Intn(5), r.Intn(20), r.Intn(10))
		case 5:
			out = fmt.Appendf(out, "\x1b[32;1m$ go test ./internal/service%d/...\x1b[0;m\n", r.Intn(50))
		case 6:
			out = fmt.Appendf(out, "%s compiling src/module_%d/file_%d.c -O2 -Wall\n", ts, r.Intn(100), r.Intn(1000))
		default:
			out = fmt.Appendf(out, "%s [DEBUG] cache hit ratio %d.%02d%% for key ci-cache-%x\n", ts, r.Intn(100), r.Intn(100), r.Uint32())
		}
	}
	return out
}
