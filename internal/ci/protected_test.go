package ci

import "testing"

func TestCanUpdateRef(t *testing.T) {
	rs := RefProtection{
		{Name: "main", Access: []ProtectedAccess{{Action: ActionPush, AccessLevel: Maintainer}, {Action: ActionMerge, AccessLevel: Developer}}},
		{Name: "release/*", Access: []ProtectedAccess{{Action: ActionPush, AccessLevel: NoAccess}, {Action: ActionMerge, AccessLevel: Maintainer}}},
		{Name: "admin-*", Access: []ProtectedAccess{{Action: ActionPush, AccessLevel: AdminLevel}}},
	}
	dev, maint, owner := Viewer{Access: Developer}, Viewer{Access: Maintainer}, Viewer{Access: Owner}
	admin := Viewer{User: &User{Admin: true}}
	for _, c := range []struct {
		ref  string
		v    Viewer
		want bool
	}{
		{"feature", Viewer{Access: Reporter}, true}, // unprotected: the ref adds nothing
		{"main", dev, true},                         // merge access is enough
		{"release/1.0", dev, false}, {"release/1.0", maint, true},
		{"admin-x", owner, false}, {"admin-x", admin, true},
	} {
		if got := CanUpdateRef(rs, false, c.ref, c.v); got != c.want {
			t.Errorf("%s as %+v: %v", c.ref, c.v.Access, got)
		}
	}
	tags := RefProtection{{Name: "v*", Access: []ProtectedAccess{{Action: ActionCreate, AccessLevel: NoAccess}}}}
	if CanUpdateRef(tags, true, "v1", admin) || !CanUpdateRef(tags, true, "x1", dev) {
		t.Error("tag protection")
	}
}
