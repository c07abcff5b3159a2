package httpapi

import (
	"errors"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// GET /user
func (a *API) handleCurrentUser(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.currentUserEntity(ident.User))
	return nil
}

// GET /users/:id
func (a *API) handleGetUser(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.authenticate(r, authUser); err != nil {
		return err
	}
	id, ok, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if !ok {
		return errUserNotFound
	}
	u, err := a.store.UserByID(r.Context(), id)
	if errors.Is(err, ci.ErrNotFound) {
		return errUserNotFound
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.userEntity(u))
	return nil
}

// POST /users (admin)
func (a *API) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.requireAdmin(r); err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	if err := p.requireStr("email", "name", "username"); err != nil {
		return err
	}
	admin, _, err := p.boolParam("admin")
	if err != nil {
		return err
	}
	email := strings.TrimSpace(p.str("email"))
	if _, err := mail.ParseAddress(email); err != nil {
		return errBadRequest("email is invalid")
	}
	username := p.str("username")
	if !validPath(username) {
		return errBadRequest("username is invalid")
	}
	password, hasPassword := p.values["password"]
	var digest string
	if hasPassword {
		// GitLab's model validation answer: {"message": {"password": [...]}}.
		pw := ""
		if len(password) > 0 {
			pw = password[0]
		}
		if problem := ci.PasswordProblem(pw); problem != "" {
			return &apiError{status: http.StatusBadRequest, body: map[string]any{"message": map[string][]string{"password": {problem}}}}
		}
		if digest, err = ci.HashPassword(pw); err != nil {
			return err
		}
	}
	u, err := a.store.CreateUser(r.Context(), store.CreateUserParams{Username: username, Name: p.str("name"), Email: email, Admin: admin, Now: a.now()})
	if errors.Is(err, ci.ErrConflict) {
		if _, uerr := a.store.UserByUsername(r.Context(), username); uerr == nil {
			return errMessage(http.StatusConflict, "Username has already been taken")
		}
		return errMessage(http.StatusConflict, "Email has already been taken")
	}
	if err != nil {
		return err
	}
	if digest != "" {
		if err := a.store.SetUserPassword(r.Context(), u.ID, digest); err != nil {
			return err
		}
	}
	e := a.currentUserEntity(u)
	writeJSON(w, http.StatusCreated, e)
	return nil
}

type tokenEntity struct {
	ID          int64    `json:"id"`
	Name        string   `json:"name"`
	Revoked     bool     `json:"revoked"`
	CreatedAt   Time     `json:"created_at"`
	Description string   `json:"description"`
	Scopes      []string `json:"scopes"`
	UserID      int64    `json:"user_id"`
	LastUsedAt  *Time    `json:"last_used_at"`
	Active      bool     `json:"active"`
	ExpiresAt   *string  `json:"expires_at"`
	Token       string   `json:"token,omitempty"`
}

// POST /users/:id/personal_access_tokens (admin)
func (a *API) handleCreateUserToken(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.requireAdmin(r); err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	uid, ok, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var missing []string
	if strings.TrimSpace(p.str("name")) == "" {
		missing = append(missing, "name is missing")
	}
	rawScopes := append(append([]string{}, p.values["scopes[]"]...), p.values["scopes"]...)
	if len(rawScopes) == 0 {
		missing = append(missing, "scopes is missing")
	}
	if len(missing) > 0 {
		return errParam(strings.Join(missing, ", "))
	}
	var scopes []ci.Scope
	for _, s := range rawScopes {
		for _, part := range strings.Split(s, ",") {
			sc := ci.Scope(strings.TrimSpace(part))
			if !sc.Valid() {
				return errParam("scopes does not have a valid value")
			}
			scopes = append(scopes, sc)
		}
	}
	var expires *time.Time
	var expiresStr *string
	if v := p.str("expires_at"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return errParam("expires_at is invalid")
		}
		expires, expiresStr = &t, &v
	}
	if !ok {
		return errUserNotFound
	}
	u, err := a.store.UserByID(r.Context(), uid)
	if errors.Is(err, ci.ErrNotFound) {
		return errUserNotFound
	}
	if err != nil {
		return err
	}
	secret := ci.NewSecret(ci.PersonalTokenPrefix)
	tok, err := a.store.CreateToken(r.Context(), store.CreateTokenParams{UserID: u.ID, Name: p.str("name"), Digest: ci.HashToken(secret), Scopes: scopes, ExpiresAt: expires, Now: a.now()})
	if err != nil {
		return err
	}
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = string(s)
	}
	writeJSON(w, http.StatusCreated, tokenEntity{ID: tok.ID, Name: tok.Name, CreatedAt: Time(tok.CreatedAt), Description: p.str("description"),
		Scopes: names, UserID: u.ID, Active: true, ExpiresAt: expiresStr, Token: secret})
	return nil
}
