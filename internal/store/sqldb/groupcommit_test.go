package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

func openGroupTestDB(t *testing.T) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "g.db")
	write, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	write.SetMaxOpenConns(1)
	if _, err := write.Exec(`CREATE TABLE items (n INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	db := New(Dialect{Name: "sqlite"}, write, write, true)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func storedItems(t *testing.T, db *DB) []int {
	t.Helper()
	rows, err := db.write.Query(`SELECT n FROM items ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// TestGroupCommitIsolatesMembers queues transactions behind a held write
// lock so that they share one commit, and checks that a failing member
// and a panicking member are undone alone while the rest are durable.
func TestGroupCommitIsolatesMembers(t *testing.T) {
	db := openGroupTestDB(t)
	const n = 40
	var batches atomic.Int64
	var sizes sync.Map
	runBatch := func(ms []*groupMember) {
		sizes.Store(batches.Add(1), len(ms))
		db.runGroup(ms)
	}
	errBoom := errors.New("boom")

	db.writeMu.Lock() // the leader's batch waits here while the rest queue
	results := make([]error, n)
	panics := make([]any, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			results[i] = db.group.run(func(tx *sql.Tx) error {
				if _, err := tx.Exec(`INSERT INTO items (n) VALUES (?)`, i); err != nil {
					return err
				}
				switch {
				case i == 7:
					panic("member 7")
				case i%5 == 3:
					return errBoom
				}
				return nil
			}, runBatch)
		}(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.group.mu.Lock()
		queued := len(db.group.queue)
		db.group.mu.Unlock()
		first, _ := sizes.Load(int64(1))
		if f, ok := first.(int); ok && f+queued == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d transactions queued behind the leader's batch of %v", queued, first)
		}
		time.Sleep(time.Millisecond)
	}
	db.writeMu.Unlock()
	wg.Wait()

	first, _ := sizes.Load(int64(1))
	second, _ := sizes.Load(int64(2))
	if got := batches.Load(); got != 2 || first.(int)+second.(int) != n {
		t.Fatalf("%d batches of %v and %v members, want 2 covering all %d", got, first, second, n)
	}
	var want []int
	for i := 0; i < n; i++ {
		switch {
		case i == 7:
			if panics[i] != "member 7" {
				t.Errorf("member 7: panic %v not re-raised in its own goroutine", panics[i])
			}
		case i%5 == 3:
			if !errors.Is(results[i], errBoom) {
				t.Errorf("member %d: err %v, want boom", i, results[i])
			}
		default:
			if results[i] != nil || panics[i] != nil {
				t.Errorf("member %d: err %v panic %v", i, results[i], panics[i])
			}
			want = append(want, i)
		}
	}
	got := storedItems(t, db)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored %v\nwant   %v", got, want)
	}
}

// TestGroupCommitUnderLoad runs many writers at once, through tx and exec,
// with unique-key conflicts among them; exactly the acknowledged rows
// must be stored.
func TestGroupCommitUnderLoad(t *testing.T) {
	db := openGroupTestDB(t)
	ctx := context.Background()
	const writers, each = 16, 200
	var mu sync.Mutex
	acked := map[int]bool{}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Every writer also tries its neighbour's keys: half the
				// inserts collide and must fail without harming the rest.
				k := ((w+i%2)%writers)*each + i
				var err error
				if i%3 == 0 {
					_, err = db.exec(ctx, `INSERT INTO items (n) VALUES (?)`, k)
				} else {
					err = db.tx(ctx, func(tx *sql.Tx) error {
						_, err := tx.ExecContext(ctx, `INSERT INTO items (n) VALUES (?)`, k)
						return err
					})
				}
				if err == nil {
					mu.Lock()
					if acked[k] {
						t.Errorf("key %d acknowledged twice", k)
					}
					acked[k] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	var want []int
	for k := range acked {
		want = append(want, k)
	}
	sort.Ints(want)
	got := storedItems(t, db)
	if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored %d rows, acknowledged %d", len(got), len(want))
	}
}
