package httpapi

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/store"
)

type namespaceEntity struct {
	ID        int64   `json:"id"`
	Name      string  `json:"name"`
	Path      string  `json:"path"`
	Kind      string  `json:"kind"`
	FullPath  string  `json:"full_path"`
	ParentID  *int64  `json:"parent_id"`
	AvatarURL *string `json:"avatar_url"`
	WebURL    string  `json:"web_url"`
}

func (a *API) namespaceEntity(n *ci.Namespace) namespaceEntity {
	web := a.cfg.ExternalURL + "/" + n.FullPath
	if n.Kind == ci.NamespaceGroup {
		web = a.cfg.ExternalURL + "/groups/" + n.FullPath
	}
	return namespaceEntity{ID: n.ID, Name: n.Name, Path: n.Path, Kind: string(n.Kind), FullPath: n.FullPath, ParentID: n.ParentID, WebURL: web}
}

type projectEntity struct {
	ID                     int64           `json:"id"`
	Description            string          `json:"description"`
	Name                   string          `json:"name"`
	NameWithNamespace      string          `json:"name_with_namespace"`
	Path                   string          `json:"path"`
	PathWithNamespace      string          `json:"path_with_namespace"`
	CreatedAt              Time            `json:"created_at"`
	DefaultBranch          string          `json:"default_branch"`
	TagList                []string        `json:"tag_list"`
	Topics                 []string        `json:"topics"`
	SSHURLToRepo           string          `json:"ssh_url_to_repo"`
	HTTPURLToRepo          string          `json:"http_url_to_repo"`
	WebURL                 string          `json:"web_url"`
	ReadmeURL              *string         `json:"readme_url"`
	ForksCount             int             `json:"forks_count"`
	AvatarURL              *string         `json:"avatar_url"`
	StarCount              int             `json:"star_count"`
	LastActivityAt         Time            `json:"last_activity_at"`
	Namespace              namespaceEntity `json:"namespace"`
	Visibility             string          `json:"visibility"`
	Archived               bool            `json:"archived"`
	EmptyRepo              bool            `json:"empty_repo"`
	JobsEnabled            bool            `json:"jobs_enabled"`
	BuildsAccessLevel      string          `json:"builds_access_level"`
	PublicJobs             bool            `json:"public_jobs"`
	CreatorID              int64           `json:"creator_id"`
	CIJobTokenScopeEnabled bool            `json:"ci_job_token_scope_enabled"`
	OpenIssuesCount        int             `json:"open_issues_count"`
	UpdatedAt              Time            `json:"updated_at"`
	Permissions            *permissions    `json:"permissions,omitempty"`
}

type accessEntity struct {
	AccessLevel       int `json:"access_level"`
	NotificationLevel int `json:"notification_level"`
}

type permissions struct {
	ProjectAccess *accessEntity `json:"project_access"`
	GroupAccess   *accessEntity `json:"group_access"`
}

func (a *API) projectEntity(p *ci.Project, access ci.AccessLevel, withPermissions bool) *projectEntity {
	web := a.projectURL(p)
	e := &projectEntity{
		ID: p.ID, Description: p.Description, Name: p.Name, NameWithNamespace: p.Namespace.FullName + " / " + p.Name,
		Path: p.Path, PathWithNamespace: p.FullPath, CreatedAt: Time(p.CreatedAt), DefaultBranch: p.DefaultBranch,
		TagList: []string{}, Topics: []string{}, SSHURLToRepo: "", HTTPURLToRepo: web + ".git", WebURL: web,
		LastActivityAt: Time(p.LastActivityAt), Namespace: a.namespaceEntity(&p.Namespace), Visibility: string(p.Visibility),
		Archived: p.Archived, JobsEnabled: true, BuildsAccessLevel: "enabled", PublicJobs: p.PublicBuilds, CreatorID: p.CreatorID,
		CIJobTokenScopeEnabled: p.CIJobTokenScopeEnabled, UpdatedAt: Time(p.UpdatedAt),
	}
	if withPermissions {
		e.Permissions = &permissions{}
		if access > ci.NoAccess {
			e.Permissions.ProjectAccess = &accessEntity{AccessLevel: int(access), NotificationLevel: 3}
		}
	}
	return e
}

