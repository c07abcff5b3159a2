// Package pyclient_test drives a live, seeded gantry through python-gitlab
// (Debian's python3-gitlab 3.12 and its `python-gitlab` CLI) by running
// conformance/python/jobs_conformance.py against it, once per store backend.
package pyclient_test

import (
	"testing"

	"gantry/internal/conformance/scriptrun"
)

func TestPythonGitlabConformance(t *testing.T) {
	// Debian's interpreter is the only one that can import python-gitlab
	// here; the python3 first on PATH (pyenv) cannot see dist-packages.
	// The environment drops anything that could make it load foreign
	// packages or python-gitlab read a config.
	env := append(scriptrun.CleanEnv("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHON_GITLAB_CFG", "GITLAB_*", "CI_*"),
		"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8")
	scriptrun.Test(t, scriptrun.Harness{
		Client: "python-gitlab", Interpreter: "/usr/bin/python3", Env: env,
		Script:  []string{"conformance", "python", "jobs_conformance.py"},
		Probe:   []string{"-c", "import gitlab, requests; print(gitlab.__version__)"},
		Missing: "python-gitlab is not importable by /usr/bin/python3; install Debian's python3-gitlab and gitlab-cli (apt-get install -y python3-gitlab gitlab-cli)",
	})
}
