// Package pyclient_test drives a live, seeded gantry through python-gitlab
// (Debian's python3-gitlab 3.12 and its `python-gitlab` CLI) by running
// conformance/python/jobs_conformance.py against it, once per store backend.
package pyclient_test

import (
	"testing"

	"gantry/internal/conformance/scriptrun"
)

// debianPython is the only interpreter that can import python-gitlab here;
// the python3 first on PATH (pyenv) cannot see Debian's dist-packages.
const debianPython = "/usr/bin/python3"

func TestPythonGitlabConformance(t *testing.T) {
	env := pythonEnv()
	version, err := scriptrun.Probe(env, debianPython, "-c", "import gitlab, requests; print(gitlab.__version__)")
	scriptrun.Require(t, err, "python-gitlab is not importable by "+debianPython+
		"; install Debian's python3-gitlab and gitlab-cli (apt-get install -y python3-gitlab gitlab-cli)")
	t.Logf("python-gitlab %s under %s", version, debianPython)
	script := scriptrun.RepoPath(t, "conformance", "python", "jobs_conformance.py")
	scriptrun.Run(t, scriptrun.Script{Client: "python-gitlab", Path: script, Command: []string{debianPython, script}, Env: env})
}

// pythonEnv is the test's environment without anything that could make
// Debian's interpreter load foreign packages or python-gitlab read a config.
func pythonEnv() []string {
	env := scriptrun.CleanEnv("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHON_GITLAB_CFG", "GITLAB_*", "CI_*")
	return append(env, "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8")
}
