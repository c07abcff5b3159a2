package ci

import (
	"strings"
	"time"
)

// RefKind tells a protected branch from a protected tag.
type RefKind string

const (
	RefBranch RefKind = "branch"
	RefTag    RefKind = "tag"
)

// RefKindOf names the kind of a branch (tag false) or tag ref.
func RefKindOf(tag bool) RefKind {
	if tag {
		return RefTag
	}
	return RefBranch
}

// ProtectedAction is what an access level on a protected ref governs.
type ProtectedAction string

const (
	ActionPush      ProtectedAction = "push"
	ActionMerge     ProtectedAction = "merge"
	ActionUnprotect ProtectedAction = "unprotect"
	ActionCreate    ProtectedAction = "create" // tags
)

// AdminLevel is the protected-ref level only administrators hold.
const AdminLevel AccessLevel = 60

// ProtectedAccess is one role allowed an action on a protected ref; NoAccess
// means no one.
type ProtectedAccess struct {
	ID          int64
	Action      ProtectedAction
	AccessLevel AccessLevel
}

// ProtectedRef is a protected branch or tag: an exact name or a wildcard
// pattern in which "*" stands for any run of characters.
type ProtectedRef struct {
	ID                        int64
	ProjectID                 int64
	Kind                      RefKind
	Name                      string
	AllowForcePush            bool
	CodeOwnerApprovalRequired bool
	Access                    []ProtectedAccess
	CreatedAt                 time.Time
}

// Matches reports whether the ref name falls under this protection.
func (p *ProtectedRef) Matches(name string) bool { return WildcardMatch(p.Name, name) }

// Levels lists the access levels given for an action.
func (p *ProtectedRef) Levels(a ProtectedAction) []AccessLevel {
	var out []AccessLevel
	for _, x := range p.Access {
		if x.Action == a {
			out = append(out, x.AccessLevel)
		}
	}
	return out
}

// WildcardMatch matches name against pattern, "*" standing for any run of
// characters (slashes included).
func WildcardMatch(pattern, name string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == name
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(name, mid)
		if i < 0 {
			return false
		}
		name = name[i+len(mid):]
	}
	return strings.HasSuffix(name, parts[len(parts)-1])
}

// RefProtection holds a project's protected refs of one kind.
type RefProtection []*ProtectedRef

// Matching returns the protections covering name.
func (rs RefProtection) Matching(name string) []*ProtectedRef {
	var out []*ProtectedRef
	for _, p := range rs {
		if p.Matches(name) {
			out = append(out, p)
		}
	}
	return out
}

// allows reports whether a viewer holds one of the levels: no one holds
// NoAccess; administrators hold every other level.
func allows(levels []AccessLevel, v Viewer) bool {
	for _, l := range levels {
		if l == NoAccess {
			continue
		}
		if v.User != nil && v.User.Admin || l != AdminLevel && v.Access >= l {
			return true
		}
	}
	return false
}

// Allows reports whether the viewer holds one of the levels for an action.
func (p *ProtectedRef) Allows(a ProtectedAction, v Viewer) bool { return allows(p.Levels(a), v) }

// CanUpdateRef is GitLab's test for running, retrying or playing CI on a
// ref: unprotected refs need nothing more; a protected branch needs push or
// merge rights under every protection that covers it, a protected tag the
// right to create it.
func CanUpdateRef(rs RefProtection, tag bool, name string, v Viewer) bool {
	for _, p := range rs.Matching(name) {
		if tag {
			if !allows(p.Levels(ActionCreate), v) {
				return false
			}
			continue
		}
		if !allows(p.Levels(ActionPush), v) && !allows(p.Levels(ActionMerge), v) {
			return false
		}
	}
	return true
}

// AccessLevelDescription is GitLab's wording for a protected-ref level.
func AccessLevelDescription(l AccessLevel) string {
	switch l {
	case NoAccess:
		return "No one"
	case Developer:
		return "Developers + Maintainers"
	case Maintainer:
		return "Maintainers"
	case Owner:
		return "Owners"
	case AdminLevel:
		return "Administrators"
	}
	return ""
}
