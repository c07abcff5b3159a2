package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"gantry/internal/agents"
	"gantry/internal/ci"
)

// projectIdentity is GitLab's ProjectIdentity entity.
type projectIdentity struct {
	ID                int64   `json:"id"`
	Description       *string `json:"description"`
	Name              string  `json:"name"`
	NameWithNamespace string  `json:"name_with_namespace"`
	Path              string  `json:"path"`
	PathWithNamespace string  `json:"path_with_namespace"`
	CreatedAt         Time    `json:"created_at"`
}

func projectIdentityOf(p *ci.Project) projectIdentity {
	var desc *string
	if p.Description != "" {
		desc = &p.Description
	}
	return projectIdentity{ID: p.ID, Description: desc, Name: p.Name, NameWithNamespace: p.Namespace.FullName + " / " + p.Name,
		Path: p.Path, PathWithNamespace: p.FullPath, CreatedAt: Time(p.CreatedAt)}
}

// agentEntity is GitLab's Clusters::Agent entity.
type agentEntity struct {
	ID              int64           `json:"id"`
	Name            string          `json:"name"`
	ConfigProject   projectIdentity `json:"config_project"`
	CreatedAt       Time            `json:"created_at"`
	CreatedByUserID *int64          `json:"created_by_user_id"`
}

func agentEntityOf(a *ci.ClusterAgent, p *ci.Project) agentEntity {
	return agentEntity{ID: a.ID, Name: a.Name, ConfigProject: projectIdentityOf(p), CreatedAt: Time(a.CreatedAt), CreatedByUserID: a.CreatedByUserID}
}

var errAgentsNotFound = errMessage(http.StatusNotFound, "404 ClusterAgents Not Found")

// canReadAgents is read_cluster: developers and above.
func canReadAgents(pv *projectView) bool {
	return ci.CanReadProject(pv.project, pv.viewer) && (pv.viewer.User != nil && pv.viewer.User.Admin || pv.viewer.Access >= ci.Developer)
}

// GET /projects/:id/cluster_agents
func (a *API) handleListAgents(w http.ResponseWriter, r *http.Request) error {
	pv, p, err := a.userProject(r)
	if err != nil {
		return err
	}
	pp, err := p.pagination()
	if err != nil {
		return err
	}
	if !canReadAgents(pv) {
		return errAgentsNotFound
	}
	ctx := r.Context()
	total, err := a.store.CountAgents(ctx, pv.project.ID)
	if err != nil {
		return err
	}
	list, err := a.store.ListAgents(ctx, pv.project.ID, pp.PerPage+1, (pp.Page-1)*pp.PerPage)
	if err != nil {
		return err
	}
	list, hasNext := pageOf(list, pp.PerPage)
	a.offsetHeaders(w, r, p, pp, hasNext, total, map[string]string{"id": r.PathValue("id")})
	out := make([]agentEntity, len(list))
	for i, ag := range list {
		out[i] = agentEntityOf(ag, pv.project)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// findAgent resolves :agent_id among the project's agents.
func (a *API) findAgent(r *http.Request, pv *projectView) (*ci.ClusterAgent, error) {
	return byPathID(r, "agent_id", func(id int64) (*ci.ClusterAgent, error) {
		if !canReadAgents(pv) {
			return nil, ci.ErrNotFound
		}
		return a.store.AgentByID(r.Context(), pv.project.ID, id)
	})
}

// GET /projects/:id/cluster_agents/:agent_id
func (a *API) handleGetAgent(w http.ResponseWriter, r *http.Request) error {
	pv, _, err := a.userProject(r)
	if err != nil {
		return err
	}
	ag, err := a.findAgent(r, pv)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, agentEntityOf(ag, pv.project))
	return nil
}

// POST /projects/:id/cluster_agents
func (a *API) handleCreateAgent(w http.ResponseWriter, r *http.Request) error {
	pv, p, err := a.userProject(r)
	if err != nil {
		return err
	}
	if !p.has("name") {
		return errParam("name is missing")
	}
	if !ci.CanAdminBuilds(pv.project, pv.viewer) {
		return errForbidden
	}
	name := p.str("name")
	if problems := ci.AgentNameProblems(name); len(problems) > 0 {
		return errBadRequest(rubyStringList(problems))
	}
	ag, err := a.store.CreateAgent(r.Context(), ci.ClusterAgent{ProjectID: pv.project.ID, Name: name, CreatedByUserID: &pv.ident.User.ID, CreatedAt: a.now()})
	if errors.Is(err, ci.ErrConflict) {
		return errBadRequest(rubyStringList([]string{"Name has already been taken"}))
	}
	if err != nil {
		return err
	}
	if a.agents != nil {
		// The configuration may already be on the default branch.
		if err := a.agents.Refresh(r.Context(), pv.project, ag); err != nil {
			a.log.Warn("agents: refresh after create", "agent", ag.ID, "err", err)
		}
	}
	writeJSON(w, http.StatusCreated, agentEntityOf(ag, pv.project))
	return nil
}

// DELETE /projects/:id/cluster_agents/:agent_id
func (a *API) handleDeleteAgent(w http.ResponseWriter, r *http.Request) error {
	pv, _, err := a.userProject(r)
	if err != nil {
		return err
	}
	if !ci.CanAdminBuilds(pv.project, pv.viewer) {
		return errForbidden
	}
	ag, err := a.findAgent(r, pv)
	if err != nil {
		return err
	}
	if err := a.store.DeleteAgent(r.Context(), pv.project.ID, ag.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rubyStringList renders messages the way GitLab interpolates an array of
// validation messages into an error: ["a", "b"].
func rubyStringList(msgs []string) string {
	quoted := make([]string, len(msgs))
	for i, m := range msgs {
		quoted[i] = strconv.Quote(m)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// GET /job/allowed_agents
func (a *API) handleAllowedAgents(w http.ResponseWriter, r *http.Request) error {
	ident, project, err := a.tokenJob(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	job := ident.Job
	pl, err := a.store.PipelineByID(ctx, project.ID, job.PipelineID)
	if err != nil {
		return err
	}
	chain, err := a.store.NamespaceAncestors(ctx, project.NamespaceID)
	if err != nil {
		return err
	}
	groups := []map[string]int64{}
	if len(chain) > 0 && chain[0].Kind == ci.NamespaceGroup {
		for i := len(chain) - 1; i >= 0; i-- { // top-level group first
			groups = append(groups, map[string]int64{"id": chain[i].ID})
		}
	}
	access, err := a.store.ProjectAccess(ctx, ident.User.ID, project)
	if err != nil {
		return err
	}
	roles := ci.RolesUpTo(access)
	if roles == nil {
		roles = []string{}
	}
	allowed := []map[string]any{}
	if a.agents != nil {
		// Jobs carry no persisted environment in gantry: grants limited to
		// environments never apply.
		list, err := a.agents.AllowedFor(ctx, agents.Query{Project: project, ProtectedRef: pl.Protected})
		if err != nil {
			return fmt.Errorf("allowed agents: %w", err)
		}
		for _, al := range list {
			allowed = append(allowed, map[string]any{"id": al.Agent.ID, "config_project": projectIdentityOf(al.ConfigProject), "configuration": al.Config})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"allowed_agents": allowed,
		"job":            map[string]int64{"id": job.ID},
		"pipeline":       map[string]int64{"id": pl.ID},
		"project":        map[string]any{"id": project.ID, "groups": groups},
		"user":           map[string]any{"id": ident.User.ID, "username": ident.User.Username, "roles_in_project": roles},
	})
	return nil
}
