package httpapi_test

import (
	"testing"

	"gantry/internal/ci"
)

func TestProtectedRefs(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		branches := "/api/v4/projects/" + pid(e) + "/protected_branches"
		tags := "/api/v4/projects/" + pid(e) + "/protected_tags"
		as := func(role string) string { return "PRIVATE-TOKEN: " + e.fx.Tokens[role] }
		js := e.fx.JobsByStatus

		// Before protection a developer retries a job on main.
		expect(t, e.action("developer", js[ci.StatusFailed], "retry", ""), 201, "")

		// No authentication hook: an anonymous caller meets the private project's 404.
		expect(t, e.req("POST", branches, `{"name":"main"}`), 404, `{"message":"404 Project Not Found"}`)
		expect(t, e.req("POST", branches, `{"name":"main"}`, as("developer")), 403, `{"message":"403 Forbidden"}`)
		expect(t, e.req("POST", branches, `{}`, as("maintainer")), 400, `{"error":"name is missing"}`)
		expect(t, e.req("POST", branches, `{"name":"main","push_access_level":35}`, as("maintainer")), 400, `{"error":"push_access_level does not have a valid value"}`)
		main := `{"id":1,"name":"main","push_access_levels":[{"access_level":40,"access_level_description":"Maintainers"}],` +
			`"merge_access_levels":[{"access_level":40,"access_level_description":"Maintainers"}],"allow_force_push":false}`
		expect(t, e.req("POST", branches, `{"name":"main"}`, as("maintainer")), 201, main)
		expect(t, e.req("POST", branches, `{"name":"main"}`, as("maintainer")), 409, `{"message":"Protected branch 'main' already exists"}`)
		expect(t, e.req("POST", branches, `{"name":"release/*","push_access_level":0,"merge_access_level":30,"allow_force_push":true}`, as("maintainer")), 201,
			`{"id":2,"name":"release/*","push_access_levels":[{"access_level":0,"access_level_description":"No one"}],`+
				`"merge_access_levels":[{"access_level":30,"access_level_description":"Developers + Maintainers"}],"allow_force_push":true}`)
		expect(t, e.req("GET", branches+"/main", "", as("reporter")), 200, main)
		expect(t, e.req("GET", branches+"/release%2F%2A", "", as("reporter")), 200, "")
		expect(t, e.req("GET", branches+"/nope", "", as("reporter")), 404, `{"message":"404 Not found"}`)
		expect(t, e.req("GET", branches, "", as("guest")), 403, `{"message":"403 Forbidden"}`)
		expect(t, e.req("GET", branches, "", as("outsider")), 404, `{"message":"404 Project Not Found"}`)
		r := e.req("GET", branches+"?search=REL", "", as("developer"))
		if rows := r.list(t); len(rows) != 1 || rows[0]["name"] != "release/*" || r.header.Get("X-Total") != "1" {
			t.Fatalf("search: %s %v", r.body, r.header)
		}

		// On the protected branch only maintainers act on jobs.
		forbidden := `{"message":"403 Forbidden"}`
		expect(t, e.action("developer", js[ci.StatusCanceled], "retry", ""), 403, forbidden)
		expect(t, e.action("developer", js[ci.StatusPending], "cancel", ""), 403, forbidden)
		expect(t, e.action("developer", js[ci.StatusManual], "play", ""), 403, forbidden)
		expect(t, e.action("developer", js[ci.StatusSuccess], "erase", ""), 403, forbidden)
		expect(t, e.action("developer", js[ci.StatusSuccess], "artifacts/keep", ""), 403, forbidden)
		expect(t, e.action("maintainer", js[ci.StatusCanceled], "retry", ""), 201, "")

		// Tags are maintainers' to see and manage; a tag pipeline's jobs follow create_access_level.
		expect(t, e.req("GET", tags, "", as("developer")), 403, forbidden)
		expect(t, e.req("POST", tags, `{"name":"v*"}`, as("maintainer")), 201, `{"name":"v*","create_access_levels":[{"access_level":40,"access_level_description":"Maintainers"}]}`)
		expect(t, e.req("POST", tags, `{"name":"v*"}`, as("maintainer")), 422, `{"message":["Name has already been taken"]}`)
		expect(t, e.action("developer", e.fx.TagJob, "retry", ""), 403, forbidden)
		expect(t, e.req("DELETE", tags+"/v%2A", "", as("maintainer")), 204, "")
		expect(t, e.req("POST", tags, `{"name":"v1.*","create_access_level":30}`, as("maintainer")), 201,
			`{"name":"v1.*","create_access_levels":[{"access_level":30,"access_level_description":"Developers + Maintainers"}]}`)
		r = e.action("developer", e.fx.TagJob, "retry", "")
		if r.status == 403 {
			t.Fatalf("developer with create access retrying a tag job: %s", r.body)
		}

		// Unprotecting restores the developer's rights.
		expect(t, e.req("DELETE", branches+"/main", "", as("developer")), 403, forbidden)
		expect(t, e.req("DELETE", branches+"/main", "", as("maintainer")), 204, "")
		expect(t, e.req("DELETE", branches+"/main", "", as("maintainer")), 404, `{"message":"404 Not found"}`)
		expect(t, e.action("developer", js[ci.StatusPending], "cancel", ""), 201, "")
	})
}
