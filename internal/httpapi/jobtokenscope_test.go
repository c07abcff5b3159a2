package httpapi_test

import (
	"fmt"
	"testing"
)

func TestJobTokenScope(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		jobs := "/api/v4/projects/" + pid(e) + "/jobs"
		scope := "/api/v4/projects/" + pid(e) + "/job_token_scope"
		maint := "PRIVATE-TOKEN: " + e.fx.Tokens["maintainer"]
		other := "JOB-TOKEN: " + e.fx.OtherJobToken
		denied := `{"message":"403 Forbidden - Authentication by CI/CD job token not allowed from acme/other to acme/tools/app.core."}`
		expect(t, e.req("GET", scope, "", maint), 200, `{"inbound_enabled":true,"outbound_enabled":false}`)
		expect(t, e.req("GET", scope, "", "PRIVATE-TOKEN: "+e.fx.Tokens["developer"]), 403, `{"message":"403 Forbidden"}`)
		expect(t, e.req("GET", jobs, "", other), 403, denied)
		// A maintainer who cannot see the other project cannot add it.
		expect(t, e.req("POST", scope+"/allowlist", fmt.Sprintf(`{"target_project_id":%d}`, e.fx.Other.ID), maint), 404, `{"message":"404 Project Not Found"}`)
		// Allowlisting the other project lets its job tokens in.
		root := "PRIVATE-TOKEN: " + e.fx.Tokens["root"]
		r := e.req("POST", scope+"/allowlist", fmt.Sprintf(`{"target_project_id":%d}`, e.fx.Other.ID), root)
		expect(t, r, 201, fmt.Sprintf(`{"source_project_id":%d,"target_project_id":%d}`, e.fx.Project.ID, e.fx.Other.ID))
		expect(t, e.req("POST", scope+"/allowlist", fmt.Sprintf(`{"target_project_id":%d}`, e.fx.Other.ID), root), 400, "")
		expect(t, e.req("GET", jobs, "", other), 200, "")
		r = e.req("GET", scope+"/allowlist", "", maint)
		if rows := r.list(t); len(rows) != 1 || int64(rows[0]["id"].(float64)) != e.fx.Other.ID {
			t.Fatalf("allowlist %s", r.body)
		}
		expect(t, e.req("DELETE", fmt.Sprintf("%s/allowlist/%d", scope, e.fx.Other.ID), "", maint), 204, "")
		expect(t, e.req("DELETE", fmt.Sprintf("%s/allowlist/%d", scope, e.fx.Other.ID), "", maint), 404, `{"message":"404 Not found"}`)
		expect(t, e.req("GET", jobs, "", other), 403, denied)
		// A group on the allowlist admits its projects' jobs.
		expect(t, e.req("POST", scope+"/groups_allowlist", fmt.Sprintf(`{"target_group_id":%d}`, e.fx.Group.ID), root), 201, "")
		expect(t, e.req("GET", jobs, "", other), 200, "")
		expect(t, e.req("DELETE", fmt.Sprintf("%s/groups_allowlist/%d", scope, e.fx.Group.ID), "", maint), 204, "")
		expect(t, e.req("GET", jobs, "", other), 403, denied)
		// Turning the inbound scope off admits every project's job tokens.
		expect(t, e.req("PATCH", scope, `{"enabled":false}`, maint), 204, "")
		expect(t, e.req("GET", jobs, "", other), 200, "")
		expect(t, e.req("PATCH", scope, `{}`, maint), 400, `{"error":"enabled is missing"}`)
		// A finished job's token stays refused whatever the scope says.
		expect(t, e.req("GET", jobs, "", "JOB-TOKEN: "+e.fx.FinishedJobToken), 401, `{"message":"401 Unauthorized"}`)
	})
}
