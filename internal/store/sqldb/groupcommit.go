package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// maxGroup bounds how many queued write transactions share one commit, so
// a long queue cannot make any one of them wait for an unbounded batch.
const maxGroup = 64

// errGroupAborted is what the members of a shared transaction get when
// it could not be committed as a whole after their work succeeded.
var errGroupAborted = errors.New("sqlite: shared write transaction aborted")

// groupCommit runs concurrent SQLite write transactions inside one database
// transaction and commits them together. SQLite has one writer and most
// of a small transaction's cost is its commit (writing the changed pages
// to the WAL), so under load many transactions share that cost. Each
// transaction runs inside its own savepoint, so a failing one is undone
// alone; every caller returns only after the commit that made its work
// durable. Whoever arrives to an idle group leads: it runs the queued
// batch, then hands the lead to the next waiter, so no caller serves
// others' work for longer than one batch. There is no background
// goroutine.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*groupMember
	leading bool
}

type groupMember struct {
	fn       func(tx *sql.Tx) error
	err      error
	panicked any
	// wake receives true when the member is to lead the next batch, and
	// false once its transaction has been committed or refused.
	wake chan bool
}

// run queues fn and returns once it is committed (nil) or failed.
func (g *groupCommit) run(fn func(tx *sql.Tx) error, batch func([]*groupMember)) error {
	m := &groupMember{fn: fn, wake: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, m)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead && !<-m.wake {
		return m.result()
	}
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	members := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	batch(members)

	for _, o := range members {
		if o != m {
			o.wake <- false
		}
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].wake <- true
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	return m.result()
}

func (m *groupMember) result() error {
	if m.panicked != nil {
		panic(m.panicked)
	}
	return m.err
}

// call runs the member's function, turning a panic into a failure of this
// member alone (re-raised in its own goroutine by result).
func (m *groupMember) call(tx *sql.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			m.panicked = p
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return m.fn(tx)
}

// runGroup executes members in one SQLite transaction under the write lock.
func (db *DB) runGroup(members []*groupMember) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	// The shared transaction outlives any one caller's request, so it does
	// not take a caller's context; statements inside still use theirs.
	ctx := context.Background()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		for _, m := range members {
			m.err = err
		}
		return
	}
	if len(members) == 1 {
		m := members[0]
		if m.err = m.call(tx); m.err != nil {
			_ = tx.Rollback()
			return
		}
		m.err = tx.Commit()
		return
	}
	for i, m := range members {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT member`); err != nil {
			abortGroup(tx, members[:i], members[i:], err)
			return
		}
		if m.err = m.call(tx); m.err != nil {
			// An interrupted statement (a caller gone mid-write) can
			// roll back the whole transaction; then the savepoint is
			// gone too and the batch fails as a whole.
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO member`); err != nil {
				abortGroup(tx, members[:i], members[i+1:], err)
				return
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE member`); err != nil {
			abortGroup(tx, members[:i+1], members[i+1:], err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		for _, m := range members {
			if m.err == nil {
				m.err = err
			}
		}
	}
}

// abortGroup rolls the shared transaction back: members that already
// succeeded in it and those not yet run fail with errGroupAborted.
func abortGroup(tx *sql.Tx, ran, notRun []*groupMember, cause error) {
	_ = tx.Rollback()
	err := fmt.Errorf("%w: %v", errGroupAborted, cause)
	for _, m := range ran {
		if m.err == nil {
			m.err = err
		}
	}
	for _, m := range notRun {
		m.err = err
	}
}
