package logsearch

import (
	"math/rand"
	"testing"
)

func BenchmarkTrigramWriter(b *testing.B) {
	log := generateLog(rand.New(rand.NewSource(1)), 1<<20, 1)
	sb := newSegmentBuilder(1024, 1<<20)
	b.SetBytes(int64(len(log)))
	for i := 0; i < b.N; i++ {
		w := sb.add(int64(i))
		if len(sb.jobIDs) == 1024 {
			sb.jobIDs = sb.jobIDs[:0]
		}
		_, _ = w.Write(log)
		w.finish()
	}
}
