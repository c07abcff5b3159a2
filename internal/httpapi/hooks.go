package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"gantry/internal/ci"
)

// hookEntity is GitLab's ProjectHook entity; events gantry never sends
// read false.
type hookEntity struct {
	ID                       int64  `json:"id"`
	URL                      string `json:"url"`
	Name                     string `json:"name"`
	Description              string `json:"description"`
	ProjectID                int64  `json:"project_id"`
	CreatedAt                Time   `json:"created_at"`
	PushEvents               bool   `json:"push_events"`
	PushEventsBranchFilter   string `json:"push_events_branch_filter"`
	TagPushEvents            bool   `json:"tag_push_events"`
	IssuesEvents             bool   `json:"issues_events"`
	ConfidentialIssuesEvents bool   `json:"confidential_issues_events"`
	MergeRequestsEvents      bool   `json:"merge_requests_events"`
	NoteEvents               bool   `json:"note_events"`
	ConfidentialNoteEvents   bool   `json:"confidential_note_events"`
	JobEvents                bool   `json:"job_events"`
	PipelineEvents           bool   `json:"pipeline_events"`
	WikiPageEvents           bool   `json:"wiki_page_events"`
	DeploymentEvents         bool   `json:"deployment_events"`
	ReleasesEvents           bool   `json:"releases_events"`
	RepositoryUpdateEvents   bool   `json:"repository_update_events"`
	EnableSSLVerification    bool   `json:"enable_ssl_verification"`
	AlertStatus              string `json:"alert_status"`
	DisabledUntil            *Time  `json:"disabled_until"`
	URLVariables             []any  `json:"url_variables"`
}

func hookEntityOf(h *ci.ProjectHook) hookEntity {
	return hookEntity{ID: h.ID, URL: h.URL, Name: h.Name, Description: h.Description, ProjectID: h.ProjectID, CreatedAt: Time(h.CreatedAt),
		PushEvents: h.PushEvents, JobEvents: h.JobEvents, PipelineEvents: h.PipelineEvents, EnableSSLVerification: h.EnableSSLVerification,
		AlertStatus: "executable", URLVariables: []any{}}
}

// ignoredHookEvents are GitLab's other hook switches: accepted (and
// checked to be booleans) but not stored, as gantry never sends them.
var ignoredHookEvents = []string{"tag_push_events", "issues_events", "confidential_issues_events", "merge_requests_events", "note_events",
	"confidential_note_events", "wiki_page_events", "deployment_events", "releases_events", "feature_flag_events", "emoji_events",
	"resource_access_token_events", "repository_update_events"}

// applyHookParams sets h from the request's parameters (only those given).
func applyHookParams(p *params, h *ci.ProjectHook) error {
	if p.has("url") {
		raw := strings.TrimSpace(p.str("url"))
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errMessage(http.StatusUnprocessableEntity, "Invalid url given")
		}
		h.URL = raw
	}
	for _, s := range []struct {
		name string
		dst  *bool
	}{{"push_events", &h.PushEvents}, {"job_events", &h.JobEvents}, {"pipeline_events", &h.PipelineEvents},
		{"enable_ssl_verification", &h.EnableSSLVerification}} {
		v, ok, err := p.boolParam(s.name)
		if err != nil {
			return err
		}
		if ok {
			*s.dst = v
		}
	}
	for _, name := range ignoredHookEvents {
		if _, _, err := p.boolParam(name); err != nil {
			return err
		}
	}
	if p.has("token") {
		h.Token = p.str("token")
	}
	if p.has("name") {
		h.Name = p.str("name")
	}
	if p.has("description") {
		h.Description = p.str("description")
	}
	return nil
}

// hookOf reads :hook_id of a project the caller maintains.
func (a *API) hookOf(r *http.Request) (*projectView, *params, *ci.ProjectHook, error) {
	pv, p, err := a.maintainerProject(r)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := byPathID(r, "hook_id", func(id int64) (*ci.ProjectHook, error) { return a.store.HookByID(r.Context(), pv.project.ID, id) })
	if err != nil {
		return nil, nil, nil, err
	}
	return pv, p, h, nil
}