// GET /projects/:id
func (a *API) handleGetProject(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.authenticate(r, authUser)
	if err != nil {
		return err
	}
	pv, err := a.findProject(r, ident)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.projectEntity(pv.project, pv.viewer.Access, ident != nil))
	return nil
}

// PUT /projects/:id: of the project settings, gantry keeps
// max_artifacts_size (administrators only, as in GitLab). Maintainers may
// call it; other settings are not modelled and are ignored.
func (a *API) handleUpdateProject(w http.ResponseWriter, r *http.Request) error {
	pv, p, err := a.userProject(r)
	if err != nil {
		return err
	}
	if !ci.CanAdminBuilds(pv.project, pv.viewer) {
		return errForbidden
	}
	if p.has("max_artifacts_size") {
		if !pv.ident.admin() {
			return errForbidden
		}
		var mb *int
		if v := strings.TrimSpace(p.str("max_artifacts_size")); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return errParam("max_artifacts_size is invalid")
			}
			if n > 0 { // 0 falls back to the instance limit
				mb = &n
			}
		}
		if err := a.store.SetProjectMaxArtifactsSize(r.Context(), pv.project.ID, mb); err != nil {
			return err
		}
		if pv.project, err = a.store.ProjectByID(r.Context(), pv.project.ID); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, a.projectEntity(pv.project, pv.viewer.Access, true))
	return nil
}

