package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gantry/internal/testenv"
)

// TestServerEndToEnd runs the real binary's run() on a free port, against
// each store, and talks to it over HTTP, then stops it as SIGTERM would.
func TestServerEndToEnd(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			env := map[string]string{"GANTRY_INITIAL_ROOT_TOKEN": "glpat-e2e-root-token-0123456789"}
			if b.Name == "postgres" {
				u, _ := testenv.NewPostgresSchema(t)
				env["GANTRY_DATABASE_URL"] = u
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"gantry", "server", "-listen", "127.0.0.1:0", "-data-dir", t.TempDir()}, func(k string) string { return env[k] }, pw, io.Discard)
				pw.Close()
			}()
			sc := bufio.NewScanner(pr)
			base := ""
			for sc.Scan() {
				if addr, ok := strings.CutPrefix(sc.Text(), "gantry listening on "); ok {
					base = strings.Fields(addr)[0]
					break
				}
			}
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			if base == "" {
				t.Fatalf("server did not start: %v", <-done)
			}
			get := func(path, token string) (int, string) {
				req, _ := http.NewRequest("GET", base+path, nil)
				if token != "" {
					req.Header.Set("PRIVATE-TOKEN", token)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(body)
			}
			if code, body := get("/-/readiness", ""); code != 200 || !strings.Contains(body, `"ok"`) {
				t.Fatalf("readiness %d %s", code, body)
			}
			if code, _ := get("/-/liveness", ""); code != 200 {
				t.Fatalf("liveness %d", code)
			}
			if code, body := get("/api/v4/user", env["GANTRY_INITIAL_ROOT_TOKEN"]); code != 200 || !strings.Contains(body, `"username":"root"`) || !strings.Contains(body, `"is_admin":true`) {
				t.Fatalf("user %d %s", code, body)
			}
			if code, body := get("/api/v4/projects/1/jobs", ""); code != 401 || body != `{"message":"401 Unauthorized"}` {
				t.Fatalf("anonymous %d %s", code, body)
			}
			if code, body := get("/-/metrics", ""); code != 200 || !strings.Contains(body, `gantry_http_requests_total{code="200",route="GET /api/v4/user"} 1`) {
				t.Fatalf("metrics %d: %s", code, body)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("shutdown: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("server did not stop")
			}
		})
	}
}

func TestRunRejectsBadInvocations(t *testing.T) {
	env := func(string) string { return "" }
	for _, args := range [][]string{{"gantry"}, {"gantry", "nope"}, {"gantry", "server", "-listen", "nocolon"}, {"gantry", "server", "-database-url", "mysql://x"}} {
		if err := run(context.Background(), args, env, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestServerRejectsBadObjectStore(t *testing.T) {
	for _, url := range []string{"s3://builds?endpont=127.0.0.1:1", "s3://builds?endpoint=127.0.0.1:1&insecure=true"} {
		env := map[string]string{"GANTRY_DATA_DIR": t.TempDir(), "GANTRY_LISTEN": "127.0.0.1:0", "GANTRY_OBJECT_STORE_URL": url,
			"GANTRY_OBJECT_STORE_ACCESS_KEY": "ak", "GANTRY_OBJECT_STORE_SECRET_KEY": "sk"}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := run(ctx, []string{"gantry", "server"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "object store") {
			t.Errorf("%s: %v", url, err)
		}
	}
}
