package app_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// Pushes respect protected branches and tags, checked by a pre-receive hook
// with the pusher's rights, through the real git client.
func TestProtectedRefPushes(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			pid := n.setupProject("app", "build:\n  script: [make]\n")
			var proj struct {
				HTTP string `json:"http_url_to_repo"`
			}
			n.api("GET", fmt.Sprintf("/projects/%d", pid), nil, &proj)
			var dev struct{ ID int64 }
			n.api("POST", "/users", map[string]any{"username": "dev", "name": "Dev", "email": "dev@example.com", "password": "password-1234"}, &dev)
			n.api("POST", fmt.Sprintf("/projects/%d/members", pid), map[string]any{"user_id": dev.ID, "access_level": 30}, nil)
			var tok struct{ Token string }
			n.api("POST", fmt.Sprintf("/users/%d/personal_access_tokens", dev.ID), map[string]any{"name": "t", "scopes": []string{"api"}}, &tok)
			for _, body := range []map[string]any{{"name": "main"}, {"name": "release/*", "push_access_level": 30}} {
				if code := n.api("POST", fmt.Sprintf("/projects/%d/protected_branches", pid), body, nil); code != 201 {
					t.Fatalf("protect %v: %d", body, code)
				}
			}
			if code := n.api("POST", fmt.Sprintf("/projects/%d/protected_tags", pid), map[string]any{"name": "v*"}, nil); code != 201 {
				t.Fatalf("protect tags: %d", code)
			}
			dir := t.TempDir()
			clone := func(user, secret, name string) string {
				u, _ := url.Parse(proj.HTTP)
				u.User = url.UserPassword(user, secret)
				git(t, dir, "clone", "-q", u.String(), name)
				return filepath.Join(dir, name)
			}
			push := func(work string, args ...string) (string, error) {
				cmd := exec.Command("git", append([]string{"push", "origin"}, args...)...)
				cmd.Dir = work
				cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_TERMINAL_PROMPT=0")
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			commit := func(work, msg string) {
				os.WriteFile(filepath.Join(work, msg+".txt"), []byte(msg), 0o644)
				git(t, work, "add", ".")
				git(t, work, "commit", "-q", "-m", msg)
			}
			devWork := clone("dev", tok.Token, "dev")
			commit(devWork, "dev-change")
			if out, err := push(devWork, "HEAD:main"); err == nil || !strings.Contains(out, "You are not allowed to push code to protected branches on this project.") {
				t.Fatalf("developer push to main: %v %s", err, out)
			}
			if out, err := push(devWork, "HEAD:feature"); err != nil {
				t.Fatalf("developer push to an unprotected branch: %s", out)
			}
			if out, err := push(devWork, "HEAD:release/1"); err != nil {
				t.Fatalf("developer push where developers may push: %s", out)
			}
			if out, err := push(devWork, "HEAD:refs/tags/v1"); err == nil || !strings.Contains(out, "You are not allowed to create this tag as it is protected.") {
				t.Fatalf("developer protected tag: %v %s", err, out)
			}

			rootWork := clone("root", rootToken, "root")
			commit(rootWork, "root-change")
			if out, err := push(rootWork, "HEAD:main"); err != nil {
				t.Fatalf("maintainer push to main: %s", out)
			}
			git(t, rootWork, "reset", "-q", "--hard", "HEAD~1")
			commit(rootWork, "rewrite")
			if out, err := push(rootWork, "--force", "HEAD:main"); err == nil || !strings.Contains(out, "You are not allowed to force push code to a protected branch on this project.") {
				t.Fatalf("force push to main: %v %s", err, out)
			}
			if out, err := push(rootWork, "--delete", "main"); err == nil || !strings.Contains(out, "You can only delete protected branches using the web interface.") {
				t.Fatalf("deleting main: %v %s", err, out)
			}
			if out, err := push(rootWork, "HEAD:refs/tags/v1"); err != nil {
				t.Fatalf("maintainer protected tag: %s", out)
			}
			git(t, rootWork, "tag", "-f", "v1", "HEAD~1")
			if out, err := push(rootWork, "--force", "refs/tags/v1"); err == nil || !strings.Contains(out, "Protected tags cannot be updated.") {
				t.Fatalf("moving a protected tag: %v %s", err, out)
			}
			// The refused pushes changed nothing.
			var branches []struct{ Name string }
			n.api("GET", fmt.Sprintf("/projects/%d/repository/branches", pid), nil, &branches)
			names := map[string]bool{}
			for _, b := range branches {
				names[b.Name] = true
			}
			if !names["main"] || !names["feature"] || !names["release/1"] || len(names) != 3 {
				t.Fatalf("branches %v", names)
			}
		})
	}
}
