// Package gitbeaker_test drives a live, seeded gantry through @gitbeaker/rest
// 43.8 (installed by `npm ci` in conformance/gitbeaker from its lockfile) by
// running conformance/gitbeaker/jobs_conformance.mjs with node, once per
// store backend.
package gitbeaker_test

import (
	"testing"

	"gantry/internal/conformance/scriptrun"
)

func TestGitbeakerConformance(t *testing.T) {
	scriptrun.Test(t, scriptrun.Harness{
		Client: "gitbeaker", Interpreter: "node",
		Env:    scriptrun.CleanEnv("NODE_OPTIONS", "NODE_PATH", "GITLAB_*", "CI_*"),
		Script: []string{"conformance", "gitbeaker", "jobs_conformance.mjs"},
		// The probe gets the script's directory as its argument.
		Probe:   []string{"-p", "require(require('path').join(process.argv[1], 'node_modules/@gitbeaker/rest/package.json')).version"},
		Want:    "43.8.0",
		Missing: "node or @gitbeaker/rest 43.8.0 is missing; install node (>= 18.20) and run `npm ci` in conformance/gitbeaker (scripts/test does)",
	})
}
