package bench

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gantry/internal/httpapi"
	"gantry/internal/store/cache"
	"gantry/internal/store/sqlite"
)

// BenchmarkHandlerKeyset measures the list handler without the network.
func BenchmarkHandlerKeyset(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "g.db"), sqlite.Options{Readers: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p, err := seedBench(ctx, db, 100000)
	if err != nil {
		b.Fatal(err)
	}
	h := httpapi.New(httpapi.Config{ExternalURL: "http://127.0.0.1", Version: "17.9.3"}, httpapi.Deps{Store: cache.New(db, time.Second, nil)}).Handler()
	base := "/api/v4/projects/" + strconv.FormatInt(p.ID, 10) + "/jobs?pagination=keyset&per_page=20&cursor="
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", base+httpapi.EncodeCursor(100+rand.Int64N(99000)), nil)
			req.Header.Set("Private-Token", benchToken)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
}
