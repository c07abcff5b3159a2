package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/store"
)

type runnerDetailEntity struct {
	runnerEntity
	TagList         []string     `json:"tag_list"`
	RunUntagged     bool         `json:"run_untagged"`
	Locked          bool         `json:"locked"`
	MaximumTimeout  *int         `json:"maximum_timeout"`
	AccessLevel     string       `json:"access_level"`
	ContactedAt     *Time        `json:"contacted_at"`
	MaintenanceNote string       `json:"maintenance_note"`
	Projects        []projectRef `json:"projects"`
	Groups          []groupRef   `json:"groups"`
	Version         *string      `json:"version"`
	Revision        *string      `json:"revision"`
	Platform        *string      `json:"platform"`
	Architecture    *string      `json:"architecture"`
}

type projectRef struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	NameWithNamespace string `json:"name_with_namespace"`
	Path              string `json:"path"`
	PathWithNamespace string `json:"path_with_namespace"`
}

type groupRef struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	WebURL string `json:"web_url"`
}

// runnerAccess is the caller's right to manage a runner: admins manage all;
// maintainers manage their projects' runners, owners their groups'.
func (a *API) canManageRunner(ctx context.Context, ident *identity, r *ci.Runner) (bool, error) {
	if ident.admin() {
		return true, nil
	}
	if r.Type == ci.InstanceRunner {
		return false, nil
	}
	projects, namespaces, err := a.store.RunnerScope(ctx, r.ID)
	if err != nil {
		return false, err
	}
	for _, pid := range projects {
		p, err := a.store.ProjectByID(ctx, pid)
		if err != nil {
			continue
		}
		if l, err := a.store.ProjectAccess(ctx, ident.User.ID, p); err == nil && l >= ci.Maintainer {
			return true, nil
		}
	}
	for _, nid := range namespaces {
		ns, err := a.store.NamespaceByID(ctx, nid)
		if err != nil {
			continue
		}
		probe := &ci.Project{ID: -1, NamespaceID: ns.ID, Namespace: *ns}
		if l, err := a.store.ProjectAccess(ctx, ident.User.ID, probe); err == nil && l >= ci.Owner {
			return true, nil
		}
	}
	return false, nil
}

func (a *API) runnerDetail(ctx context.Context, r *ci.Runner) *runnerDetailEntity {
	e := &runnerDetailEntity{runnerEntity: *runnerEntityOf(r, a.now()), TagList: sortedTags(r.TagList), RunUntagged: r.RunUntagged, Locked: r.Locked,
		MaximumTimeout: r.MaximumTimeout, AccessLevel: r.AccessLevel, ContactedAt: tp(r.ContactedAt), MaintenanceNote: r.MaintenanceNote,
		Projects: []projectRef{}, Groups: []groupRef{}}
	projects, namespaces, _ := a.store.RunnerScope(ctx, r.ID)
	for _, pid := range projects {
		if p, err := a.store.ProjectByID(ctx, pid); err == nil {
			e.Projects = append(e.Projects, projectRef{ID: p.ID, Name: p.Name, NameWithNamespace: p.Namespace.FullName + " / " + p.Name, Path: p.Path, PathWithNamespace: p.FullPath})
		}
	}
	for _, nid := range namespaces {
		if ns, err := a.store.NamespaceByID(ctx, nid); err == nil {
			e.Groups = append(e.Groups, groupRef{ID: ns.ID, Name: ns.Name, WebURL: a.cfg.ExternalURL + "/groups/" + ns.FullPath})
		}
	}
	return e
}

