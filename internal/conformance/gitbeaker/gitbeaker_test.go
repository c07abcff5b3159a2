// Package gitbeaker_test drives a live, seeded gantry through @gitbeaker/rest
// 43.8 (installed by `npm ci` in conformance/gitbeaker from its lockfile) by
// running conformance/gitbeaker/jobs_conformance.mjs with node, once per
// store backend.
package gitbeaker_test

import (
	"path/filepath"
	"testing"

	"gantry/internal/conformance/scriptrun"
)

func TestGitbeakerConformance(t *testing.T) {
	script := scriptrun.RepoPath(t, "conformance", "gitbeaker", "jobs_conformance.mjs")
	env := scriptrun.CleanEnv("NODE_OPTIONS", "NODE_PATH", "GITLAB_*", "CI_*")
	pkg := filepath.Join(filepath.Dir(script), "node_modules", "@gitbeaker", "rest", "package.json")
	version, err := scriptrun.Probe(env, "node", "-p", "require(process.argv[1]).version", pkg)
	if err == nil && version != "43.8.0" {
		t.Fatalf("@gitbeaker/rest %s is installed, want the lockfile's 43.8.0 (run npm ci in conformance/gitbeaker)", version)
	}
	scriptrun.Require(t, err, "node or @gitbeaker/rest is missing; install node (>= 18.20) and run `npm ci` in conformance/gitbeaker (scripts/test does)")
	t.Logf("@gitbeaker/rest %s", version)
	scriptrun.Run(t, scriptrun.Script{Client: "gitbeaker", Path: script, Command: []string{"node", script}, Env: env})
}
