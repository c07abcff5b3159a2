// Package cache is a read-through decorator for the store. It keeps the
// lookups every API request repeats (token → user, project, access level,
// users, runners, commits, pipeline variables, and the pipelines embedded
// in job documents) for a short TTL, so a hot list endpoint costs one or
// two queries instead of ten. Jobs are never cached.
//
// Staleness is bounded by the TTL; writes made through this decorator
// (token revocation, memberships) purge the affected entries at once.
package cache

import (
	"context"
	"strconv"
	"sync"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// maxEntries bounds each map; a full map is emptied rather than evicted
// entry by entry, which keeps the structure trivial.
const maxEntries = 10000

type entry[V any] struct {
	v       V
	expires time.Time
}

type ttlMap[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]entry[V]
}

func (t *ttlMap[K, V]) get(k K, now time.Time) (V, bool) {
	t.mu.RLock()
	e, ok := t.m[k]
	t.mu.RUnlock()
	if !ok || now.After(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (t *ttlMap[K, V]) put(k K, v V, expires time.Time) {
	t.mu.Lock()
	if t.m == nil || len(t.m) >= maxEntries {
		t.m = make(map[K]entry[V])
	}
	t.m[k] = entry[V]{v: v, expires: expires}
	t.mu.Unlock()
}

func (t *ttlMap[K, V]) purge() {
	t.mu.Lock()
	t.m = nil
	t.mu.Unlock()
}

type tokenHit struct {
	token *ci.Token
	user  *ci.User
}

// Store wraps a store.Store.
type Store struct {
	store.Store
	ttl time.Duration
	now func() time.Time

	tokens       ttlMap[string, tokenHit]
	projects     ttlMap[string, *ci.Project] // "id:N" or "path:lower"
	access       ttlMap[[2]int64, ci.AccessLevel]
	users        ttlMap[int64, *ci.User]
	runners      ttlMap[int64, *ci.Runner]
	managers     ttlMap[int64, *ci.RunnerManager]
	commits      ttlMap[string, *ci.Commit]
	pipelines    ttlMap[int64, *ci.Pipeline]
	pipelineVars ttlMap[int64, []store.Variable]
}

// New wraps st; a ttl of zero returns st unchanged.
func New(st store.Store, ttl time.Duration, now func() time.Time) store.Store {
	if ttl <= 0 {
		return st
	}
	if now == nil {
		now = time.Now
	}
	return &Store{Store: st, ttl: ttl, now: now}
}

func (c *Store) TokenByDigest(ctx context.Context, digest string) (*ci.Token, *ci.User, error) {
	now := c.now()
	if h, ok := c.tokens.get(digest, now); ok {
		return h.token, h.user, nil
	}
	tok, u, err := c.Store.TokenByDigest(ctx, digest)
	if err == nil {
		c.tokens.put(digest, tokenHit{tok, u}, now.Add(c.ttl))
	}
	return tok, u, err
}

func (c *Store) RevokeToken(ctx context.Context, id int64) error {
	err := c.Store.RevokeToken(ctx, id)
	c.tokens.purge()
	return err
}

func (c *Store) ProjectByID(ctx context.Context, id int64) (*ci.Project, error) {
	return c.project(ctx, "id:"+strconv.FormatInt(id, 10), func() (*ci.Project, error) { return c.Store.ProjectByID(ctx, id) })
}

func (c *Store) ProjectByFullPath(ctx context.Context, path string) (*ci.Project, error) {
	return c.project(ctx, "path:"+path, func() (*ci.Project, error) { return c.Store.ProjectByFullPath(ctx, path) })
}

func (c *Store) project(_ context.Context, key string, load func() (*ci.Project, error)) (*ci.Project, error) {
	now := c.now()
	if p, ok := c.projects.get(key, now); ok {
		return p, nil
	}
	p, err := load()
	if err == nil {
		c.projects.put(key, p, now.Add(c.ttl))
	}
	return p, err
}

// SetProjectMaxArtifactsSize changes a project: cached projects go.
func (c *Store) SetProjectMaxArtifactsSize(ctx context.Context, projectID int64, mb *int) error {
	err := c.Store.SetProjectMaxArtifactsSize(ctx, projectID, mb)
	c.projects.purge()
	return err
}

func (c *Store) ProjectAccess(ctx context.Context, userID int64, p *ci.Project) (ci.AccessLevel, error) {
	key := [2]int64{userID, p.ID}
	now := c.now()
	if l, ok := c.access.get(key, now); ok {
		return l, nil
	}
	l, err := c.Store.ProjectAccess(ctx, userID, p)
	if err == nil {
		c.access.put(key, l, now.Add(c.ttl))
	}
	return l, err
}

func (c *Store) AddMember(ctx context.Context, p store.AddMemberParams) error {
	err := c.Store.AddMember(ctx, p)
	c.access.purge()
	return err
}

// byIDs serves what it can from m and loads the rest in one call.
func byIDs[V any](m *ttlMap[int64, V], ttl time.Duration, now time.Time, ids []int64, load func([]int64) (map[int64]V, error)) (map[int64]V, error) {
	out := make(map[int64]V, len(ids))
	var missing []int64
	for _, id := range ids {
		if v, ok := m.get(id, now); ok {
			out[id] = v
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	loaded, err := load(missing)
	if err != nil {
		return nil, err
	}
	for id, v := range loaded {
		out[id] = v
		m.put(id, v, now.Add(ttl))
	}
	return out, nil
}

func (c *Store) UsersByIDs(ctx context.Context, ids []int64) (map[int64]*ci.User, error) {
	return byIDs(&c.users, c.ttl, c.now(), ids, func(m []int64) (map[int64]*ci.User, error) { return c.Store.UsersByIDs(ctx, m) })
}

func (c *Store) RunnersByIDs(ctx context.Context, ids []int64) (map[int64]*ci.Runner, error) {
	return byIDs(&c.runners, c.ttl, c.now(), ids, func(m []int64) (map[int64]*ci.Runner, error) { return c.Store.RunnersByIDs(ctx, m) })
}

func (c *Store) RunnerManagersByIDs(ctx context.Context, ids []int64) (map[int64]*ci.RunnerManager, error) {
	return byIDs(&c.managers, c.ttl, c.now(), ids, func(m []int64) (map[int64]*ci.RunnerManager, error) {
		return c.Store.RunnerManagersByIDs(ctx, m)
	})
}

// PipelinesByIDs serves the pipelines embedded in job documents; a single
// pipeline read (PipelineByID) always goes to the store.
func (c *Store) PipelinesByIDs(ctx context.Context, ids []int64) (map[int64]*ci.Pipeline, error) {
	return byIDs(&c.pipelines, c.ttl, c.now(), ids, func(m []int64) (map[int64]*ci.Pipeline, error) { return c.Store.PipelinesByIDs(ctx, m) })
}

// CommitsBySHA caches commits longer: a commit never changes.
func (c *Store) CommitsBySHA(ctx context.Context, projectID int64, shas []string) (map[string]*ci.Commit, error) {
	now := c.now()
	prefix := strconv.FormatInt(projectID, 10) + ":"
	out := make(map[string]*ci.Commit, len(shas))
	var missing []string
	for _, s := range shas {
		if v, ok := c.commits.get(prefix+s, now); ok {
			out[s] = v
		} else {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	loaded, err := c.Store.CommitsBySHA(ctx, projectID, missing)
	if err != nil {
		return nil, err
	}
	for s, v := range loaded {
		out[s] = v
		c.commits.put(prefix+s, v, now.Add(time.Hour))
	}
	return out, nil
}

// PipelineVariables caches longer: a pipeline's variables are written
// with it and never change. Callers must not modify the slice.
func (c *Store) PipelineVariables(ctx context.Context, pipelineID int64) ([]store.Variable, error) {
	now := c.now()
	if v, ok := c.pipelineVars.get(pipelineID, now); ok {
		return v, nil
	}
	v, err := c.Store.PipelineVariables(ctx, pipelineID)
	if err != nil {
		return nil, err
	}
	c.pipelineVars.put(pipelineID, v, now.Add(time.Hour))
	return v, nil
}

// Unwrap returns the wrapped store.
func (c *Store) Unwrap() store.Store { return c.Store }
