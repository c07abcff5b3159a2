package httpapi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/githost"
	"gantry/internal/pipeline"
)

// repoWriteError maps githost's errors to GitLab's answers.
func repoWriteError(err error) error {
	switch {
	case errors.Is(err, githost.ErrFileExists):
		return errMessage(http.StatusBadRequest, "A file with this name already exists")
	case errors.Is(err, githost.ErrFileMissing):
		return errMessage(http.StatusBadRequest, "A file with this name doesn't exist")
	case errors.Is(err, githost.ErrBranchMissing), errors.Is(err, githost.ErrRefNotFound):
		return errMessage(http.StatusBadRequest, "You can only create or edit files when you are on a branch")
	case errors.Is(err, githost.ErrInvalidPath):
		return errParam("file_path should be a valid file path")
	case errors.Is(err, githost.ErrInvalidRef):
		return errMessage(http.StatusBadRequest, "Branch name is invalid")
	case errors.Is(err, githost.ErrInvalidAction), errors.Is(err, githost.ErrInvalidCommit), errors.Is(err, githost.ErrEmptyCommit):
		return errBadRequest(strings.TrimPrefix(err.Error(), "githost: "))
	case errors.Is(err, githost.ErrConflict):
		return errMessage(http.StatusConflict, "A branch was updated concurrently; retry")
	case errors.Is(err, githost.ErrTooLarge):
		return errMessage(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
	}
	return err
}

// writableRepo authenticates a pusher: developer and above.
func (a *API) writableRepo(r *http.Request) (*projectView, *params, error) {
	pv, p, err := a.userProject(r)
	if err != nil {
		return nil, nil, err
	}
	return pv, p, nil
}

func decodeContent(p *params, content string) ([]byte, error) {
	switch p.str("encoding") {
	case "", "text":
		return []byte(content), nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(content)
		if err != nil {
			return nil, errBadRequest("content is not valid base64")
		}
		return b, nil
	}
	return nil, errParam("encoding does not have a valid value")
}

// commitAndRun makes a commit and creates the pipeline its ref move asks for.
func (a *API) commitAndRun(r *http.Request, pv *projectView, req githost.CommitRequest) (*githost.CommitResult, error) {
	if err := a.repos.Init(r.Context(), pv.project.ID, pv.project.DefaultBranch); err != nil {
		return nil, err
	}
	if req.AuthorName == "" {
		req.AuthorName, req.AuthorEmail = pv.ident.User.Name, pv.ident.User.Email
	}
	req.Now = a.now()
	res, err := a.repos.CommitFiles(r.Context(), pv.project.ID, req)
	if err != nil {
		return nil, repoWriteError(err)
	}
	if a.pipelines != nil {
		u := res.Update
		a.pipelines.OnPush(r.Context(), pv.project, pv.ident.User, []pipeline.RefUpdate{{Ref: u.Ref, Before: u.Before, After: u.After}})
	}
	return res, nil
}

// POST and PUT /projects/:id/repository/files/:file_path
func (a *API) handleWriteFile(create bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pv, p, err := a.writableRepo(r)
		if err != nil {
			return err
		}
		if err := p.requireStr("branch", "commit_message"); err != nil {
			return err
		}
		if !p.has("content") {
			return errParam("content is missing")
		}
		if !pv.canUpdateBuilds() {
			return errForbidden
		}
		content, err := decodeContent(p, p.str("content"))
		if err != nil {
			return err
		}
		filePath := r.PathValue("file_path")
		action := "update"
		if create {
			action = "create"
		}
		var mode *bool
		if v, ok, err := p.boolParam("execute_filemode"); err != nil {
			return err
		} else if ok {
			mode = &v
		}
		_, err = a.commitAndRun(r, pv, githost.CommitRequest{
			Branch: p.str("branch"), StartBranch: p.str("start_branch"), Message: p.str("commit_message"),
			AuthorName: p.str("author_name"), AuthorEmail: p.str("author_email"),
			Actions: []githost.Action{{Action: action, FilePath: filePath, Content: content, ExecuteFilemode: mode}},
		})
		if err != nil {
			return err
		}
		status := http.StatusOK
		if create {
			status = http.StatusCreated
		}
		writeJSON(w, status, map[string]string{"file_path": filePath, "branch": p.str("branch")})
		return nil
	}
}

