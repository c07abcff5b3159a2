package fleet

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// RootToken is root's token on every cluster fleet starts.
const RootToken = "glpat-fleet-root-0123456789abcdef"

// ClusterOptions describe the nodes to start.
type ClusterOptions struct {
	Binary      string
	Nodes       int
	Dir         string   // each node gets a directory below it
	DatabaseURL string   // the PostgreSQL every node uses
	Env         []string // more GANTRY_* settings for every node
}

// Cluster is several nodes sharing one database.
type Cluster struct {
	Nodes []*Node
}

// StartCluster starts the first node alone (it migrates the database and
// creates root), then the others together.
func StartCluster(ctx context.Context, o ClusterOptions) (*Cluster, error) {
	env := append([]string{"GANTRY_DATABASE_URL=" + o.DatabaseURL, "GANTRY_INITIAL_ROOT_TOKEN=" + RootToken, "GANTRY_LOG_LEVEL=warn"}, o.Env...)
	c := &Cluster{Nodes: make([]*Node, o.Nodes)}
	start := func(i int) error {
		name := "node" + strconv.Itoa(i+1)
		n, err := StartNode(ctx, name, o.Binary, filepath.Join(o.Dir, name), env)
		c.Nodes[i] = n
		return err
	}
	if err := start(0); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	errs := make([]error, o.Nodes)
	for i := 1; i < o.Nodes; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = start(i) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// URLs are the nodes' base URLs.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.URL
	}
	return out
}

// API is root's API client on node i.
func (c *Cluster) API(i int) API { return API{URL: c.Nodes[i].URL, Token: RootToken} }

// Stop ends every node gracefully.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		if n != nil {
			wg.Add(1)
			go func() { defer wg.Done(); n.Stop(10 * time.Second) }()
		}
	}
	wg.Wait()
}

// Load is a workload: Jobs jobs in pipelines of JobsPerPipeline (at most
// 200, one parallel job), one project per node whose pipelines are
// created through that node, and Runners runners spread over the nodes.
type Load struct {
	Jobs            int
	JobsPerPipeline int
	Runners         int
	Work            Work
	// PipelinesFirst creates every pipeline before the runners start.
	PipelinesFirst bool
}

// ProjectOn is a project and the node that holds its repository.
type ProjectOn struct {
	Project
	Node int
}

// Run is a workload in progress.
type Run struct {
	Ledger   *Ledger
	Projects []ProjectOn
	Total    int
	Runners  []*Runner
	Started  time.Time // when the runners started

	created   atomic.Int64
	createErr chan error
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// StartLoad creates the projects and runners, then creates the pipelines
// (in the background unless PipelinesFirst) while the runners work.
func StartLoad(ctx context.Context, c *Cluster, l Load) (*Run, error) {
	if l.JobsPerPipeline <= 0 || l.JobsPerPipeline > 200 {
		return nil, fmt.Errorf("fleet: JobsPerPipeline must be 1..200")
	}
	pipelines := (l.Jobs + l.JobsPerPipeline - 1) / l.JobsPerPipeline
	run := &Run{Ledger: NewLedger(), Total: pipelines * l.JobsPerPipeline, createErr: make(chan error, 1)}
	config := fmt.Sprintf("work:\n  parallel: %d\n  script: [\"true\"]\n", l.JobsPerPipeline)
	if l.JobsPerPipeline == 1 {
		config = "work:\n  script: [\"true\"]\n"
	}
	for i := range c.Nodes {
		p, err := c.API(i).CreateProject(ctx, "load-"+strconv.Itoa(i+1), config)
		if err != nil {
			return nil, fmt.Errorf("project on node %d: %w", i+1, err)
		}
		run.Projects = append(run.Projects, ProjectOn{Project: p, Node: i})
	}
	// The commit that added .gitlab-ci.yml started a pipeline of its own;
	// those jobs count as well.
	run.Total += len(c.Nodes) * l.JobsPerPipeline
	tokens, err := CreateRunners(ctx, c, l.Runners, nil)
	if err != nil {
		return nil, err
	}
	create := func() error {
		for k := 0; k < pipelines; k++ {
			p := run.Projects[k%len(run.Projects)]
			if _, err := c.API(p.Node).CreatePipeline(ctx, p.ID); err != nil {
				return fmt.Errorf("pipeline %d on node %d: %w", k, p.Node+1, err)
			}
			run.created.Add(1)
		}
		return nil
	}
	if l.PipelinesFirst {
		if err := create(); err != nil {
			return nil, err
		}
		run.createErr <- nil
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	run.cancel = cancel
	urls := c.URLs()
	for i, tok := range tokens {
		r := NewRunner(tok, fmt.Sprintf("s_fleet%07d", i), urls, i, l.Work, run.Ledger)
		run.Runners = append(run.Runners, r)
		run.wg.Add(1)
		go func() { defer run.wg.Done(); r.Run(rctx) }()
	}
	run.Started = time.Now()
	if !l.PipelinesFirst {
		go func() { run.createErr <- create() }()
	}
	return run, nil
}

// CreateRunners creates n instance runners through the nodes in turn.
func CreateRunners(ctx context.Context, c *Cluster, n int, tags []string) ([]string, error) {
	tokens := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range tokens {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tokens[i], errs[i] = c.API(i%len(c.Nodes)).CreateRunner(ctx, "fleet-"+strconv.Itoa(i), tags)
		}()
	}
	wg.Wait()
	return tokens, errors.Join(errs...)
}

// CreatedAll waits for every pipeline to be created.
func (r *Run) CreatedAll(ctx context.Context) error {
	select {
	case err := <-r.createErr:
		r.createErr <- err
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitFinished waits until the runners have finished n jobs, or the
// pipelines could not be created, or ctx ends.
func (r *Run) WaitFinished(ctx context.Context, n int) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for r.Ledger.Finished.Load() < int64(n) {
		select {
		case err := <-r.createErr:
			r.createErr <- err
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("%d of %d jobs finished: %w", r.Ledger.Finished.Load(), n, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Stop ends the runners (a held poll is abandoned) and waits for them.
func (r *Run) Stop() {
	r.cancel()
	r.wg.Wait()
}
