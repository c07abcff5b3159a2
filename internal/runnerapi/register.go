package runnerapi

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"gantry/internal/ci"
)

type registerBody struct {
	Token           string     `json:"token"`
	Description     string     `json:"description"`
	TagList         any        `json:"tag_list"`
	RunUntagged     *bool      `json:"run_untagged"`
	Locked          *bool      `json:"locked"`
	Paused          *bool      `json:"paused"`
	AccessLevel     string     `json:"access_level"`
	MaximumTimeout  *int       `json:"maximum_timeout"`
	MaintenanceNote string     `json:"maintenance_note"`
	SystemID        string     `json:"system_id"`
	Info            runnerInfo `json:"info"`
}

// tagList accepts "a,b" (what gitlab-runner sends) or ["a","b"].
func tagList(v any) []string {
	var out []string
	switch t := v.(type) {
	case string:
		for _, s := range strings.Split(t, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
	}
	return out
}

// POST /runners: the legacy registration-token flow.
func (a *API) handleRegister(w http.ResponseWriter, r *http.Request) error {
	var body registerBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.Token == "" {
		return &apiError{status: http.StatusBadRequest, body: map[string]string{"error": "token is missing"}}
	}
	if a.cfg.RegistrationToken == "" {
		return fail(http.StatusGone, "410 Gone - runner registration tokens are disabled")
	}
	if subtle.ConstantTimeCompare([]byte(body.Token), []byte(a.cfg.RegistrationToken)) != 1 {
		return fail(http.StatusForbidden, "403 Forbidden")
	}
	if body.AccessLevel != "" && body.AccessLevel != "not_protected" && body.AccessLevel != "ref_protected" {
		return &apiError{status: http.StatusBadRequest, body: map[string]string{"error": "access_level does not have a valid value"}}
	}
	runUntagged, locked, paused := true, false, false
	if body.RunUntagged != nil {
		runUntagged = *body.RunUntagged
	}
	if body.Locked != nil {
		locked = *body.Locked
	}
	if body.Paused != nil {
		paused = *body.Paused
	}
	secret := ci.NewSecret(ci.RunnerTokenPrefix)
	rn, err := a.store.InsertRunner(r.Context(), ci.Runner{Type: ci.InstanceRunner, Description: body.Description, TagList: tagList(body.TagList),
		RunUntagged: runUntagged, Locked: locked, Paused: paused, AccessLevel: body.AccessLevel, MaximumTimeout: body.MaximumTimeout,
		MaintenanceNote: body.MaintenanceNote, CreatedAt: a.now()}, ci.HashToken(secret))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": rn.ID, "token": secret, "token_expires_at": nil})
	return nil
}

// POST /runners/verify
func (a *API) handleVerify(w http.ResponseWriter, r *http.Request) error {
	var body registerBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	token := runnerToken(r, body.Token)
	rn, err := a.authRunner(r.Context(), token)
	if err != nil {
		return err
	}
	if _, err := a.manager(r.Context(), rn, body.SystemID, body.Info, clientIP(r)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": rn.ID, "token": token, "token_expires_at": nil})
	return nil
}

// DELETE /runners
func (a *API) handleUnregister(w http.ResponseWriter, r *http.Request) error {
	var body registerBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	rn, err := a.authRunner(r.Context(), runnerToken(r, body.Token))
	if err != nil {
		return err
	}
	if err := a.store.DeleteRunner(r.Context(), rn.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// DELETE /runners/managers
func (a *API) handleDeleteManager(w http.ResponseWriter, r *http.Request) error {
	var body registerBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	rn, err := a.authRunner(r.Context(), runnerToken(r, body.Token))
	if err != nil {
		return err
	}
	if body.SystemID == "" {
		return &apiError{status: http.StatusBadRequest, body: map[string]string{"error": "system_id is missing"}}
	}
	if err := a.store.DeleteRunnerManager(r.Context(), rn.ID, body.SystemID); errors.Is(err, ci.ErrNotFound) {
		return fail(http.StatusNotFound, "404 Runner Manager Not Found")
	} else if err != nil {
		return err
	}
	a.mu.Lock()
	a.managers = map[string]int64{}
	a.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// POST /runners/reset_authentication_token
func (a *API) handleResetToken(w http.ResponseWriter, r *http.Request) error {
	var body registerBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	rn, err := a.authRunner(r.Context(), runnerToken(r, body.Token))
	if err != nil {
		return err
	}
	secret := ci.NewSecret(ci.RunnerTokenPrefix)
	if err := a.store.RotateRunnerToken(r.Context(), rn.ID, ci.HashToken(secret)); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "token_expires_at": nil})
	return nil
}
