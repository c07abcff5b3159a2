package ci

import (
	"regexp"
	"time"
)

// ClusterAgent is a Kubernetes agent registered with a project (its
// configuration project). Its configuration file in that project's
// repository grants CI access to other projects and groups.
type ClusterAgent struct {
	ID              int64
	ProjectID       int64
	Name            string
	CreatedByUserID *int64
	CreatedAt       time.Time
}

// AgentGrant is one ci_access entry of an agent's configuration: the
// project or group (TargetID) it names, with the rest of the entry as JSON.
type AgentGrant struct {
	AgentID  int64
	TargetID int64
	Config   []byte
}

// MaxAgentNameLength is GitLab's limit on agent names.
const MaxAgentNameLength = 63

var agentNamePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// AgentNameProblems lists what is wrong with an agent name, as GitLab's
// validation messages; none means it is valid.
func AgentNameProblems(name string) []string {
	var out []string
	if name == "" {
		out = append(out, "Name can't be blank")
	}
	if len(name) > MaxAgentNameLength {
		out = append(out, "Name is too long (maximum is 63 characters)")
	}
	if !agentNamePattern.MatchString(name) {
		out = append(out, "Name can contain only lowercase letters, digits, and '-', but cannot start or end with '-'")
	}
	return out
}

// AgentConfigPath is where an agent's configuration lives in its project's
// repository, on the default branch.
func AgentConfigPath(name string) string { return ".gitlab/agents/" + name + "/config.yaml" }
