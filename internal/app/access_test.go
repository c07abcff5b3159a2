package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"gantry/internal/testenv"
)

// accessActor is one caller of the access matrix.
type accessActor struct {
	name   string
	setup  func() // run before this actor's pass
	header map[string]string
	// check judges an answer on a route of the private project.
	check func(status int, body map[string]any) string
}

// The access matrix sends every route, filled with the private project's
// ids, as every kind of caller. A private project never leaks to those who
// cannot see it (anonymous: 401 or 404; outsiders: 404 Project Not Found,
// or a parameter error that GitLab checks first), foreign and finished job
// tokens never succeed, and no caller ever gets a 5xx.
func TestAccessMatrix(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			a, fx, srv := seededApp(t, b)
			tok := func(role string) map[string]string {
				return map[string]string{"PRIVATE-TOKEN": fx.Tokens[role], "Content-Type": "application/json"}
			}
			job := func(secret string) map[string]string {
				return map[string]string{"JOB-TOKEN": secret, "Content-Type": "application/json"}
			}
			never2xx := func(status int, _ map[string]any) string {
				if status < 300 {
					return "succeeded"
				}
				return ""
			}
			anything := func(int, map[string]any) string { return "" }
			actors := []accessActor{
				{"anonymous", nil, map[string]string{"Content-Type": "application/json"}, func(status int, body map[string]any) string {
					if revealsNothing(status, body) || status == 401 || status == 404 && body["message"] == "404 Project Not Found" {
						return ""
					}
					return "want 401 or 404 Project Not Found"
				}},
				{"outsider", nil, tok("outsider"), func(status int, body map[string]any) string {
					if revealsNothing(status, body) || status == 404 && body["message"] == "404 Project Not Found" {
						return ""
					}
					return "want 404 Project Not Found"
				}},
				{"finished job token", nil, job(fx.FinishedJobToken), never2xx},
				{"other project's job token", nil, job(fx.OtherJobToken), never2xx},
				{"allowlisted project's job token", func() {
					if err := a.Store.AllowJobTokens(context.Background(), fx.Project.ID, fx.Other.ID, 0, testenv.T0); err != nil {
						t.Fatal(err)
					}
				}, job(fx.OtherJobToken), anything},
				{"job token", nil, job(fx.JobToken), anything},
				{"guest", nil, tok("guest"), anything},
				{"reporter", nil, tok("reporter"), anything},
				{"developer", nil, tok("developer"), anything},
				{"maintainer", nil, tok("maintainer"), anything},
				{"admin", nil, tok("root"), func(status int, body map[string]any) string {
					if status == 404 && body["message"] == "404 Project Not Found" {
						return "an administrator was told the project does not exist"
					}
					return ""
				}},
			}
			valid := fixturePathValues(fx)
			pairs, unexpected := 0, 0
			for _, actor := range actors {
				if actor.setup != nil {
					actor.setup()
				}
				for _, pat := range a.API.RoutePatterns() {
					method, path, _ := strings.Cut(pat, " ")
					concrete := fillPath(path, valid)
					status, body := accessRequest(t, srv.URL, method, concrete, actor.header)
					pairs++
					msg := ""
					switch {
					case status >= 500:
						msg = "server error"
					case strings.HasPrefix(path, "/api/v4/projects/{id}"):
						msg = actor.check(status, body)
					}
					if msg != "" {
						unexpected++
						if unexpected <= 40 {
							t.Errorf("%s %s as %s: %d %v: %s", method, concrete, actor.name, status, body, msg)
						}
					}
				}
			}
			fmt.Printf("MATRIX access %s: %d route×actor pairs (%d routes, %d actors), %d unexpected\n",
				b.Name, pairs, len(a.API.RoutePatterns()), len(actors), unexpected)
		})
	}
}

// revealsNothing accepts answers that do not depend on the project: a
// parameter error (GitLab validates parameters before the lookup) and the
// catch-all for a path no route serves.
func revealsNothing(status int, body map[string]any) bool {
	return status == 400 && body["error"] != nil || status == 404 && body["error"] == "404 Not Found"
}

func accessRequest(t *testing.T, base, method, path string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return res.StatusCode, body
}
