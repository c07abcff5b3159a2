package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/internal/app"
	"gantry/internal/ci"
	"gantry/internal/config"
	"gantry/internal/testenv"
)

// badCase is one request of the bad-input matrix.
type badCase struct {
	name          string
	method, path  string
	query         string
	body          []byte
	header        map[string]string
	mustBe4xx     bool // the bad part is one every such route reads
	allowNotFound bool // wrong-method cases: GitLab's catch-all
}

// The bad-input matrix is generated from the route table, so no route
// escapes it: malformed path ids, bad query parameters, malformed bodies,
// wrong methods, bad tokens and bad Content-Range headers. No answer may be
// a 5xx, and every error answer is JSON in one of GitLab's shapes.
func TestBadInputMatrix(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			a, fx, srv := seededApp(t, b)
			cases := badInputCases(a.API.RoutePatterns(), fx)
			failures := 0
			for _, c := range cases {
				if msg := runBadCase(srv.URL, c); msg != "" {
					failures++
					if failures <= 40 {
						t.Errorf("%s %s%s [%s]: %s", c.method, c.path, c.query, c.name, msg)
					}
				}
			}
			fmt.Printf("MATRIX bad-input %s: %d cases over %d routes, %d unexpected\n", b.Name, len(cases), len(a.API.RoutePatterns()), failures)
			if len(cases) < 2000 {
				t.Fatalf("only %d bad-input cases", len(cases))
			}
		})
	}
}

// seededApp serves the whole application (every route, the runner
// protocol's included) on the seeded fixture.
func seededApp(t *testing.T, b testenv.Backend) (*app.App, *testenv.Fixture, *httptest.Server) {
	t.Helper()
	return seededAppAt(t, b, nil)
}

// seededAppAt is seededApp with a clock (nil: the real one).
func seededAppAt(t *testing.T, b testenv.Backend, now func() time.Time) (*app.App, *testenv.Fixture, *httptest.Server) {
	t.Helper()
	st := b.Open(t)
	fx := testenv.Seed(t, st)
	cfg := config.Defaults()
	cfg.DataDir, cfg.ExternalURL = t.TempDir(), "http://127.0.0.1"
	a, err := app.New(context.Background(), cfg, app.Options{Store: st, Logger: slog.New(slog.DiscardHandler), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, fx, srv
}

func runBadCase(base string, c badCase) string {
	u := base + c.path
	if c.query != "" {
		u += "?" + c.query
	}
	req, err := http.NewRequest(c.method, u, bytes.NewReader(c.body))
	if err != nil {
		return "building the request: " + err.Error()
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "transport: " + err.Error()
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	switch {
	case res.StatusCode >= 500:
		return fmt.Sprintf("%d %.200s", res.StatusCode, raw)
	case c.mustBe4xx && (res.StatusCode < 400 || res.StatusCode > 499):
		return fmt.Sprintf("want a 4xx, got %d %.200s", res.StatusCode, raw)
	case c.allowNotFound && res.StatusCode != http.StatusNotFound:
		return fmt.Sprintf("want the catch-all 404, got %d", res.StatusCode)
	case res.StatusCode >= 400:
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			return fmt.Sprintf("%d with Content-Type %q: %.200s", res.StatusCode, ct, raw)
		}
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			return fmt.Sprintf("%d with a body that is not a JSON object: %.200s", res.StatusCode, raw)
		}
		_, msg := body["message"]
		_, e := body["error"]
		if !msg && !e {
			return fmt.Sprintf("%d without message or error: %.200s", res.StatusCode, raw)
		}
	}
	return ""
}

// fixturePathValues are valid values for the routes' path parameters: the
// fixture's private project, its running job and its pipeline.
func fixturePathValues(fx *testenv.Fixture) map[string]string {
	return map[string]string{
		"id": strconv.FormatInt(fx.Project.ID, 10), "job_id": strconv.FormatInt(fx.JobsByStatus[ci.StatusRunning].ID, 10),
		"pipeline_id": strconv.FormatInt(fx.Pipeline.ID, 10), "name": "main", "file_path": "README.md", "hook_id": strconv.FormatInt(fx.Hook.ID, 10),
	}
}

// fillPath puts values into a route pattern's {params}, looking in each map
// in turn; a parameter none of them names gets "1".
func fillPath(path string, values ...map[string]string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			b.WriteString(path)
			return b.String()
		}
		j := strings.IndexByte(path[i:], '}') + i
		name := strings.TrimSuffix(path[i+1:j], "...")
		v := "1"
		for _, m := range values {
			if mv, ok := m[name]; ok {
				v = mv
				break
			}
		}
		b.WriteString(path[:i])
		b.WriteString(v)
		path = path[j+1:]
	}
}

