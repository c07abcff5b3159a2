// Package rubyclient_test drives a live, seeded gantry through the Ruby
// gitlab gem (Debian's ruby-gitlab 4.17 and its `ruby-gitlab` CLI) by running
// conformance/ruby/jobs_conformance.rb against it, once per store backend.
package rubyclient_test

import (
	"testing"

	"gantry/internal/conformance/scriptrun"
)

func TestRubyGitlabConformance(t *testing.T) {
	// Debian's ruby, which ruby-gitlab is installed for, without anything
	// that could make it load foreign gems or the gem read a configuration.
	scriptrun.Test(t, scriptrun.Harness{
		Client: "ruby-gitlab", Interpreter: "/usr/bin/ruby",
		Env:     scriptrun.CleanEnv("RUBYOPT", "RUBYLIB", "GEM_HOME", "GEM_PATH", "BUNDLE_*", "GITLAB_*", "CI_*"),
		Script:  []string{"conformance", "ruby", "jobs_conformance.rb"},
		Probe:   []string{"-e", "require 'gitlab'; require 'gitlab/cli'; puts Gitlab::VERSION"},
		Missing: "the gitlab gem is not loadable by /usr/bin/ruby; install Debian's ruby-gitlab (apt-get install -y ruby-gitlab)",
	})
}
