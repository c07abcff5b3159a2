package ci

// AccessLevel is GitLab's membership level.
type AccessLevel int

const (
	NoAccess   AccessLevel = 0
	Guest      AccessLevel = 10
	Planner    AccessLevel = 15
	Reporter   AccessLevel = 20
	Developer  AccessLevel = 30
	Maintainer AccessLevel = 40
	Owner      AccessLevel = 50
)

// Valid reports whether the level is one a membership may hold.
func (a AccessLevel) Valid() bool {
	switch a {
	case Guest, Planner, Reporter, Developer, Maintainer, Owner:
		return true
	}
	return false
}

// Visibility is a project's or group's visibility level.
type Visibility string

const (
	Private  Visibility = "private"
	Internal Visibility = "internal"
	Public   Visibility = "public"
)

// Valid reports whether v is a known visibility.
func (v Visibility) Valid() bool { return v == Private || v == Internal || v == Public }

// Level is GitLab's numeric visibility_level.
func (v Visibility) Level() int {
	switch v {
	case Internal:
		return 10
	case Public:
		return 20
	}
	return 0
}

// Scope is a token scope.
type Scope string

const (
	ScopeAPI     Scope = "api"
	ScopeReadAPI Scope = "read_api"
)

// Valid reports whether the scope is supported.
func (s Scope) Valid() bool { return s == ScopeAPI || s == ScopeReadAPI }
