// Package agents keeps the CI access that cluster agents grant, and answers
// which agents a running job may use (GET /api/v4/job/allowed_agents).
//
// An agent's configuration file (.gitlab/agents/<name>/config.yaml on its
// project's default branch) lists ci_access.projects and ci_access.groups
// by full path. The file is read when the agent is created and whenever the
// default branch moves; the grants it names, within the configuration
// project's top-level namespace, are stored.
package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"gopkg.in/yaml.v3"

	"gantry/internal/ci"
	"gantry/internal/githost"
	"gantry/internal/store"
)

// MaxEntries is how many projects (and, separately, groups) one agent
// configuration may grant; entries past it are ignored, as GitLab does.
const MaxEntries = 500

// Files reads a repository file at a revision.
type Files interface {
	ReadFile(ctx context.Context, projectID int64, rev, path string) ([]byte, error)
}

// Service refreshes grants and answers allowed-agents queries.
type Service struct {
	Store store.Store
	Files Files
	Log   *slog.Logger
}

// entry is one ci_access item: the path it names and the rest of the item.
type entry struct {
	path   string
	config []byte
}

// parseCIAccess reads ci_access.projects and ci_access.groups. Each item's
// id is the full path (compared case-insensitively); the rest of the item
// is kept as the grant's configuration.
func parseCIAccess(doc []byte) (projects, groups []entry, err error) {
	var cfg struct {
		CIAccess struct {
			Projects []map[string]any `yaml:"projects"`
			Groups   []map[string]any `yaml:"groups"`
		} `yaml:"ci_access"`
	}
	if err := yaml.Unmarshal(doc, &cfg); err != nil {
		return nil, nil, fmt.Errorf("agent configuration: %w", err)
	}
	convert := func(items []map[string]any) ([]entry, error) {
		var out []entry
		for _, item := range items {
			if len(out) == MaxEntries {
				break
			}
			id, _ := item["id"].(string)
			if id == "" {
				continue
			}
			rest := map[string]any{}
			for k, v := range item {
				if k != "id" {
					rest[k] = v
				}
			}
			b, err := json.Marshal(rest)
			if err != nil {
				return nil, fmt.Errorf("agent configuration entry %q: %w", id, err)
			}
			out = append(out, entry{path: strings.ToLower(strings.Trim(id, "/")), config: b})
		}
		return out, nil
	}
	if projects, err = convert(cfg.CIAccess.Projects); err != nil {
		return nil, nil, err
	}
	groups, err = convert(cfg.CIAccess.Groups)
	return projects, groups, err
}

// rootOf is the id of a namespace's top-level ancestor.
func (s *Service) rootOf(ctx context.Context, namespaceID int64) (int64, []*ci.Namespace, error) {
	chain, err := s.Store.NamespaceAncestors(ctx, namespaceID)
	if err != nil {
		return 0, nil, err
	}
	if len(chain) == 0 {
		return 0, nil, fmt.Errorf("namespace %d has no chain", namespaceID)
	}
	return chain[len(chain)-1].ID, chain, nil
}

