package httpapi

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/events"
)

// statusEventEntity is the data of one event of the project event stream.
type statusEventEntity struct {
	EventID        int64        `json:"event_id"`
	Kind           ci.EventKind `json:"kind"`
	ID             int64        `json:"id"`
	ProjectID      int64        `json:"project_id"`
	PipelineID     int64        `json:"pipeline_id"`
	Name           string       `json:"name,omitempty"`
	Stage          string       `json:"stage,omitempty"`
	Status         ci.JobStatus `json:"status"`
	PreviousStatus *string      `json:"previous_status"`
	FailureReason  string       `json:"failure_reason,omitempty"`
	Ref            string       `json:"ref"`
	Tag            bool         `json:"tag"`
	SHA            string       `json:"sha"`
	CreatedAt      Time         `json:"created_at"`
	StartedAt      *Time        `json:"started_at"`
	FinishedAt     *Time        `json:"finished_at"`
	At             Time         `json:"at"`
}

func renderStatusEvent(e *ci.StatusEvent) []byte {
	v := statusEventEntity{EventID: e.ID, Kind: e.Kind, ID: e.ObjectID, ProjectID: e.ProjectID, PipelineID: e.PipelineID, Name: e.Name, Stage: e.Stage,
		Status: e.Status, FailureReason: string(e.FailureReason), Ref: e.Ref, Tag: e.Tag, SHA: e.SHA, CreatedAt: Time(e.CreatedAt),
		StartedAt: tp(e.StartedAt), FinishedAt: tp(e.FinishedAt), At: Time(e.At)}
	if e.PreviousStatus != "" {
		prev := string(e.PreviousStatus)
		v.PreviousStatus = &prev
	}
	b, _ := json.Marshal(v)
	return b
}

// eventFilter reads `type` (job or pipeline) and `status` (a string,
// `status[]` repeated, or comma-separated).
func eventFilter(p *params) (events.Filter, error) {
	var f events.Filter
	switch t := p.str("type"); t {
	case "":
	case "job", "pipeline":
		f.Kind = ci.EventKind(t)
	default:
		return f, errParam("type does not have a valid value")
	}
	seen := map[ci.JobStatus]bool{}
	for _, v := range append(append([]string{}, p.values["status"]...), p.values["status[]"]...) {
		for s := range strings.SplitSeq(v, ",") {
			st := ci.JobStatus(strings.TrimSpace(s))
			if !st.Valid() {
				return f, errParam("status does not have a valid value")
			}
			if !seen[st] {
				seen[st] = true
				f.Statuses = append(f.Statuses, st)
			}
		}
	}
	return f, nil
}

// acceptsEventStream reports whether the client asked for server-sent
// events: a stream that never ends is not something to send a client that
// did not (nor a page that would hang it).
func acceptsEventStream(r *http.Request) bool {
	for v := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(v))
		if err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// GET /projects/:id/events/stream: the project's job and pipeline status
// changes as server-sent events (gantry's extension).
func (a *API) handleEventStream(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUserOrJob)
	if err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	f, err := eventFilter(p)
	if err != nil {
		return err
	}
	from, err := lastEventID(r, -1)
	if err != nil {
		return err
	}
	pv, err := a.findProjectForBuilds(r, ident)
	if err != nil {
		return err
	}
	if !acceptsEventStream(r) {
		return errMessage(http.StatusNotAcceptable, "406 Not Acceptable - send Accept: text/event-stream")
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return nil // a stream has no end to wait for
	}
	f.ProjectID = pv.project.ID
	s := events.Stream{Store: a.store, Hub: a.eventHub, Render: renderStatusEvent, Poll: a.cfg.LogFollowPoll, KeepAlive: a.cfg.EventKeepAlive}
	ctx := r.Context()
	if err := s.Serve(ctx, w, f, max(from, 0), from >= 0); err != nil && ctx.Err() == nil {
		a.log.Warn("event stream", "project", pv.project.ID, "err", err)
	}
	return nil
}