// badInputCases builds the matrix for every route pattern.
func badInputCases(patterns []string, fx *testenv.Fixture) []badCase {
	root := map[string]string{"PRIVATE-TOKEN": fx.Tokens["root"], "Content-Type": "application/json"}
	valid := fixturePathValues(fx)
	fill := func(path string, override map[string]string) string { return fillPath(path, override, valid) }
	params := func(path string) []string {
		var out []string
		for rest := path; ; {
			i := strings.IndexByte(rest, '{')
			if i < 0 {
				return out
			}
			j := strings.IndexByte(rest[i:], '}') + i
			out = append(out, strings.TrimSuffix(rest[i+1:j], "..."))
			rest = rest[j+1:]
		}
	}
	badIDs := []string{"0", "-1", "abc", "1.5", "99999999999999999999", "9223372036854775807", "%FF", "%00", "1%20OR%201=1"}
	badQueries := []string{"page=-1", "per_page=0", "per_page=1000", "page=abc", "per_page=1e3", "scope=bogus", "scope[]=bogus&scope[]=pending",
		"pagination=keyset&cursor=%25%25%25", "pagination=keyset&cursor=eyJpZCI6Ii0xIn0", "sort=sideways", "ref=%FF", "%FF=%FF",
		"include_retried=maybe", "force=maybe", "page=99999999999999999999", "ref=%00", "name=a%00b", "private_token=%00"}
	big := append(append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), 2<<20)...), '"', '}')
	badBodies := [][]byte{[]byte("{"), []byte("[1,2]"), []byte(`"s"`), []byte("null"), []byte("\xff\xfe"),
		[]byte(`{"name":{"a":1},"ref":[],"id":"x","state":7,"token":5,"variables":"x","job_variables_attributes":{"k":1},"scopes":"api","access_level":"high"}`),
		[]byte(`{"name":"\xff","ref":"\xff","description":"\xff"}`), []byte(`{"name":"a\u0000b","ref":"\u0000","description":"\u0000"}`), big}
	badTokens := map[string]map[string]string{
		"expired":  {"PRIVATE-TOKEN": fx.Tokens["expired"]},
		"revoked":  {"PRIVATE-TOKEN": fx.Tokens["revoked"]},
		"garbage":  {"PRIVATE-TOKEN": "glpat-not-a-token"},
		"bearer":   {"Authorization": "Bearer glpat-not-a-token"},
		"badjob":   {"JOB-TOKEN": "glcbt-not-a-token"},
		"finished": {"JOB-TOKEN": fx.FinishedJobToken},
	}
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

	var cases []badCase
	registered := map[string]map[string]bool{}
	for _, pat := range patterns {
		method, path, _ := strings.Cut(pat, " ")
		if registered[path] == nil {
			registered[path] = map[string]bool{}
		}
		registered[path][method] = true
		hdr := root
		for _, p := range params(path) {
			for _, v := range badIDs {
				cases = append(cases, badCase{name: "path " + p + "=" + v, method: method, path: fill(path, map[string]string{p: v}), header: hdr,
					mustBe4xx: p != "file_path" && p != "name" || v == "%FF" || v == "%00"})
			}
		}
		for _, q := range badQueries {
			cases = append(cases, badCase{name: "query", method: method, path: fill(path, nil), query: q, header: hdr})
		}
		if method != "GET" {
			for i, body := range badBodies {
				cases = append(cases, badCase{name: "body " + strconv.Itoa(i), method: method, path: fill(path, nil), body: body, header: hdr})
			}
			form := map[string]string{"PRIVATE-TOKEN": fx.Tokens["root"], "Content-Type": "application/x-www-form-urlencoded"}
			cases = append(cases, badCase{name: "form utf-8", method: method, path: fill(path, nil), body: []byte("name=%FF&ref=%FF&description=%FF"), header: form})
			if method != "DELETE" {
				ro := map[string]string{"PRIVATE-TOKEN": fx.Tokens["readonly"], "Content-Type": "application/json"}
				cases = append(cases, badCase{name: "read-only token", method: method, path: fill(path, nil), body: []byte("{}"), header: ro})
			}
		}
		if method != "GET" && (strings.HasPrefix(path, "/api/v4/jobs") || strings.HasPrefix(path, "/api/v4/runners")) {
			// Runner routes read their token from the body: give them a good
			// one with bad values beside it.
			for _, tok := range []string{"glrt-fixture-runner", fx.JobToken} {
				for _, body := range []string{
					`{"token":"` + tok + `","system_id":"s_\u0000","info":{"name":"\u0000","version":"\u0000","features":"x"},"last_update":"\u0000"}`,
					`{"token":"` + tok + "\",\"system_id\":\"\xff\",\"info\":{\"name\":\"\xff\"},\"state\":\"\xff\",\"failure_reason\":\"\xff\"}",
					`{"token":"` + tok + `","state":"success","exit_code":"x","checksum":7,"description":"\u0000","tag_list":"\u0000"}`,
					`{"token":"` + tok + `","state":"nonsense","failure_reason":"nonsense","exit_code":99999999999999999999}`,
				} {
					cases = append(cases, badCase{name: "runner body", method: method, path: fill(path, nil), body: []byte(body),
						header: map[string]string{"Content-Type": "application/json", "JOB-TOKEN": fx.JobToken}})
				}
			}
		}
		for name, h := range badTokens {
			// A bad personal token is refused everywhere; a job token is
			// ignored (anonymous) on routes that do not take job tokens.
			cases = append(cases, badCase{name: "token " + name, method: method, path: fill(path, nil), header: h,
				mustBe4xx: name != "finished" && name != "badjob"})
		}
		if strings.HasSuffix(path, "/trace") && method == "PATCH" {
			for _, cr := range []string{"abc", "5-2", "-1-3", "0-", "", "bytes=0-1/2", "0-99999999999999999999"} {
				h := map[string]string{"JOB-TOKEN": fx.JobToken, "Content-Range": cr}
				cases = append(cases, badCase{name: "content-range " + cr, method: method, path: fill(path, nil), body: []byte("xy"), header: h})
			}
		}
	}
	paths := make([]string, 0, len(registered))
	for p := range registered {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		for _, m := range methods {
			if registered[path][m] || m == "GET" && registered[path]["HEAD"] {
				continue
			}
			if _, dup := matchesOther(registered, m, fill(path, nil)); dup {
				continue
			}
			cases = append(cases, badCase{name: "method", method: m, path: fill(path, nil), header: root, allowNotFound: true})
		}
	}
	return cases
}

// matchesOther reports whether another registered pattern (one with a
// literal where this one has a wildcard, or the reverse) serves the
// request, so a "wrong method" case would not be wrong.
func matchesOther(registered map[string]map[string]bool, method, concrete string) (string, bool) {
	for pat, ms := range registered {
		if !ms[method] {
			continue
		}
		a, b := strings.Split(pat, "/"), strings.Split(concrete, "/")
		if len(a) != len(b) && !strings.HasSuffix(pat, "...}") {
			continue
		}
		ok := true
		for i := range a {
			if i >= len(b) {
				ok = false
				break
			}
			if strings.HasPrefix(a[i], "{") {
				if strings.HasSuffix(a[i], "...}") {
					break
				}
				continue
			}
			if a[i] != b[i] {
				ok = false
				break
			}
		}
		if ok {
			return pat, true
		}
	}
	return "", false
}
