package pipeline

import (
	"encoding/json"
	"time"

	"gantry/internal/ciconfig"
)

// JobSpec is what a job needs at run time, stored with the job as JSON
// when its pipeline is created (the runner payload is built from it).
type JobSpec struct {
	Script                []string            `json:"script,omitempty"`
	BeforeScript          []string            `json:"before_script,omitempty"`
	AfterScript           []string            `json:"after_script,omitempty"`
	Image                 *ciconfig.Image     `json:"image,omitempty"`
	Services              []ciconfig.Image    `json:"services,omitempty"`
	Variables             []ciconfig.Variable `json:"variables,omitempty"`
	Artifacts             *ciconfig.Artifacts `json:"artifacts,omitempty"`
	Cache                 []any               `json:"cache,omitempty"`
	TimeoutSeconds        int                 `json:"timeout,omitempty"`
	Retry                 ciconfig.Retry      `json:"retry"`
	Interruptible         bool                `json:"interruptible,omitempty"`
	Environment           string              `json:"environment,omitempty"`
	Coverage              string              `json:"coverage,omitempty"`
	Needs                 []ciconfig.Need     `json:"needs,omitempty"`
	NeedsSet              bool                `json:"needs_set,omitempty"`
	Dependencies          []string            `json:"dependencies,omitempty"`
	DependenciesSet       bool                `json:"dependencies_set,omitempty"`
	AllowFailureExitCodes []int               `json:"allow_failure_exit_codes,omitempty"`
	Trigger               *ciconfig.Trigger   `json:"trigger,omitempty"`
	Parallel              *ciconfig.Parallel  `json:"parallel,omitempty"`
	StartIn               time.Duration       `json:"start_in,omitempty"`
}

// jobVariables are the global YAML variables the job inherits, then its own.
func jobVariables(plan *ciconfig.Plan, j *ciconfig.Job) []ciconfig.Variable {
	var out []ciconfig.Variable
	if !j.InheritNoVars {
		allow := map[string]bool{}
		for _, k := range j.InheritVariables {
			allow[k] = true
		}
		for _, v := range plan.Variables {
			if len(j.InheritVariables) == 0 || allow[v.Key] {
				out = append(out, v)
			}
		}
	}
	return append(out, j.Variables...)
}

func specOf(plan *ciconfig.Plan, j *ciconfig.Job) ([]byte, error) {
	s := JobSpec{
		Script: j.Script, BeforeScript: j.BeforeScript, AfterScript: j.AfterScript, Image: j.Image, Services: j.Services,
		Variables: jobVariables(plan, j), Artifacts: j.Artifacts, Cache: j.Cache, TimeoutSeconds: int(j.Timeout / time.Second), Retry: j.Retry,
		Interruptible: j.Interruptible, Environment: j.Environment, Coverage: j.Coverage, Needs: j.Needs, NeedsSet: j.NeedsSet,
		Dependencies: j.Dependencies, DependenciesSet: j.DependenciesSet, AllowFailureExitCodes: j.AllowFailureExitCodes,
		Trigger: j.Trigger, Parallel: j.Parallel, StartIn: j.StartIn,
	}
	return json.Marshal(s)
}

// ParseSpec reads a stored JobSpec.
func ParseSpec(b []byte) (*JobSpec, error) {
	var s JobSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