// GET /projects
func (a *API) handleListProjects(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.authenticate(r, authUser)
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
	membership, _, err := p.boolParam("membership")
	if err != nil {
		return err
	}
	f := store.ProjectFilter{ViewerID: ident.userID(), Admin: ident.admin(), Membership: membership, Search: p.str("search"),
		Offset: (pp.Page - 1) * pp.PerPage, Limit: pp.PerPage + 1}
	projects, err := a.store.ListProjects(r.Context(), f)
	if err != nil {
		return err
	}
	projects, hasNext := pageOf(projects, pp.PerPage)
	a.offsetHeaders(w, r, p, pp, hasNext, -1, nil)
	out := make([]*projectEntity, len(projects))
	for i, pr := range projects {
		var access ci.AccessLevel
		if ident != nil {
			if access, err = a.store.ProjectAccess(r.Context(), ident.userID(), pr); err != nil {
				return err
			}
		}
		out[i] = a.projectEntity(pr, access, ident != nil)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

var pathPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.\-]{0,254}$`)

func validPath(s string) bool {
	return pathPattern.MatchString(s) && !strings.HasSuffix(s, ".git") && !strings.HasSuffix(s, ".atom") && !strings.Contains(s, "..")
}

// pathFromName derives a path from a name as GitLab does (roughly: lower-case, dashes).
func pathFromName(name string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(strings.TrimSpace(name)) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-.")
}

func visibilityParam(p *params, def ci.Visibility) (ci.Visibility, error) {
	v := p.str("visibility")
	if v == "" {
		return def, nil
	}
	vis := ci.Visibility(v)
	if !vis.Valid() {
		return "", errParam("visibility does not have a valid value")
	}
	return vis, nil
}

// POST /projects
func (a *API) handleCreateProject(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	name, path := strings.TrimSpace(p.str("name")), strings.TrimSpace(p.str("path"))
	if name == "" && path == "" {
		return errParam("name, path are missing, at least one parameter must be provided")
	}
	vis, err := visibilityParam(p, ci.Private)
	if err != nil {
		return err
	}
	nsID, hasNS, err := p.intParam("namespace_id")
	if err != nil {
		return err
	}
	publicBuilds := true
	for _, key := range []string{"public_builds", "public_jobs"} {
		if v, ok, err := p.boolParam(key); err != nil {
			return err
		} else if ok {
			publicBuilds = v
		}
	}
	if name == "" {
		name = path
	}
	if path == "" {
		path = pathFromName(name)
	}
	if !validPath(path) {
		return errBadRequest("path is invalid")
	}
	ctx := r.Context()
	var ns *ci.Namespace
	if hasNS {
		ns, err = a.store.NamespaceByID(ctx, nsID)
		if errors.Is(err, ci.ErrNotFound) {
			return errNamespaceMissing
		}
		if err != nil {
			return err
		}
		if ns.Kind == ci.NamespaceGroup {
			access, err := a.groupAccess(r, ident, ns)
			if err != nil {
				return err
			}
			if access < ci.Developer && !ident.admin() {
				return errNamespaceMissing
			}
		} else if (ns.OwnerID == nil || *ns.OwnerID != ident.User.ID) && !ident.admin() {
			return errNamespaceMissing
		}
	} else {
		if ns, err = a.personalNamespace(r, ident.User); err != nil {
			return err
		}
	}
	proj, err := a.store.CreateProject(ctx, store.CreateProjectParams{
		NamespaceID: ns.ID, Name: name, Path: path, Description: p.str("description"), Visibility: vis,
		PublicBuilds: publicBuilds, DefaultBranch: p.str("default_branch"), CreatorID: ident.User.ID, Now: a.now(),
	})
	if errors.Is(err, ci.ErrConflict) {
		return &apiError{status: http.StatusBadRequest, body: map[string]any{"message": map[string][]string{
			"name": {"has already been taken"}, "path": {"has already been taken"}}}}
	}
	if err != nil {
		return err
	}
	if a.repos != nil {
		// The repository is also created on first use; a failure here must
		// not leave a project the caller believes was refused.
		if err := a.repos.Init(ctx, proj.ID, proj.DefaultBranch); err != nil {
			a.log.Warn("create repository", "project", proj.ID, "err", err)
		}
	}
	if ns.Kind == ci.NamespaceUser {
		// Creators own projects in their own namespace through the namespace.
		access := ci.Owner
		writeJSON(w, http.StatusCreated, a.projectEntity(proj, access, true))
		return nil
	}
	if err := a.store.AddMember(ctx, store.AddMemberParams{Source: store.MemberOfProject, SourceID: proj.ID, UserID: ident.User.ID, AccessLevel: ci.Maintainer, Now: a.now()}); err != nil {
		return err
	}
	access, err := a.store.ProjectAccess(ctx, ident.User.ID, proj)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.projectEntity(proj, access, true))
	return nil
}

// personalNamespace returns (creating on first use) the user's namespace.
func (a *API) personalNamespace(r *http.Request, u *ci.User) (*ci.Namespace, error) {
	ns, err := a.store.NamespaceByFullPath(r.Context(), u.Username)
	if err == nil {
		if ns.Kind != ci.NamespaceUser || ns.OwnerID == nil || *ns.OwnerID != u.ID {
			return nil, errMessage(http.StatusConflict, "409 Conflict - namespace "+u.Username+" belongs to someone else")
		}
		return ns, nil
	}
	if !errors.Is(err, ci.ErrNotFound) {
		return nil, err
	}
	owner := u.ID
	return a.store.CreateNamespace(r.Context(), store.CreateNamespaceParams{
		Name: u.Name, Path: u.Username, Kind: ci.NamespaceUser, OwnerID: &owner, Visibility: ci.Public, Now: a.now(),
	})
}

type memberEntity struct {
	ID          int64   `json:"id"`
	Username    string  `json:"username"`
	Name        string  `json:"name"`
	State       string  `json:"state"`
	Locked      bool    `json:"locked"`
	AvatarURL   *string `json:"avatar_url"`
	WebURL      string  `json:"web_url"`
	AccessLevel int     `json:"access_level"`
	CreatedAt   Time    `json:"created_at"`
	ExpiresAt   *string `json:"expires_at"`
}

// addMember implements POST /projects/:id/members and /groups/:id/members.
func (a *API) addMember(w http.ResponseWriter, r *http.Request, ident *identity, source store.MemberSource, sourceID int64, callerAccess ci.AccessLevel) error {
	p, err := readParams(r)
	if err != nil {
		return err
	}
	var missing []string
	if !p.has("user_id") && !p.has("username") {
		missing = append(missing, "user_id, username are missing, exactly one parameter must be provided")
	}
	if !p.has("access_level") {
		missing = append(missing, "access_level is missing")
	}
	if len(missing) > 0 {
		return errParam(strings.Join(missing, ", "))
	}
	level, _, err := p.intParam("access_level")
	if err != nil {
		return err
	}
	if !ci.AccessLevel(level).Valid() {
		return errParam("access_level does not have a valid value")
	}
	if callerAccess < ci.Maintainer && !ident.admin() {
		return errForbidden
	}
	if ci.AccessLevel(level) == ci.Owner && callerAccess < ci.Owner && !ident.admin() {
		return errForbidden
	}
	ctx := r.Context()
	var user *ci.User
	if p.has("user_id") {
		uid, _, err := p.intParam("user_id")
		if err != nil {
			return err
		}
		user, err = a.store.UserByID(ctx, uid)
		if errors.Is(err, ci.ErrNotFound) {
			return errUserNotFound
		}
		if err != nil {
			return err
		}
	} else {
		user, err = a.store.UserByUsername(ctx, p.str("username"))
		if errors.Is(err, ci.ErrNotFound) {
			return errUserNotFound
		}
		if err != nil {
			return err
		}
	}
	now := a.now()
	if err := a.store.AddMember(ctx, store.AddMemberParams{Source: source, SourceID: sourceID, UserID: user.ID, AccessLevel: ci.AccessLevel(level), Now: now}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, memberEntity{
		ID: user.ID, Username: user.Username, Name: user.Name, State: user.State, WebURL: a.cfg.ExternalURL + "/" + user.Username,
		AccessLevel: int(level), CreatedAt: Time(now),
	})
	return nil
}

// POST /projects/:id/members
func (a *API) handleAddProjectMember(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	pv, err := a.findProject(r, ident)
	if err != nil {
		return err
	}
	return a.addMember(w, r, ident, store.MemberOfProject, pv.project.ID, pv.viewer.Access)
}

// groupAccess is the caller's highest access to a group or its ancestors.
func (a *API) groupAccess(r *http.Request, ident *identity, ns *ci.Namespace) (ci.AccessLevel, error) {
	if ident == nil || ident.User == nil {
		return ci.NoAccess, nil
	}
	// A synthetic project in the namespace lets the store walk the ancestors.
	probe := &ci.Project{ID: -1, NamespaceID: ns.ID, Namespace: *ns}
	return a.store.ProjectAccess(r.Context(), ident.User.ID, probe)
}

type groupEntity struct {
	ID          int64   `json:"id"`
	WebURL      string  `json:"web_url"`
	Name        string  `json:"name"`
	Path        string  `json:"path"`
	Description string  `json:"description"`
	Visibility  string  `json:"visibility"`
	FullName    string  `json:"full_name"`
	FullPath    string  `json:"full_path"`
	CreatedAt   Time    `json:"created_at"`
	ParentID    *int64  `json:"parent_id"`
	AvatarURL   *string `json:"avatar_url"`
}

func (a *API) groupEntity(n *ci.Namespace) *groupEntity {
	return &groupEntity{ID: n.ID, WebURL: a.cfg.ExternalURL + "/groups/" + n.FullPath, Name: n.Name, Path: n.Path, Description: n.Description,
		Visibility: string(n.Visibility), FullName: n.FullName, FullPath: n.FullPath, CreatedAt: Time(n.CreatedAt), ParentID: n.ParentID}
}

// POST /groups
func (a *API) handleCreateGroup(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	if err := p.requireStr("name", "path"); err != nil {
		return err
	}
	vis, err := visibilityParam(p, ci.Private)
	if err != nil {
		return err
	}
	parentID, hasParent, err := p.intParam("parent_id")
	if err != nil {
		return err
	}
	if !validPath(p.str("path")) {
		return errBadRequest("path is invalid")
	}
	ctx := r.Context()
	var parent *int64
	if hasParent {
		pn, err := a.store.NamespaceByID(ctx, parentID)
		if errors.Is(err, ci.ErrNotFound) || (err == nil && pn.Kind != ci.NamespaceGroup) {
			return errGroupNotFound
		}
		if err != nil {
			return err
		}
		access, err := a.groupAccess(r, ident, pn)
		if err != nil {
			return err
		}
		if access < ci.Maintainer && !ident.admin() {
			return errForbidden
		}
		parent = &pn.ID
	}
	ns, err := a.store.CreateNamespace(ctx, store.CreateNamespaceParams{Name: p.str("name"), Path: p.str("path"), Kind: ci.NamespaceGroup,
		ParentID: parent, Visibility: vis, Description: p.str("description"), Now: a.now()})
	if errors.Is(err, ci.ErrConflict) {
		return errBadRequest("Failed to save group {:path=>[\"has already been taken\"]}")
	}
	if err != nil {
		return err
	}
	if err := a.store.AddMember(ctx, store.AddMemberParams{Source: store.MemberOfNamespace, SourceID: ns.ID, UserID: ident.User.ID, AccessLevel: ci.Owner, Now: a.now()}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.groupEntity(ns))
	return nil
}

// findGroup resolves :id (numeric or full path) to a group the caller can see.
func (a *API) findGroup(r *http.Request, ident *identity) (*ci.Namespace, ci.AccessLevel, error) {
	raw := r.PathValue("id")
	var ns *ci.Namespace
	var err error
	if isDigits(raw) {
		id, perr := strconv.ParseInt(raw, 10, 64)
		if perr != nil {
			return nil, 0, errGroupNotFound
		}
		ns, err = a.store.NamespaceByID(r.Context(), id)
	} else {
		ns, err = a.store.NamespaceByFullPath(r.Context(), raw)
	}
	if errors.Is(err, ci.ErrNotFound) || (err == nil && ns.Kind != ci.NamespaceGroup) {
		return nil, 0, errGroupNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	access, err := a.groupAccess(r, ident, ns)
	if err != nil {
		return nil, 0, err
	}
	visible := ns.Visibility == ci.Public || (ns.Visibility == ci.Internal && ident != nil) || access >= ci.Guest || ident.admin()
	if !visible && ident != nil && ident.User != nil {
		if visible, err = a.hasProjectsIn(r, ident.User.ID, ns); err != nil {
			return nil, 0, err
		}
	}
	if !visible {
		return nil, 0, errGroupNotFound
	}
	return ns, access, nil
}

// hasProjectsIn is GitLab's has_projects: a member of a project anywhere
// below a group may read the group.
func (a *API) hasProjectsIn(r *http.Request, userID int64, ns *ci.Namespace) (bool, error) {
	prefix := strings.ToLower(ns.FullPath) + "/"
	f := store.ProjectFilter{ViewerID: userID, Membership: true, Search: prefix, Limit: 100}
	for {
		page, err := a.store.ListProjects(r.Context(), f)
		if err != nil {
			return false, err
		}
		for _, p := range page {
			if strings.HasPrefix(strings.ToLower(p.FullPath), prefix) {
				return true, nil
			}
		}
		if len(page) < f.Limit {
			return false, nil
		}
		f.AfterID = page[len(page)-1].ID
	}
}

// GET /groups/:id
func (a *API) handleGetGroup(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.authenticate(r, authUser)
	if err != nil {
		return err
	}
	ns, _, err := a.findGroup(r, ident)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.groupEntity(ns))
	return nil
}

// POST /groups/:id/members
func (a *API) handleAddGroupMember(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	ns, access, err := a.findGroup(r, ident)
	if err != nil {
		return err
	}
	return a.addMember(w, r, ident, store.MemberOfNamespace, ns.ID, access)
}
