package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

// Agents read their CI access from their configuration file on the default
// branch; a job sees the agents granted to its project and groups.
func TestClusterAgentsAllowedToJobs(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			ctx := context.Background()
			group := func(name string, parent int64) int64 {
				var g struct{ ID int64 }
				body := map[string]any{"name": name, "path": name}
				if parent != 0 {
					body["parent_id"] = parent
				}
				if code := n.api("POST", "/groups", body, &g); code != 201 {
					t.Fatalf("group %s: %d", name, code)
				}
				return g.ID
			}
			project := func(name string, ns int64) int64 {
				var p struct{ ID int64 }
				if code := n.api("POST", "/projects", map[string]any{"name": name, "namespace_id": ns}, &p); code != 201 {
					t.Fatalf("project %s: %d", name, code)
				}
				return p.ID
			}
			commit := func(pid int64, path, content string) {
				var out map[string]any
				code := n.api("POST", fmt.Sprintf("/projects/%d/repository/files/%s", pid, url.PathEscape(path)),
					map[string]any{"branch": "main", "content": content, "commit_message": "add " + path}, &out)
				if code != 201 {
					code = n.api("PUT", fmt.Sprintf("/projects/%d/repository/files/%s", pid, url.PathEscape(path)),
						map[string]any{"branch": "main", "content": content, "commit_message": "update " + path}, &out)
				}
				if code != 200 && code != 201 {
					t.Fatalf("commit %s: %d %v", path, code, out)
				}
			}
			acme := group("acme", 0)
			tools := group("tools", acme)
			other := group("other", 0)
			infra := project("infra", acme)
			app := project("app", tools)
			project("x", other)

			commit(infra, ".gitlab/agents/deployer/config.yaml", `
ci_access:
  projects:
    - id: ACME/tools/app
      default_namespace: apps
    - id: other/x
    - id: acme/missing
`)
			commit(infra, ".gitlab/agents/grouped/config.yaml", `
ci_access:
  groups:
    - id: acme
      default_namespace: far
    - id: acme/tools
      default_namespace: near
`)
			commit(infra, ".gitlab/agents/prod-only/config.yaml", `
ci_access:
  groups:
    - id: acme/tools
      environments: [production]
`)
			commit(infra, ".gitlab/agents/protected/config.yaml", `
ci_access:
  projects:
    - id: acme/tools/app
      protected_branches_only: true
`)
			commit(infra, ".gitlab/agents/impersonating/config.yaml", `
ci_access:
  projects:
    - id: acme/tools/app
      access_as:
        ci_job: {}
`)
			agentID := map[string]int64{}
			for _, pa := range []struct {
				pid  int64
				name string
			}{{infra, "deployer"}, {infra, "grouped"}, {infra, "prod-only"}, {infra, "protected"}, {infra, "impersonating"}, {app, "local"}} {
				var a struct {
					ID            int64
					Name          string
					ConfigProject struct{ ID int64 } `json:"config_project"`
				}
				if code := n.api("POST", fmt.Sprintf("/projects/%d/cluster_agents", pa.pid), map[string]any{"name": pa.name}, &a); code != 201 || a.ConfigProject.ID != pa.pid {
					t.Fatalf("create agent %s: %d %+v", pa.name, code, a)
				}
				agentID[pa.name] = a.ID
			}

			// A running job of acme/tools/app with a job token.
			commit(app, ".gitlab-ci.yml", "build:\n  script: [make]\n")
			var pls []pipelineJSON
			waitFor(t, "app pipeline", func() bool { pls = n.pipelines(app); return len(pls) == 1 })
			var jobID int64
			waitFor(t, "build pending", func() bool {
				jobID = n.jobs(app, pls[0].ID)["build"].ID
				return n.jobs(app, pls[0].ID)["build"].Status == "pending"
			})
			if _, err := n.app.Store.TransitionJob(ctx, store.TransitionParams{JobID: jobID, From: ci.StatusPending, To: ci.StatusRunning, Now: time.Now()}); err != nil {
				t.Fatal(err)
			}
			const token = "glcbt-agents-job-token"
			if err := n.app.Store.SetJobToken(ctx, jobID, ci.HashToken(token)); err != nil {
				t.Fatal(err)
			}
			allowed := func() (int, map[string]any) {
				code, _, body := n.raw("GET", "/job/allowed_agents", nil, map[string]string{"JOB-TOKEN": token})
				var out map[string]any
				if code == 200 {
					if err := json.Unmarshal(body, &out); err != nil {
						t.Fatal(err)
					}
				}
				return code, out
			}
			code, out := allowed()
			if code != 200 {
				t.Fatalf("allowed_agents: %d", code)
			}
			// Grants naming the project first, then the project's own agents,
			// then group grants (nearest group wins); the environment-bound,
			// protected-only and impersonating grants do not apply.
			want := []any{
				map[string]any{"id": float64(agentID["deployer"]), "configuration": map[string]any{"default_namespace": "apps"}},
				map[string]any{"id": float64(agentID["local"]), "configuration": map[string]any{}},
				map[string]any{"id": float64(agentID["grouped"]), "configuration": map[string]any{"default_namespace": "near"}},
			}
			var got []any
			for _, a := range out["allowed_agents"].([]any) {
				m := a.(map[string]any)
				got = append(got, map[string]any{"id": m["id"], "configuration": m["configuration"]})
				cp := m["config_project"].(map[string]any)
				if cp["path_with_namespace"] == nil || cp["created_at"] == nil || len(cp) != 7 {
					t.Fatalf("config_project %v", cp)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("allowed agents\n got %v\nwant %v", got, want)
			}
			if _, has := out["environment"]; has {
				t.Fatalf("environment present for a job without one: %v", out)
			}
			wantRest := map[string]any{
				"job": map[string]any{"id": float64(jobID)}, "pipeline": map[string]any{"id": float64(pls[0].ID)},
				"project": map[string]any{"id": float64(app), "groups": []any{map[string]any{"id": float64(acme)}, map[string]any{"id": float64(tools)}}},
				"user":    map[string]any{"id": float64(1), "username": "root", "roles_in_project": []any{"guest", "planner", "reporter", "developer", "maintainer", "owner"}},
			}
			for k, v := range wantRest {
				if !reflect.DeepEqual(out[k], v) {
					t.Fatalf("%s: got %v want %v", k, out[k], v)
				}
			}

			// The default branch moving re-reads the configuration.
			commit(infra, ".gitlab/agents/deployer/config.yaml", "ci_access:\n  projects:\n    - id: acme/infra\n")
			if _, out = allowed(); len(out["allowed_agents"].([]any)) != 2 {
				t.Fatalf("after the configuration dropped the project: %v", out["allowed_agents"])
			}
			// Deleting an agent removes it.
			if code, _, _ := n.raw("DELETE", fmt.Sprintf("/projects/%d/cluster_agents/%d", app, agentID["local"]), nil, map[string]string{"PRIVATE-TOKEN": rootToken}); code != 204 {
				t.Fatalf("delete agent: %d", code)
			}
			if _, out = allowed(); len(out["allowed_agents"].([]any)) != 1 {
				t.Fatalf("after deleting the local agent: %v", out["allowed_agents"])
			}

			// Other credentials: a personal token is 404, none 401, a finished job's 401.
			if code, _, body := n.raw("GET", "/job/allowed_agents", nil, map[string]string{"PRIVATE-TOKEN": rootToken}); code != 404 || string(body) != `{"message":"404 Job Not Found"}` {
				t.Fatalf("PAT: %d %s", code, body)
			}
			if code, _, _ := n.raw("GET", "/job/allowed_agents", nil, nil); code != 401 {
				t.Fatalf("anonymous: %d", code)
			}
			if _, err := n.app.Store.TransitionJob(ctx, store.TransitionParams{JobID: jobID, From: ci.StatusRunning, To: ci.StatusSuccess, Now: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if code, _ := allowed(); code != http.StatusUnauthorized {
				t.Fatalf("finished job's token: %d", code)
			}
		})
	}
}