// POST /projects/:id/repository/commits
func (a *API) handleCreateCommit(w http.ResponseWriter, r *http.Request) error {
	pv, p, err := a.writableRepo(r)
	if err != nil {
		return err
	}
	if err := p.requireStr("branch", "commit_message"); err != nil {
		return err
	}
	rawAny, present := p.json["actions"]
	raw, isList := rawAny.([]any)
	switch {
	case present && rawAny != nil && !isList:
		return errParam("actions is invalid")
	case len(raw) == 0:
		return errParam("actions is missing")
	}
	if !pv.canUpdateBuilds() {
		return errForbidden
	}
	var actions []githost.Action
	for i, e := range raw {
		m, ok := e.(map[string]any)
		if !ok {
			return errParam("actions[" + itoa(i) + "] is invalid")
		}
		act, _ := m["action"].(string)
		switch act {
		case "create", "update", "delete", "move", "chmod":
		case "":
			return errParam("actions[" + itoa(i) + "][action] is missing")
		default:
			return errParam("actions[" + itoa(i) + "][action] does not have a valid value")
		}
		fp, _ := m["file_path"].(string)
		if fp == "" {
			return errParam("actions[" + itoa(i) + "][file_path] is missing")
		}
		prev, _ := m["previous_path"].(string)
		content, _ := m["content"].(string)
		enc, _ := m["encoding"].(string)
		data := []byte(content)
		if enc == "base64" {
			if data, err = base64.StdEncoding.DecodeString(content); err != nil {
				return errBadRequest("actions[" + itoa(i) + "][content] is not valid base64")
			}
		}
		var mode *bool
		if v, ok := m["execute_filemode"].(bool); ok {
			mode = &v
		}
		actions = append(actions, githost.Action{Action: act, FilePath: fp, PreviousPath: prev, Content: data, ExecuteFilemode: mode})
	}
	res, err := a.commitAndRun(r, pv, githost.CommitRequest{
		Branch: p.str("branch"), StartBranch: p.str("start_branch"), StartSHA: p.str("start_sha"), Message: p.str("commit_message"),
		AuthorName: p.str("author_name"), AuthorEmail: p.str("author_email"), Actions: actions,
	})
	if err != nil {
		return err
	}
	info, err := a.repos.Commit(r.Context(), pv.project.ID, res.SHA)
	if err != nil {
		return err
	}
	c := info.Domain()
	writeJSON(w, http.StatusCreated, a.commitEntity(pv.project, &c))
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }

// GET /projects/:id/repository/branches
func (a *API) handleListBranches(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.authenticate(r, authUser)
	if err != nil {
		return err
	}
	pv, err := a.findProject(r, ident)
	if err != nil {
		return err
	}
	if !ci.CanReadCode(pv.project, pv.viewer) {
		return errForbidden
	}
	if err := a.repos.Init(r.Context(), pv.project.ID, pv.project.DefaultBranch); err != nil {
		return err
	}
	branches, err := a.repos.Branches(r.Context(), pv.project.ID)
	if err != nil {
		return err
	}
	type branchEntity struct {
		Name               string        `json:"name"`
		Commit             *commitEntity `json:"commit"`
		Merged             bool          `json:"merged"`
		Protected          bool          `json:"protected"`
		DevelopersCanPush  bool          `json:"developers_can_push"`
		DevelopersCanMerge bool          `json:"developers_can_merge"`
		CanPush            bool          `json:"can_push"`
		Default            bool          `json:"default"`
		WebURL             string        `json:"web_url"`
	}
	out := []branchEntity{}
	for _, b := range branches {
		e := branchEntity{Name: b.Name, Default: b.Default, CanPush: pv.canUpdateBuilds(), WebURL: a.projectURL(pv.project) + "/-/tree/" + b.Name}
		if info, err := a.repos.Commit(r.Context(), pv.project.ID, b.SHA); err == nil {
			c := info.Domain()
			e.Commit = a.commitEntity(pv.project, &c)
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