// GET /projects/:id/hooks
func (a *API) handleListHooks(w http.ResponseWriter, r *http.Request) error {
	pv, p, err := a.maintainerProject(r)
	if err != nil {
		return err
	}
	pp, err := p.pagination()
	if err != nil {
		return err
	}
	all, err := a.store.Hooks(r.Context(), pv.project.ID)
	if err != nil {
		return err
	}
	start := min((pp.Page-1)*pp.PerPage, len(all))
	end := min(start+pp.PerPage, len(all))
	a.offsetHeaders(w, r, p, pp, end < len(all), len(all), map[string]string{"id": r.PathValue("id")})
	out := make([]hookEntity, 0, end-start)
	for _, h := range all[start:end] {
		out = append(out, hookEntityOf(h))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GET /projects/:id/hooks/:hook_id
func (a *API) handleGetHook(w http.ResponseWriter, r *http.Request) error {
	_, _, h, err := a.hookOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hookEntityOf(h))
	return nil
}

// POST /projects/:id/hooks
func (a *API) handleCreateHook(w http.ResponseWriter, r *http.Request) error {
	pv, p, err := a.maintainerProject(r)
	if err != nil {
		return err
	}
	if err := p.requireStr("url"); err != nil {
		return err
	}
	// GitLab's defaults: push events on, certificates checked.
	h := ci.ProjectHook{ProjectID: pv.project.ID, PushEvents: true, EnableSSLVerification: true, CreatedAt: a.now()}
	if err := applyHookParams(p, &h); err != nil {
		return err
	}
	created, err := a.store.CreateHook(r.Context(), h)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, hookEntityOf(created))
	return nil
}

// PUT /projects/:id/hooks/:hook_id
func (a *API) handleUpdateHook(w http.ResponseWriter, r *http.Request) error {
	_, p, h, err := a.hookOf(r)
	if err != nil {
		return err
	}
	if p.has("url") {
		if err := p.requireStr("url"); err != nil {
			return err
		}
	}
	if err := applyHookParams(p, h); err != nil {
		return err
	}
	updated, err := a.store.UpdateHook(r.Context(), *h)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hookEntityOf(updated))
	return nil
}

// DELETE /projects/:id/hooks/:hook_id
func (a *API) handleDeleteHook(w http.ResponseWriter, r *http.Request) error {
	pv, _, h, err := a.hookOf(r)
	if err != nil {
		return err
	}
	if err := a.store.DeleteHook(r.Context(), pv.project.ID, h.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// hookEventEntity is GitLab's WebHookLog entity, one per delivery (its
// latest attempt), with gantry's delivery state beside it.
type hookEventEntity struct {
	ID                int64             `json:"id"`
	URL               string            `json:"url"`
	Trigger           string            `json:"trigger"`
	RequestHeaders    map[string]string `json:"request_headers"`
	RequestData       json.RawMessage   `json:"request_data"`
	ResponseHeaders   map[string]string `json:"response_headers"`
	ResponseBody      string            `json:"response_body"`
	ExecutionDuration *float64          `json:"execution_duration"`
	ResponseStatus    string            `json:"response_status"`
	CreatedAt         Time              `json:"created_at"`
	UpdatedAt         Time              `json:"updated_at"`
	// gantry's: where the delivery stands.
	State         string `json:"state"`
	Attempts      int    `json:"attempts"`
	NextAttemptAt *Time  `json:"next_attempt_at"`
	Error         string `json:"error"`
	EventID       int64  `json:"event_id"`
}

// maxHookEventsPerPage is GitLab's cap on this list.
const maxHookEventsPerPage = 20

// GET /projects/:id/hooks/:hook_id/events: the delivery log.
func (a *API) handleHookEvents(w http.ResponseWriter, r *http.Request) error {
	_, p, h, err := a.hookOf(r)
	if err != nil {
		return err
	}
	pp, err := p.pagination()
	if err != nil {
		return err
	}
	pp.PerPage = min(pp.PerPage, maxHookEventsPerPage)
	list, err := a.store.HookDeliveries(r.Context(), h.ID, pp.PerPage+1, (pp.Page-1)*pp.PerPage)
	if err != nil {
		return err
	}
	list, hasNext := pageOf(list, pp.PerPage)
	a.offsetHeaders(w, r, p, pp, hasNext, -1, map[string]string{"id": r.PathValue("id"), "hook_id": r.PathValue("hook_id")})
	out := make([]hookEventEntity, len(list))
	for i, d := range list {
		e := hookEventEntity{ID: d.ID, URL: h.URL, Trigger: string(d.Kind) + "_hooks", RequestData: json.RawMessage("null"),
			ResponseHeaders: map[string]string{}, ResponseBody: d.ResponseExcerpt, ExecutionDuration: d.Duration,
			CreatedAt: Time(d.CreatedAt), UpdatedAt: Time(d.UpdatedAt), State: string(d.State), Attempts: d.Attempts, Error: d.Error, EventID: d.EventID}
		if d.Payload != nil {
			e.RequestData = d.Payload
			e.RequestHeaders = map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": d.Kind.HookName(), "X-Gitlab-Event-UUID": d.UUID}
			if h.Token != "" {
				e.RequestHeaders["X-Gitlab-Token"] = "[REDACTED]"
			}
		}
		switch {
		case d.ResponseStatus != nil:
			e.ResponseStatus = strconv.Itoa(*d.ResponseStatus)
		case d.Error != "":
			e.ResponseStatus = "internal error"
		}
		if d.State == ci.DeliveryPending {
			e.NextAttemptAt = tp(&d.NextAttemptAt)
		}
		out[i] = e
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
