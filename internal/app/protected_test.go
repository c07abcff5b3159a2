package app_test

import (
	"context"
	"fmt"
	"testing"

	"gantry/internal/ci"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

// Protected branches restrict who may run CI on them, and protected-only
// runners take only protected pipelines' jobs.
func TestProtectedBranchesAndRunners(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			ctx := context.Background()
			pid := n.setupProject("app", "build:\n  script: [make]\n")
			var pls []pipelineJSON
			waitFor(t, "unprotected pipeline", func() bool { pls = n.pipelines(pid); return len(pls) == 1 })
			unprotected := pls[0].ID

			// A protected-only runner finds nothing in an unprotected pipeline.
			var runner struct {
				ID    int64  `json:"id"`
				Token string `json:"token"`
			}
			if code := n.api("POST", "/user/runners", map[string]any{"runner_type": "instance_type", "access_level": "ref_protected", "run_untagged": true}, &runner); code != 201 {
				t.Fatalf("protected runner: %d", code)
			}
			waitFor(t, "build pending", func() bool { return n.jobs(pid, unprotected)["build"].Status == "pending" })
			if code, _, _ := n.requestJob(runner.Token, ""); code != 204 {
				t.Fatalf("protected-only runner took an unprotected job: %d", code)
			}

			// Protect main; a developer may no longer run pipelines on it.
			var pb map[string]any
			if code := n.api("POST", fmt.Sprintf("/projects/%d/protected_branches", pid), map[string]any{"name": "ma*"}, &pb); code != 201 {
				t.Fatalf("protect: %d %v", code, pb)
			}
			var dev struct{ ID int64 }
			n.api("POST", "/users", map[string]any{"username": "dev", "name": "Dev", "email": "dev@example.com", "password": "password-1234"}, &dev)
			n.api("POST", fmt.Sprintf("/projects/%d/members", pid), map[string]any{"user_id": dev.ID, "access_level": 30}, nil)
			var tok struct{ Token string }
			n.api("POST", fmt.Sprintf("/users/%d/personal_access_tokens", dev.ID), map[string]any{"name": "t", "scopes": []string{"api"}}, &tok)
			devHdr := map[string]string{"PRIVATE-TOKEN": tok.Token, "Content-Type": "application/json"}
			code, _, body := n.raw("POST", fmt.Sprintf("/projects/%d/pipeline", pid), []byte(`{"ref":"main"}`), devHdr)
			if code != 400 || string(body) != `{"message":{"base":["Insufficient permissions for protected ref 'main'"]}}` {
				t.Fatalf("developer pipeline on a protected branch: %d %s", code, body)
			}
			code, _, body = n.raw("POST", fmt.Sprintf("/projects/%d/pipelines/%d/cancel", pid, unprotected), nil, devHdr)
			if code != 403 {
				t.Fatalf("developer cancel on a protected branch: %d %s", code, body)
			}

			// A maintainer's pipeline on the protected branch is protected, and
			// the protected-only runner takes its job, told the ref is protected.
			var pl pipelineJSON
			if code := n.api("POST", fmt.Sprintf("/projects/%d/pipeline", pid), map[string]any{"ref": "main"}, &pl); code != 201 {
				t.Fatalf("maintainer pipeline: %d", code)
			}
			// Take the old unprotected job out of the way first.
			old := n.jobs(pid, unprotected)["build"].ID
			if _, err := n.app.Store.TransitionJob(ctx, store.TransitionParams{JobID: old, From: ci.StatusPending, To: ci.StatusCanceled}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "protected build pending", func() bool { return n.jobs(pid, pl.ID)["build"].Status == "pending" })
			code, _, payload := n.requestJob(runner.Token, "")
			if code != 201 || int64(payload["id"].(float64)) != n.jobs(pid, pl.ID)["build"].ID {
				t.Fatalf("protected runner on a protected job: %d %v", code, payload["id"])
			}
			if payload["git_info"].(map[string]any)["protected"] != true {
				t.Fatalf("git_info %v", payload["git_info"])
			}
			found := false
			for _, v := range payload["variables"].([]any) {
				m := v.(map[string]any)
				if m["key"] == "CI_COMMIT_REF_PROTECTED" {
					found = m["value"] == "true"
				}
			}
			if !found {
				t.Fatal("CI_COMMIT_REF_PROTECTED is not true")
			}
		})
	}
}
