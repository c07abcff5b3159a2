package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/store"
)

const (
	sessionCookie = "_gantry_session"
	// csrfCookie carries the anonymous form token (the sign-in form); a
	// signed-in form's token is derived from the session instead.
	csrfCookie = "_gantry_csrf"
	csrfField  = "authenticity_token"
)

// identify reads the session cookie. A missing, unknown or expired
// session is anonymous; only a failing database is an error.
func (s *Server) identify(r *http.Request) (*viewer, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return &viewer{}, nil
	}
	_, user, err := s.store.SessionByDigest(r.Context(), ci.HashToken(c.Value), s.now())
	if errors.Is(err, ci.ErrNotFound) {
		return &viewer{}, nil
	}
	if err != nil {
		return nil, err
	}
	if user.State != "active" {
		return &viewer{}, nil
	}
	return &viewer{user: user, sessionID: c.Value}, nil
}

func (s *Server) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode}
}

// csrfToken is the token forms must send back: an HMAC of the session id
// when signed in (nothing to store), else a random value in its own cookie.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request, v *viewer) string {
	if v.sessionID != "" {
		return sessionCSRF(v.sessionID)
	}
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 20 {
		return c.Value
	}
	tok := ci.NewSecret("")
	http.SetCookie(w, s.cookie(csrfCookie, tok, 0))
	return tok
}

func sessionCSRF(sessionID string) string {
	m := hmac.New(sha256.New, []byte(sessionID))
	m.Write([]byte("gantry csrf"))
	return hex.EncodeToString(m.Sum(nil))
}

// checkCSRF insists that a form carries the token of this browser.
func (s *Server) checkCSRF(r *http.Request) error {
	got := r.PostFormValue(csrfField)
	if got == "" {
		got = r.Header.Get("X-CSRF-Token")
	}
	v := viewerOf(r)
	want := ""
	if v.sessionID != "" {
		want = sessionCSRF(v.sessionID)
	} else if c, err := r.Cookie(csrfCookie); err == nil {
		want = c.Value
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errBadCSRF
	}
	return nil
}

type signInData struct {
	Error    string
	Login    string
	Redirect string
}

// safeRedirect keeps redirects on this site: a local absolute path only.
func safeRedirect(to string) string {
	if !strings.HasPrefix(to, "/") || strings.HasPrefix(to, "//") || strings.HasPrefix(to, `/\`) {
		return "/"
	}
	if u, err := url.Parse(to); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return to
}

// GET /users/sign_in
func (s *Server) handleSignInForm(w http.ResponseWriter, r *http.Request) error {
	s.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Data: signInData{Redirect: safeRedirect(r.URL.Query().Get("redirect_to"))}})
	return nil
}

// POST /users/sign_in: a username and password, or a personal access
// token (scope api), starts a session.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	ctx := r.Context()
	data := signInData{Login: r.PostFormValue("username"), Redirect: safeRedirect(r.PostFormValue("redirect_to"))}
	user, problem, err := s.checkCredentials(r)
	if err != nil {
		return err
	}
	if problem != "" {
		data.Error = problem
		s.render(w, r, http.StatusUnauthorized, "signin", page{Title: "Sign in", Data: data})
		return nil
	}
	id := ci.NewSecret("")
	now := s.now()
	if err := s.store.CreateSession(ctx, store.Session{Digest: ci.HashToken(id), UserID: user.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}); err != nil {
		return err
	}
	// Expired sessions are swept as new ones start: no extra worker.
	if _, err := s.store.DeleteExpiredSessions(ctx, now); err != nil {
		s.log.Warn("delete expired sessions", "err", err)
	}
	http.SetCookie(w, s.cookie(sessionCookie, id, int(s.cfg.SessionTTL.Seconds())))
	http.SetCookie(w, s.cookie(csrfCookie, "", -1))
	http.Redirect(w, r, data.Redirect, http.StatusSeeOther)
	return nil
}

const badCredentials = "Invalid login or password."

// checkCredentials returns the user, or a problem to show on the form.
func (s *Server) checkCredentials(r *http.Request) (*ci.User, string, error) {
	ctx := r.Context()
	if tok := strings.TrimSpace(r.PostFormValue("token")); tok != "" {
		t, user, err := s.store.TokenByDigest(ctx, ci.HashToken(tok))
		if errors.Is(err, ci.ErrNotFound) {
			return nil, "Invalid token.", nil
		}
		if err != nil {
			return nil, "", err
		}
		now := s.now()
		switch {
		case t.Revoked || t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
			return nil, "This token has been revoked or has expired.", nil
		case !t.Has(ci.ScopeAPI):
			return nil, "Signing in needs a token with the api scope.", nil
		case user.State != "active":
			return nil, "Your account has been blocked.", nil
		}
		return user, "", nil
	}
	user, err := s.store.UserByUsername(ctx, strings.TrimSpace(r.PostFormValue("username")))
	if errors.Is(err, ci.ErrNotFound) {
		return nil, badCredentials, nil
	}
	if err != nil {
		return nil, "", err
	}
	digest, err := s.store.UserPasswordDigest(ctx, user.ID)
	if err != nil {
		return nil, "", err
	}
	if !ci.PasswordMatches(digest, r.PostFormValue("password")) {
		return nil, badCredentials, nil
	}
	if user.State != "active" {
		return nil, "Your account has been blocked.", nil
	}
	return user, "", nil
}

// POST /users/sign_out
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	if v := viewerOf(r); v.sessionID != "" {
		if err := s.store.DeleteSession(r.Context(), ci.HashToken(v.sessionID)); err != nil {
			return err
		}
	}
	http.SetCookie(w, s.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}