// POST /user/runners: create a runner and return its glrt- token once.
func (a *API) handleCreateRunner(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	if err := p.requireStr("runner_type"); err != nil {
		return err
	}
	typ := ci.RunnerType(p.str("runner_type"))
	if typ != ci.InstanceRunner && typ != ci.GroupRunner && typ != ci.ProjectRunner {
		return errParam("runner_type does not have a valid value")
	}
	access := p.str("access_level")
	if access != "" && access != "not_protected" && access != "ref_protected" {
		return errParam("access_level does not have a valid value")
	}
	runUntagged, paused, locked := true, false, false
	for name, dst := range map[string]*bool{"run_untagged": &runUntagged, "paused": &paused, "locked": &locked} {
		if v, ok, err := p.boolParam(name); err != nil {
			return err
		} else if ok {
			*dst = v
		}
	}
	var maxTimeout *int
	if v, ok, err := p.intParam("maximum_timeout"); err != nil {
		return err
	} else if ok {
		if v < 600 {
			return errBadRequest("maximum_timeout needs to be at least 10 minutes")
		}
		t := int(v)
		maxTimeout = &t
	}
	ctx := r.Context()
	var projects, groups []int64
	switch typ {
	case ci.InstanceRunner:
		if !ident.admin() {
			return errForbidden
		}
	case ci.ProjectRunner:
		pid, ok, err := p.intParam("project_id")
		if err != nil {
			return err
		}
		if !ok {
			return errParam("project_id is missing")
		}
		// GitLab's runner creation service: an unknown project is a bad
		// request; one the user may not create runners in (unseen or
		// below maintainer) is refused alike.
		proj, err := a.store.ProjectByID(ctx, pid)
		if errors.Is(err, ci.ErrNotFound) {
			return errBadRequest("Missing/invalid project")
		} else if err != nil {
			return err
		}
		l, err := a.store.ProjectAccess(ctx, ident.User.ID, proj)
		if err != nil {
			return err
		}
		if l < ci.Maintainer && !ident.admin() {
			return errForbiddenReason("Insufficient permissions")
		}
		projects = []int64{proj.ID}
	case ci.GroupRunner:
		gid, ok, err := p.intParam("group_id")
		if err != nil {
			return err
		}
		if !ok {
			return errParam("group_id is missing")
		}
		ns, err := a.store.NamespaceByID(ctx, gid)
		if err != nil || ns.Kind != ci.NamespaceGroup {
			return errGroupNotFound
		}
		l, err := a.groupAccess(r, ident, ns)
		if err != nil {
			return err
		}
		if l < ci.Owner && !ident.admin() {
			return errForbidden
		}
		groups = []int64{ns.ID}
	}
	tags := tagListParam(p)
	secret := ci.NewSecret(ci.RunnerTokenPrefix)
	created, err := a.store.InsertRunner(ctx, ci.Runner{Type: typ, Description: p.str("description"), Paused: paused, Locked: locked,
		RunUntagged: runUntagged, AccessLevel: access, TagList: tags, MaximumTimeout: maxTimeout, CreatedAt: a.now(), CreatedByID: &ident.User.ID,
		MaintenanceNote: p.str("maintenance_note")}, ci.HashToken(secret))
	if err != nil {
		return err
	}
	if len(projects)+len(groups) > 0 {
		if err := a.store.SetRunnerScope(ctx, created.ID, projects, groups); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": created.ID, "token": secret, "token_expires_at": nil})
	return nil
}

func (a *API) listRunners(w http.ResponseWriter, r *http.Request, all bool) error {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	if all && !ident.admin() {
		return errForbidden
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	pp, err := p.pagination()
	if err != nil {
		return err
	}
	f := store.RunnerFilter{Limit: 10000}
	if t := p.str("type"); t != "" {
		rt := ci.RunnerType(t)
		if rt != ci.InstanceRunner && rt != ci.GroupRunner && rt != ci.ProjectRunner {
			return errParam("type does not have a valid value")
		}
		f.Type = rt
	}
	if v, ok, err := p.boolParam("paused"); err != nil {
		return err
	} else if ok {
		f.Paused = &v
	}
	if tl := p.str("tag_list"); tl != "" {
		f.Tags = strings.Split(tl, ",")
	}
	list, err := a.store.ListRunners(r.Context(), f)
	if err != nil {
		return err
	}
	var visible []*ci.Runner
	for _, rn := range list {
		if !all && !ident.admin() {
			ok, err := a.canManageRunner(r.Context(), ident, rn)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		}
		if st := p.str("status"); st != "" && ci.RunnerContactStatus(rn.CreatedAt, rn.ContactedAt, rn.Paused, a.now()) != st {
			continue
		}
		visible = append(visible, rn)
	}
	total := len(visible)
	start := min((pp.Page-1)*pp.PerPage, total)
	end := min(start+pp.PerPage, total)
	a.offsetHeaders(w, r, p, pp, end < total, total, nil)
	out := []*runnerEntity{}
	for _, rn := range visible[start:end] {
		out = append(out, runnerEntityOf(rn, a.now()))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) handleListRunners(w http.ResponseWriter, r *http.Request) error {
	return a.listRunners(w, r, false)
}
func (a *API) handleListAllRunners(w http.ResponseWriter, r *http.Request) error {
	return a.listRunners(w, r, true)
}

// findRunner resolves :id for a caller who may manage the runner; with
// show, an instance runner is enough for any user (GitLab shows instance
// runners' details to everyone signed in).
func (a *API) findRunner(r *http.Request, show bool) (*identity, *ci.Runner, error) {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return nil, nil, err
	}
	id, ok, err := pathID(r, "id")
	if err != nil {
		return nil, nil, err
	}
	notFound := errMessage(http.StatusNotFound, "404 Runner Not Found")
	if !ok {
		return nil, nil, notFound
	}
	m, err := a.store.RunnersByIDs(r.Context(), []int64{id})
	if err != nil {
		return nil, nil, err
	}
	rn := m[id]
	if rn == nil {
		return nil, nil, notFound
	}
	if show && rn.Type == ci.InstanceRunner {
		return ident, rn, nil
	}
	can, err := a.canManageRunner(r.Context(), ident, rn)
	if err != nil {
		return nil, nil, err
	}
	if !can {
		return nil, nil, errForbiddenReason("No access granted")
	}
	return ident, rn, nil
}

// GET /runners/:id
func (a *API) handleGetRunner(w http.ResponseWriter, r *http.Request) error {
	_, rn, err := a.findRunner(r, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.runnerDetail(r.Context(), rn))
	return nil
}

// PUT /runners/:id
func (a *API) handleUpdateRunner(w http.ResponseWriter, r *http.Request) error {
	// GitLab's order: authentication, then the parameters, then the runner.
	if _, err := a.requireUser(r, authUser); err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	apply, err := runnerUpdate(p)
	if err != nil {
		return err
	}
	_, rn, err := a.findRunner(r, false)
	if err != nil {
		return err
	}
	if err := apply(rn); err != nil {
		return err
	}
	updated, err := a.store.UpdateRunner(r.Context(), *rn)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.runnerDetail(r.Context(), updated))
	return nil
}

// runnerUpdateParams are what PUT /runners/:id may change; GitLab wants at
// least one of them, and active and paused are two ways to say one thing.
var runnerUpdateParams = []string{"description", "active", "paused", "tag_list", "run_untagged", "locked", "access_level", "maximum_timeout", "maintenance_note"}

// runnerUpdate checks PUT /runners/:id's parameters and returns the change
// they make; the change refuses what only the runner's own validation
// catches (after the runner was found, as in GitLab).
func runnerUpdate(p *params) (func(*ci.Runner) error, error) {
	given := false
	for _, name := range runnerUpdateParams {
		given = given || p.has(name) || (name == "tag_list" && p.has("tag_list[]"))
	}
	if !given {
		return nil, errParam(strings.Join(runnerUpdateParams, ", ") + " are missing, at least one parameter must be provided")
	}
	if p.has("active") && p.has("paused") {
		return nil, errParam("active, paused are mutually exclusive")
	}
	var changes []func(*ci.Runner)
	tooShort := false
	if p.has("description") {
		v := p.str("description")
		changes = append(changes, func(rn *ci.Runner) { rn.Description = v })
	}
	if p.has("maintenance_note") {
		v := p.str("maintenance_note")
		changes = append(changes, func(rn *ci.Runner) { rn.MaintenanceNote = v })
	}
	for _, b := range []struct {
		name string
		set  func(*ci.Runner, bool)
	}{
		{"paused", func(rn *ci.Runner, v bool) { rn.Paused = v }},
		{"run_untagged", func(rn *ci.Runner, v bool) { rn.RunUntagged = v }},
		{"locked", func(rn *ci.Runner, v bool) { rn.Locked = v }},
		{"active", func(rn *ci.Runner, v bool) { rn.Paused = !v }},
	} {
		v, ok, err := p.boolParam(b.name)
		if err != nil {
			return nil, err
		}
		if ok {
			changes = append(changes, func(rn *ci.Runner) { b.set(rn, v) })
		}
	}
	if p.has("access_level") {
		al := p.str("access_level")
		if al != "not_protected" && al != "ref_protected" {
			return nil, errParam("access_level does not have a valid value")
		}
		changes = append(changes, func(rn *ci.Runner) { rn.AccessLevel = al })
	}
	if v, ok, err := p.intParam("maximum_timeout"); err != nil {
		return nil, err
	} else if ok {
		if v < 600 {
			tooShort = true
		}
		t := int(v)
		changes = append(changes, func(rn *ci.Runner) { rn.MaximumTimeout = &t })
	}
	if p.has("tag_list") || p.has("tag_list[]") {
		tags := tagListParam(p)
		changes = append(changes, func(rn *ci.Runner) { rn.TagList = tags })
	}
	return func(rn *ci.Runner) error {
		if tooShort {
			return errBadRequest("maximum_timeout needs to be at least 10 minutes")
		}
		for _, c := range changes {
			c(rn)
		}
		return nil
	}, nil
}

// DELETE /runners/:id
func (a *API) handleDeleteRunner(w http.ResponseWriter, r *http.Request) error {
	_, rn, err := a.findRunner(r, false)
	if err != nil {
		return err
	}
	if err := a.store.DeleteRunner(r.Context(), rn.ID); err != nil && !errors.Is(err, ci.ErrNotFound) {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// GET /runners/:id/jobs
func (a *API) handleRunnerJobs(w http.ResponseWriter, r *http.Request) error {
	_, rn, err := a.findRunner(r, false)
	if err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	pp, err := p.pagination()
	if err != nil {
		return err
	}
	var statuses []ci.JobStatus
	if s := p.str("status"); s != "" {
		st := ci.JobStatus(s)
		if !st.Valid() {
			return errParam("status does not have a valid value")
		}
		statuses = []ci.JobStatus{st}
	}
	jobs, err := a.store.RunnerJobs(r.Context(), rn.ID, statuses, (pp.Page-1)*pp.PerPage, pp.PerPage+1)
	if err != nil {
		return err
	}
	jobs, hasNext := pageOf(jobs, pp.PerPage)
	a.offsetHeaders(w, r, p, pp, hasNext, -1, map[string]string{"id": r.PathValue("id")})
	buf := []byte{'['}
	for i, j := range jobs {
		proj, err := a.store.ProjectByID(r.Context(), j.ProjectID)
		if err != nil {
			return err
		}
		jc, err := a.loadJobContext(r.Context(), proj, []*ci.Job{j}, nil)
		if err != nil {
			return err
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = a.appendJob(buf, jc, j)
	}
	writeRawJSON(w, http.StatusOK, append(buf, ']'))
	return nil
}

// GET /projects/:id/runners
func (a *API) handleProjectRunners(w http.ResponseWriter, r *http.Request) error {
	pv, err := a.authorizedProject(r, (*projectView).canAdminBuilds)
	if err != nil {
		return err
	}
	list, err := a.store.ListRunners(r.Context(), store.RunnerFilter{ProjectID: pv.project.ID, Limit: 10000})
	if err != nil {
		return err
	}
	out := []*runnerEntity{}
	for _, rn := range list {
		out = append(out, runnerEntityOf(rn, a.now()))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// tagListParam reads tag_list as "a,b", repeated, or tag_list[].
func tagListParam(p *params) []string {
	var tags []string
	for _, raw := range append(append([]string{}, p.values["tag_list[]"]...), p.values["tag_list"]...) {
		for _, t := range strings.Split(raw, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return tags
}
