package ci

// Viewer is who is asking: a user (or nobody) and their effective access to
// one project, computed by the store from project and ancestor-group memberships.
type Viewer struct {
	User   *User
	Access AccessLevel // NoAccess for non-members
}

// CanReadProject decides visibility. A project the viewer cannot read must
// answer 404, never 403.
func CanReadProject(p *Project, v Viewer) bool {
	if v.User != nil && v.User.Admin {
		return true
	}
	switch p.Visibility {
	case Public:
		return true
	case Internal:
		return v.User != nil && !v.User.Bot || v.Access >= Guest
	}
	return v.Access >= Guest
}

// CanReadBuilds is GitLab's read_build: reporter and above, or anyone who can
// see the project when public pipelines are on.
func CanReadBuilds(p *Project, v Viewer) bool {
	if !CanReadProject(p, v) {
		return false
	}
	if v.User != nil && v.User.Admin || v.Access >= Reporter {
		return true
	}
	return p.PublicBuilds
}

// CanReadCode is GitLab's read_code (download_code): anyone who can see a
// public or internal project; reporters and above on a private one.
func CanReadCode(p *Project, v Viewer) bool {
	if !CanReadProject(p, v) {
		return false
	}
	return p.Visibility != Private || v.Access >= Reporter || v.User != nil && v.User.Admin
}

// CanReadPipelines is GitLab's read_pipeline.
func CanReadPipelines(p *Project, v Viewer) bool { return CanReadBuilds(p, v) }

// CanUpdateBuilds is update_build: developer and above (admins included).
func CanUpdateBuilds(p *Project, v Viewer) bool {
	return CanReadProject(p, v) && (v.User != nil && v.User.Admin || v.Access >= Developer)
}

// CanAdminBuilds is maintainer and above.
func CanAdminBuilds(p *Project, v Viewer) bool {
	return CanReadProject(p, v) && (v.User != nil && v.User.Admin || v.Access >= Maintainer)
}

// RolesUpTo lists role names whose level is at most a.
func RolesUpTo(a AccessLevel) []string {
	var out []string
	for _, r := range []struct {
		l AccessLevel
		n string
	}{{Guest, "guest"}, {Planner, "planner"}, {Reporter, "reporter"}, {Developer, "developer"}, {Maintainer, "maintainer"}, {Owner, "owner"}} {
		if r.l <= a {
			out = append(out, r.n)
		}
	}
	return out
}
