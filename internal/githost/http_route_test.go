package githost

import (
	"net/http/httptest"
	"testing"
)

func TestIsGitRequest(t *testing.T) {
	for _, c := range []struct {
		method, target string
		git            bool
	}{
		{"GET", "/acme/app.git/info/refs?service=git-upload-pack", true},
		{"POST", "/acme/app.git/git-receive-pack", true},
		{"GET", "/acme/app/info/refs?service=git-upload-pack", true},
		{"GET", "/acme/app.git", true},
		{"GET", "/acme/app/-/jobs/1", false},
		{"GET", "/acme/app/-/jobs/1/artifacts/file/.git/config", false},
		{"GET", "/acme/app/info/refs", false},
		{"GET", "/", false},
		{"GET", "/users/sign_in", false},
	} {
		if got := IsGitRequest(httptest.NewRequest(c.method, c.target, nil)); got != c.git {
			t.Errorf("%s %s: git %v, want %v", c.method, c.target, got, c.git)
		}
	}
}
