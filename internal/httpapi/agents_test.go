package httpapi_test

import (
	"fmt"
	"testing"

	"gantry/internal/testenv"
)

const iso = "2006-01-02T15:04:05.000Z"

func TestClusterAgentsAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		base := "/api/v4/projects/" + pid(e) + "/cluster_agents"
		as := func(role string) string { return "PRIVATE-TOKEN: " + e.fx.Tokens[role] }
		expect(t, e.req("GET", base, ""), 401, `{"message":"401 Unauthorized"}`)
		expect(t, e.req("GET", base, "", as("outsider")), 404, `{"message":"404 Project Not Found"}`)
		expect(t, e.req("GET", base, "", as("reporter")), 404, `{"message":"404 ClusterAgents Not Found"}`)
		expect(t, e.req("POST", base, `{"name":"deployer"}`, as("developer")), 403, `{"message":"403 Forbidden"}`)
		expect(t, e.req("POST", base, `{}`, as("maintainer")), 400, `{"error":"name is missing"}`)
		expect(t, e.req("POST", base, `{"name":"-Bad"}`, as("maintainer")), 400,
			`{"message":"400 Bad request - [\"Name can contain only lowercase letters, digits, and '-', but cannot start or end with '-'\"]"}`)
		r := e.req("POST", base, `{"name":"deployer"}`, as("maintainer"))
		created := fmt.Sprintf(`{"id":1,"name":"deployer","config_project":{"id":%d,"description":null,"name":"%s","name_with_namespace":"Acme / Tools / %s","path":"%s","path_with_namespace":"acme/tools/app.core","created_at":%q},"created_at":%q,"created_by_user_id":%d}`,
			e.fx.Project.ID, e.fx.Project.Name, e.fx.Project.Name, e.fx.Project.Path, e.fx.Project.CreatedAt.UTC().Format(iso), testenv.T0.UTC().Format(iso), e.fx.Maintainer.ID)
		expect(t, r, 201, created)
		expect(t, e.req("POST", base, `{"name":"deployer"}`, as("maintainer")), 400, `{"message":"400 Bad request - [\"Name has already been taken\"]"}`)
		r = e.req("GET", base, "", as("developer"))
		expect(t, r, 200, "["+created+"]")
		if r.header.Get("X-Total") != "1" || r.header.Get("X-Page") != "1" {
			t.Fatalf("pagination headers %v", r.header)
		}
		expect(t, e.req("GET", base+"/1", "", as("developer")), 200, created)
		expect(t, e.req("GET", base+"/1", "", as("reporter")), 404, `{"message":"404 Not found"}`)
		expect(t, e.req("GET", base+"/2", "", as("developer")), 404, `{"message":"404 Not found"}`)
		expect(t, e.req("DELETE", base+"/1", "", as("developer")), 403, `{"message":"403 Forbidden"}`)
		expect(t, e.req("DELETE", base+"/1", "", as("maintainer")), 204, "")
		expect(t, e.req("DELETE", base+"/1", "", as("maintainer")), 404, `{"message":"404 Not found"}`)
	})
}
