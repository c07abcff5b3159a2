package app_test

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"gantry/internal/testenv"
)

// TestGitReadNeedsReporter: on a private project, cloning is GitLab's
// download_code, which guests do not have; reporters do.
func TestGitReadNeedsReporter(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			var proj struct {
				ID   int64  `json:"id"`
				HTTP string `json:"http_url_to_repo"`
			}
			if code := n.api("POST", "/projects", map[string]any{"name": "secret"}, &proj); code != 201 {
				t.Fatalf("create project %d", code)
			}
			tokens := map[string]string{}
			for _, m := range []struct {
				name  string
				level int
			}{{"gus", 10}, {"rita", 20}} {
				var u struct{ ID int64 }
				if code := n.api("POST", "/users", map[string]any{"username": m.name, "name": m.name, "email": m.name + "@example.com"}, &u); code != 201 {
					t.Fatalf("create user %s: %d", m.name, code)
				}
				var tok struct{ Token string }
				if code := n.api("POST", fmt.Sprintf("/users/%d/personal_access_tokens", u.ID), map[string]any{"name": "t", "scopes": []string{"api"}}, &tok); code != 201 {
					t.Fatalf("token for %s: %d", m.name, code)
				}
				tokens[m.name] = tok.Token
				if code := n.api("POST", fmt.Sprintf("/projects/%d/members", proj.ID), map[string]any{"user_id": u.ID, "access_level": m.level}, nil); code != 201 {
					t.Fatalf("member %s: %d", m.name, code)
				}
			}
			lsRemote := func(user string) (string, error) {
				u, _ := url.Parse(proj.HTTP)
				u.User = url.UserPassword(user, tokens[user])
				cmd := exec.Command("git", "ls-remote", u.String())
				cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			if out, err := lsRemote("gus"); err == nil || !strings.Contains(out, "403") {
				t.Fatalf("guest ls-remote of a private project: err %v, output %q (want a 403 refusal)", err, out)
			}
			if out, err := lsRemote("rita"); err != nil {
				t.Fatalf("reporter ls-remote: %v %s", err, out)
			}
		})
	}
}