// Refresh re-reads an agent's configuration from its project's default
// branch and stores the grants it names. A missing file or branch grants
// nothing; a file that does not parse leaves the stored grants as they are.
func (s *Service) Refresh(ctx context.Context, p *ci.Project, agent *ci.ClusterAgent) error {
	doc, err := s.Files.ReadFile(ctx, p.ID, "refs/heads/"+p.DefaultBranch, ci.AgentConfigPath(agent.Name))
	switch {
	case errors.Is(err, githost.ErrFileMissing), errors.Is(err, githost.ErrRefNotFound),
		errors.Is(err, githost.ErrBranchMissing), errors.Is(err, githost.ErrRepoNotFound):
		doc = nil
	case err != nil:
		return err
	}
	projectEntries, groupEntries, err := parseCIAccess(doc)
	if err != nil {
		return err
	}
	root, chain, err := s.rootOf(ctx, p.NamespaceID)
	if err != nil {
		return err
	}
	// Grants reach only inside the configuration project's top-level
	// namespace: its projects, and its groups when it is a group.
	var projects, groups []ci.AgentGrant
	for _, e := range projectEntries {
		target, err := s.Store.ProjectByFullPath(ctx, e.path)
		if errors.Is(err, ci.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if r, _, err := s.rootOf(ctx, target.NamespaceID); err != nil {
			return err
		} else if r == root {
			projects = append(projects, ci.AgentGrant{AgentID: agent.ID, TargetID: target.ID, Config: e.config})
		}
	}
	if chain[len(chain)-1].Kind == ci.NamespaceGroup {
		for _, e := range groupEntries {
			ns, err := s.Store.NamespaceByFullPath(ctx, e.path)
			if errors.Is(err, ci.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if ns.Kind != ci.NamespaceGroup {
				continue
			}
			if r, _, err := s.rootOf(ctx, ns.ID); err != nil {
				return err
			} else if r == root {
				groups = append(groups, ci.AgentGrant{AgentID: agent.ID, TargetID: ns.ID, Config: e.config})
			}
		}
	}
	return s.Store.ReplaceAgentGrants(ctx, agent.ID, dedupe(projects), dedupe(groups))
}

// dedupe keeps the first grant per target (a path listed twice).
func dedupe(gs []ci.AgentGrant) []ci.AgentGrant {
	seen := map[int64]bool{}
	out := gs[:0]
	for _, g := range gs {
		if !seen[g.TargetID] {
			seen[g.TargetID] = true
			out = append(out, g)
		}
	}
	return out
}

// RefreshProject refreshes every agent of the project, after its default
// branch moved. Failures are logged: a push never fails because of them.
func (s *Service) RefreshProject(ctx context.Context, p *ci.Project) {
	const page = 100
	for offset := 0; ; offset += page {
		list, err := s.Store.ListAgents(ctx, p.ID, page, offset)
		if err != nil {
			s.Log.Warn("agents: list", "project", p.ID, "err", err)
			return
		}
		for _, a := range list {
			if err := s.Refresh(ctx, p, a); err != nil {
				s.Log.Warn("agents: refresh", "project", p.ID, "agent", a.Name, "err", err)
			}
		}
		if len(list) < page {
			return
		}
	}
}

// Allowed is one agent a job may use, with the configuration that applies.
type Allowed struct {
	Agent         *ci.ClusterAgent
	ConfigProject *ci.Project
	Config        map[string]any
}

// Query describes the job asking.
type Query struct {
	Project *ci.Project
	// Environment is the job's environment name; nil when it has none.
	Environment *string
	// ProtectedRef tells whether the pipeline's ref is protected.
	ProtectedRef bool
}

// AllowedFor lists the agents a job of q.Project may use: grants naming the
// project, then the project's own agents, then grants naming its groups
// (the nearest group winning), one per agent, each agent's configuration
// project within the job project's top-level namespace; then filtered by
// environment and by protected_branches_only.
func (s *Service) AllowedFor(ctx context.Context, q Query) ([]Allowed, error) {
	root, chain, err := s.rootOf(ctx, q.Project.NamespaceID)
	if err != nil {
		return nil, err
	}
	inGroup := len(chain) > 0 && chain[0].Kind == ci.NamespaceGroup
	var groupIDs []int64
	if inGroup {
		for _, ns := range chain { // nearest first
			groupIDs = append(groupIDs, ns.ID)
		}
	}
	projectGrants, groupGrants, err := s.Store.AgentGrantsFor(ctx, q.Project.ID, groupIDs)
	if err != nil {
		return nil, err
	}
	own, err := s.Store.ListAgents(ctx, q.Project.ID, 10000, 0)
	if err != nil {
		return nil, err
	}
	// Nearest group first per agent.
	distance := map[int64]int{}
	for i, id := range groupIDs {
		distance[id] = i
	}
	nearest := map[int64]ci.AgentGrant{}
	var groupOrder []int64
	for _, g := range groupGrants {
		cur, seen := nearest[g.AgentID]
		if !seen {
			groupOrder = append(groupOrder, g.AgentID)
		}
		if !seen || distance[g.TargetID] < distance[cur.TargetID] {
			nearest[g.AgentID] = g
		}
	}
	type candidate struct {
		agentID int64
		config  []byte
		crossNS bool // grant from another project: its agent must share the top-level namespace
	}
	var cands []candidate
	for _, g := range projectGrants {
		cands = append(cands, candidate{g.AgentID, g.Config, true})
	}
	for _, a := range own {
		cands = append(cands, candidate{a.ID, []byte("{}"), false})
	}
	for _, id := range groupOrder {
		cands = append(cands, candidate{id, nearest[id].Config, true})
	}
	var ids []int64
	for _, c := range cands {
		ids = append(ids, c.agentID)
	}
	agentsByID, err := s.Store.AgentsByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []Allowed
	seen := map[int64]bool{}
	for _, c := range cands {
		a := agentsByID[c.agentID]
		if a == nil || seen[a.ID] {
			continue
		}
		cp, err := s.Store.ProjectByID(ctx, a.ProjectID)
		if err != nil {
			return nil, err
		}
		if c.crossNS {
			r, _, err := s.rootOf(ctx, cp.NamespaceID)
			if err != nil {
				return nil, err
			}
			if r != root {
				continue
			}
		}
		var cfg map[string]any
		if err := json.Unmarshal(c.config, &cfg); err != nil {
			return nil, fmt.Errorf("agent %d grant: %w", a.ID, err)
		}
		if cfg == nil {
			cfg = map[string]any{}
		}
		seen[a.ID] = true
		if !impersonationAvailable(cfg) || !environmentMatches(cfg, q.Environment) || (!q.ProtectedRef && cfg["protected_branches_only"] == true) {
			continue
		}
		out = append(out, Allowed{Agent: a, ConfigProject: cp, Config: cfg})
	}
	return out, nil
}

// impersonationAvailable drops grants whose access_as asks for a mode this
// edition does not offer: only acting as the agent itself is available.
func impersonationAvailable(cfg map[string]any) bool {
	v, ok := cfg["access_as"]
	if !ok || v == nil {
		return true
	}
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if len(m) == 0 {
		return true
	}
	_, agent := m["agent"]
	return agent
}

// environmentMatches applies a grant's environments list: no list admits
// every job; otherwise the job's environment must match one pattern, where
// "*" matches any run of characters.
func environmentMatches(cfg map[string]any, env *string) bool {
	list, _ := cfg["environments"].([]any)
	if len(list) == 0 {
		return true
	}
	if env == nil {
		return false
	}
	for _, p := range list {
		if s, ok := p.(string); ok && ci.WildcardMatch(s, *env) {
			return true
		}
	}
	return false
}
