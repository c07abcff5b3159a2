package bench

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"gantry/internal/ci"
	"gantry/internal/store"
	"gantry/internal/store/sqlite"
)

func BenchmarkStoreListJobs(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "g.db"), sqlite.Options{Readers: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p, err := seedBench(ctx, db, 100000)
	if err != nil {
		b.Fatal(err)
	}
	_ = os.Getenv
	b.Run("serial", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			before := 100 + rand.Int64N(99000)
			jobs, err := db.ListJobs(ctx, store.JobFilter{ProjectID: p.ID, Kind: ci.KindBuild, IncludeRetried: true, BeforeID: before, Limit: 21})
			if err != nil || len(jobs) != 21 {
				b.Fatal(err, len(jobs))
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				before := 100 + rand.Int64N(99000)
				jobs, err := db.ListJobs(ctx, store.JobFilter{ProjectID: p.ID, Kind: ci.KindBuild, IncludeRetried: true, BeforeID: before, Limit: 21})
				if err != nil || len(jobs) != 21 {
					b.Fatal(err, len(jobs))
				}
			}
		})
	})
}
