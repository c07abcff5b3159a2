package app_test

import (
	"fmt"
	"strings"
	"testing"

	"gantry/internal/ci"
	"gantry/internal/testenv"
)

func TestPipelinesAPI(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			var proj struct{ ID int64 }
			n.api("POST", "/projects", map[string]any{"name": "svc"}, &proj)
			files := fmt.Sprintf("/projects/%d/repository/files/", proj.ID)
			// No configuration yet: the first commit creates no pipeline.
			if code := n.api("POST", files+"README.md", map[string]any{"branch": "main", "content": "x", "commit_message": "init"}, nil); code != 201 {
				t.Fatalf("first commit %d", code)
			}
			var e map[string]any
			if code := n.api("POST", fmt.Sprintf("/projects/%d/pipeline", proj.ID), map[string]any{"ref": "main"}, &e); code != 400 ||
				fmt.Sprint(e["message"]) != "map[base:[Missing CI config file]]" {
				t.Fatalf("missing config: %d %v", code, e)
			}
			if code := n.api("POST", fmt.Sprintf("/projects/%d/pipeline", proj.ID), map[string]any{"ref": "nope"}, &e); code != 400 {
				t.Fatalf("unknown ref: %d %v", code, e)
			}
			if code := n.api("POST", fmt.Sprintf("/projects/%d/pipeline", proj.ID), map[string]any{}, &e); code != 400 || e["error"] != "ref is missing" {
				t.Fatalf("no ref: %d %v", code, e)
			}
			cfg := "build:\n  script: [make]\n  rules:\n    - if: $DEPLOY == \"yes\"\n      when: manual\n    - when: on_success\nslow:\n  script: [sleep 100]\n"
			n.api("POST", files+".gitlab-ci.yml", map[string]any{"branch": "main", "content": cfg, "commit_message": "ci"}, nil)
			var pl pipelineJSON
			if code := n.api("POST", fmt.Sprintf("/projects/%d/pipeline", proj.ID), map[string]any{"ref": "main",
				"variables": []map[string]string{{"key": "DEPLOY", "value": "yes"}}}, &pl); code != 201 || pl.Source != "api" {
				t.Fatalf("create %d %+v", code, pl)
			}
			var jobs map[string]jobJSON
			waitFor(t, "rules applied", func() bool { jobs = n.jobs(proj.ID, pl.ID); return jobs["build"].Status == "manual" })
			var vars []map[string]any
			n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d/variables", proj.ID, pl.ID), nil, &vars)
			if len(vars) != 1 || vars[0]["key"] != "DEPLOY" || vars[0]["variable_type"] != "env_var" {
				t.Fatalf("variables %v", vars)
			}
			// Cancel: every cancelable job ends canceled; retry brings them back.
			var got map[string]any
			if code := n.api("POST", fmt.Sprintf("/projects/%d/pipelines/%d/cancel", proj.ID, pl.ID), nil, &got); code != 200 || got["status"] != "canceled" {
				t.Fatalf("cancel %d %v", code, got["status"])
			}
			if code := n.api("POST", fmt.Sprintf("/projects/%d/pipelines/%d/retry", proj.ID, pl.ID), nil, &got); code != 201 {
				t.Fatalf("retry %d %v", code, got)
			}
			waitFor(t, "retried jobs", func() bool { jobs = n.jobs(proj.ID, pl.ID); return jobs["slow"].Status == "pending" })
			var all []jobJSON
			n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d/jobs?include_retried=true", proj.ID, pl.ID), nil, &all)
			if len(all) != 4 {
				t.Fatalf("with retried: %d jobs", len(all))
			}
			n.finish(jobs["slow"].ID, ci.StatusSuccess)
			// Filters.
			var list []pipelineJSON
			n.api("GET", fmt.Sprintf("/projects/%d/pipelines?ref=main&scope=finished", proj.ID), nil, &list)
			for _, p := range list {
				if p.Ref != "main" {
					t.Fatalf("filter %v", list)
				}
			}
			if code := n.api("GET", fmt.Sprintf("/projects/%d/pipelines?scope=bogus", proj.ID), nil, &e); code != 400 {
				t.Fatalf("bad scope %d", code)
			}
			// Invalid configuration: lint explains, pushes get a failed pipeline with the errors.
			var lint struct {
				Valid  bool     `json:"valid"`
				Errors []string `json:"errors"`
			}
			n.api("POST", fmt.Sprintf("/projects/%d/ci/lint", proj.ID), map[string]any{"content": "job:\n  script: 1\n  bogus_key: 2\n"}, &lint)
			if lint.Valid || len(lint.Errors) == 0 {
				t.Fatalf("lint %+v", lint)
			}
			n.api("POST", fmt.Sprintf("/projects/%d/ci/lint", proj.ID), map[string]any{"content": cfg}, &lint)
			if !lint.Valid {
				t.Fatalf("lint of a valid file: %+v", lint)
			}
			n.api("PUT", files+".gitlab-ci.yml", map[string]any{"branch": "main", "content": "job:\n  bogus: 1\n", "commit_message": "break"}, nil)
			waitFor(t, "failed config pipeline", func() bool {
				var ps []map[string]any
				n.api("GET", fmt.Sprintf("/projects/%d/pipelines", proj.ID), nil, &ps)
				if len(ps) == 0 || ps[0]["status"] != "failed" {
					return false
				}
				var full map[string]any
				n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%v", proj.ID, ps[0]["id"]), nil, &full)
				ye, _ := full["yaml_errors"].(string)
				return strings.Contains(ye, "should implement a script: or a trigger: keyword")
			})
			// Trigger tokens.
			n.api("PUT", files+".gitlab-ci.yml", map[string]any{"branch": "main", "content": cfg, "commit_message": "fix"}, nil)
			var trig struct {
				ID    int64  `json:"id"`
				Token string `json:"token"`
			}
			if code := n.api("POST", fmt.Sprintf("/projects/%d/triggers", proj.ID), map[string]any{"description": "ext"}, &trig); code != 201 || !strings.HasPrefix(trig.Token, "glptt-") {
				t.Fatalf("trigger %d %+v", code, trig)
			}
			if code := n.api("POST", fmt.Sprintf("/projects/%d/trigger/pipeline", proj.ID), map[string]any{"token": trig.Token, "ref": "main"}, &pl); code != 201 || pl.Source != "trigger" {
				t.Fatalf("triggered %d %+v", code, pl)
			}
			if code := n.api("POST", fmt.Sprintf("/projects/%d/trigger/pipeline", proj.ID), map[string]any{"token": "glptt-wrong", "ref": "main"}, &e); code != 404 {
				t.Fatalf("bad trigger token %d", code)
			}
			if code := n.api("DELETE", fmt.Sprintf("/projects/%d/pipelines/%d", proj.ID, pl.ID), nil, nil); code != 204 {
				t.Fatalf("delete %d", code)
			}
			if code := n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d", proj.ID, pl.ID), nil, &e); code != 404 {
				t.Fatalf("deleted pipeline %d", code)
			}
		})
	}
}
