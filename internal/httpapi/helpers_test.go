package httpapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/httpapi"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

const externalURL = "https://gantry.example.com"

type env struct {
	t   *testing.T
	st  store.Store
	fx  *testenv.Fixture
	srv *httptest.Server
}

// eachBackend runs fn against a freshly seeded server on every store.
func eachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			fx := testenv.Seed(t, st)
			api := httpapi.New(httpapi.Config{ExternalURL: externalURL, Version: "17.9.3"}, httpapi.Deps{Store: st, Now: func() time.Time { return testenv.T0 }})
			srv := httptest.NewServer(api.Handler())
			t.Cleanup(srv.Close)
			fn(t, &env{t: t, st: st, fx: fx, srv: srv})
		})
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
	return v
}

func (r response) list(t *testing.T) []map[string]any {
	t.Helper()
	var v []map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not a JSON array: %v: %s", err, r.body)
	}
	return v
}

// req sends a request with optional headers given as "Name: value".
func (e *env) req(method, path string, body string, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	rq, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		rq.Header.Set(k, v)
	}
	if body != "" && rq.Header.Get("Content-Type") == "" {
		rq.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(rq)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) get(path, token string) response {
	e.t.Helper()
	if token == "" {
		return e.req("GET", path, "")
	}
	return e.req("GET", path, "", "PRIVATE-TOKEN: "+token)
}

// expect checks status and exact body.
func expect(t *testing.T, r response, status int, body string) {
	t.Helper()
	if r.status != status || (body != "" && string(r.body) != body) {
		t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, body)
	}
	if ct := r.header.Get("Content-Type"); body != "" && ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
}

// golden compares the body, indented with its key order kept, with
// testdata/name.golden.json.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %s", name, body)
	}
	buf.WriteByte('\n')
	got := buf.String()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden file (run go test -update): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}
