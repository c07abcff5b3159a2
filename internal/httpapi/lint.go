package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"gantry/internal/ciconfig"
	"gantry/internal/pipeline"
)

// POST /projects/:id/ci/lint: validate a configuration in the project's context.
func (a *API) handleLint(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	if !p.has("content") {
		return errParam("content is missing")
	}
	includeJobs, _, err := p.boolParam("include_jobs")
	if err != nil {
		return err
	}
	pv, err := a.findProject(r, ident)
	if err != nil {
		return err
	}
	if !pv.canUpdateBuilds() {
		return errForbidden
	}
	ref := p.str("ref")
	if ref == "" {
		ref = pv.project.DefaultBranch
	}
	ctx := r.Context()
	sha := ""
	if a.repos != nil {
		sha, _ = a.repos.ResolveRef(ctx, pv.project.ID, ref)
	}
	in := ciconfig.Input{Path: ".gitlab-ci.yml", Content: []byte(p.str("content")), Variables: map[string]string{
		"CI_COMMIT_REF_NAME": ref, "CI_COMMIT_BRANCH": ref, "CI_DEFAULT_BRANCH": pv.project.DefaultBranch,
		"CI_PIPELINE_SOURCE": "push", "CI_PROJECT_PATH": pv.project.FullPath, "CI_COMMIT_REF_SLUG": pipeline.RefSlug(ref),
	}}
	if sha != "" {
		in.ReadFile = func(f string) ([]byte, error) {
			return a.repos.ReadFile(ctx, pv.project.ID, sha, strings.TrimPrefix(f, "/"))
		}
		in.Exists = func(g string) bool { ok, _ := a.repos.Exists(ctx, pv.project.ID, sha, g); return ok }
	}
	type lintJob struct {
		Name         string   `json:"name"`
		Stage        string   `json:"stage"`
		BeforeScript []string `json:"before_script"`
		Script       []string `json:"script"`
		AfterScript  []string `json:"after_script"`
		TagList      []string `json:"tag_list"`
		Environment  *string  `json:"environment"`
		When         string   `json:"when"`
		AllowFailure bool     `json:"allow_failure"`
		Needs        []string `json:"needs,omitempty"`
	}
	out := map[string]any{"valid": true, "errors": []string{}, "warnings": []string{}, "merged_yaml": p.str("content"), "includes": []any{}}
	plan, cerr := ciconfig.Compile(in)
	if cerr != nil {
		var errs ciconfig.Errors
		msgs := []string{}
		if errors.As(cerr, &errs) {
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
		} else {
			msgs = append(msgs, cerr.Error())
		}
		out["valid"], out["errors"], out["merged_yaml"] = false, msgs, nil
	} else if includeJobs {
		jobs := []lintJob{}
		for _, j := range plan.Jobs {
			lj := lintJob{Name: j.Name, Stage: j.Stage, BeforeScript: nonNil(j.BeforeScript), Script: nonNil(j.Script), AfterScript: nonNil(j.AfterScript),
				TagList: nonNil(j.Tags), When: j.When, AllowFailure: j.AllowFailure}
			if j.Environment != "" {
				env := j.Environment
				lj.Environment = &env
			}
			for _, n := range j.Needs {
				lj.Needs = append(lj.Needs, n.Job)
			}
			jobs = append(jobs, lj)
		}
		out["jobs"] = jobs
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
