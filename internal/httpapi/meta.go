package httpapi

import "net/http"

// GET /version: users only; GitLab takes no job tokens here.
func (a *API) handleVersion(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.requireUser(r, authUser); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": a.cfg.Version, "revision": a.cfg.Revision, "kas": map[string]any{"enabled": false, "externalUrl": nil, "version": nil}, "enterprise": false})
	return nil
}
