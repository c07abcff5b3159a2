package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// API calls the REST API of one node as a user.
type API struct {
	URL   string // the node's base URL
	Token string // a personal access token
}

var apiClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 2 * time.Minute}

// Do sends body as JSON and decodes a 2xx answer into out (when not nil).
func (a API) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL+"/api/v4"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("PRIVATE-TOKEN", a.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := apiClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return &StatusError{Method: method, Path: path, Code: res.StatusCode, Body: string(raw)}
	}
	if out != nil {
		if p, ok := out.(*[]byte); ok {
			*p = raw
			return nil
		}
		return json.Unmarshal(raw, out)
	}
	return nil
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Code, e.Body)
}

// Project is what the setup calls need of a project.
type Project struct {
	ID   int64  `json:"id"`
	Path string `json:"path_with_namespace"`
}

// CreateProject creates a project whose default branch holds ciConfig as
// .gitlab-ci.yml. Repositories live on the node that created them, so
// pipelines of this project are created through the same node.
func (a API) CreateProject(ctx context.Context, name, ciConfig string) (Project, error) {
	var p Project
	if err := a.Do(ctx, "POST", "/projects", map[string]any{"name": name}, &p); err != nil {
		return p, err
	}
	err := a.Do(ctx, "POST", "/projects/"+strconv.FormatInt(p.ID, 10)+"/repository/files/.gitlab-ci.yml",
		map[string]any{"branch": "main", "commit_message": "ci", "content": ciConfig}, nil)
	return p, err
}

// CreatePipeline runs the project's main branch and returns the pipeline id.
func (a API) CreatePipeline(ctx context.Context, projectID int64) (int64, error) {
	var pl struct {
		ID int64 `json:"id"`
	}
	err := a.Do(ctx, "POST", "/projects/"+strconv.FormatInt(projectID, 10)+"/pipeline", map[string]any{"ref": "main"}, &pl)
	return pl.ID, err
}

// CreateRunner creates an instance runner and returns its token.
func (a API) CreateRunner(ctx context.Context, description string, tags []string) (string, error) {
	body := map[string]any{"runner_type": "instance_type", "description": description}
	if len(tags) > 0 {
		body["tag_list"] = tags
		body["run_untagged"] = false
	}
	var out struct {
		Token string `json:"token"`
	}
	err := a.Do(ctx, "POST", "/user/runners", body, &out)
	return out.Token, err
}

// JobState is a job as the jobs list shows it.
type JobState struct {
	ID            int64  `json:"id"`
	Status        string `json:"status"`
	FailureReason string `json:"failure_reason"`
	Runner        *struct {
		ID int64 `json:"id"`
	} `json:"runner"`
}

// Jobs lists every job of a project (keyset pagination), optionally only
// those in scopes.
func (a API) Jobs(ctx context.Context, projectID int64, scopes ...string) ([]JobState, error) {
	var all []JobState
	q := url.Values{"pagination": {"keyset"}, "per_page": {"100"}}
	for _, s := range scopes {
		q.Add("scope[]", s)
	}
	next := "/projects/" + strconv.FormatInt(projectID, 10) + "/jobs?" + q.Encode()
	for next != "" {
		req, err := http.NewRequestWithContext(ctx, "GET", a.URL+"/api/v4"+next, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("PRIVATE-TOKEN", a.Token)
		res, err := apiClient.Do(req)
		if err != nil {
			return nil, err
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return nil, &StatusError{Method: "GET", Path: next, Code: res.StatusCode, Body: string(raw)}
		}
		var page []JobState
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		next = nextLink(res.Header.Get("Link"), a.URL+"/api/v4")
	}
	return all, nil
}

// nextLink finds rel="next" in a Link header and returns it relative to base.
func nextLink(link, base string) string {
	for _, part := range strings.Split(link, ",") {
		u, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if ok && strings.Contains(params, `rel="next"`) {
			if rest, ok := strings.CutPrefix(strings.Trim(strings.TrimSpace(u), "<>"), base); ok {
				return rest
			}
		}
	}
	return ""
}

// Trace reads a job's whole log.
func (a API) Trace(ctx context.Context, projectID, jobID int64) ([]byte, error) {
	var b []byte
	err := a.Do(ctx, "GET", fmt.Sprintf("/projects/%d/jobs/%d/trace", projectID, jobID), nil, &b)
	return b, err
}

// Artifact downloads a job's archive.
func (a API) Artifact(ctx context.Context, projectID, jobID int64) ([]byte, error) {
	var b []byte
	err := a.Do(ctx, "GET", fmt.Sprintf("/projects/%d/jobs/%d/artifacts", projectID, jobID), nil, &b)
	return b, err
}
