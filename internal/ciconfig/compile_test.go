package ciconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json with the current output")

// caseInput builds the Input for a testdata case. Directives are comment
// lines at the top of the .yml file:
//
//	#! vars: K=V K2=V2 -K3     (applied over the defaults below; -K removes)
//	#! changed: a.go docs/x.md (sets ChangedPaths; "#! changed:" alone = empty list)
//	#! files: Dockerfile src/main.go (Exists matches globs against these)
//	#! limits: MaxJobs=3 MaxNeeds=2
//
// Default variables: CI_COMMIT_REF_NAME=main CI_COMMIT_BRANCH=main
// CI_DEFAULT_BRANCH=main CI_PIPELINE_SOURCE=push. Included files are read
// from testdata/<case>.d/ when that directory exists.
func caseInput(t testing.TB, ymlPath string) Input {
	content, err := os.ReadFile(ymlPath)
	if err != nil {
		t.Fatal(err)
	}
	in := Input{
		Path:    ".gitlab-ci.yml",
		Content: content,
		Variables: map[string]string{
			"CI_COMMIT_REF_NAME": "main", "CI_COMMIT_BRANCH": "main",
			"CI_DEFAULT_BRANCH": "main", "CI_PIPELINE_SOURCE": "push",
		},
	}
	var files []string
	for _, line := range strings.Split(string(content), "\n") {
		if !strings.HasPrefix(line, "#! ") {
			continue
		}
		name, arg, _ := strings.Cut(strings.TrimPrefix(line, "#! "), ":")
		fields := strings.Fields(arg)
		switch name {
		case "vars":
			for _, f := range fields {
				if strings.HasPrefix(f, "-") {
					delete(in.Variables, f[1:])
					continue
				}
				k, v, _ := strings.Cut(f, "=")
				in.Variables[k] = v
			}
		case "changed":
			in.ChangedPaths = append([]string{}, fields...)
		case "files":
			files = append(files, fields...)
		case "limits":
			for _, f := range fields {
				k, v, _ := strings.Cut(f, "=")
				n, _ := strconv.Atoi(v)
				switch k {
				case "MaxJobs":
					in.Limits.MaxJobs = n
				case "MaxNeeds":
					in.Limits.MaxNeeds = n
				case "MaxIncludes":
					in.Limits.MaxIncludes = n
				case "MaxIncludeDepth":
					in.Limits.MaxIncludeDepth = n
				case "MaxBytes":
					in.Limits.MaxBytes = n
				case "MaxDepth":
					in.Limits.MaxDepth = n
				case "MaxAliasExpansion":
					in.Limits.MaxAliasExpansion = n
				case "MaxTotalNodes":
					in.Limits.MaxTotalNodes = n
				default:
					t.Fatalf("unknown limit %s", k)
				}
			}
		default:
			t.Fatalf("%s: unknown directive %q", ymlPath, name)
		}
	}
	if files != nil {
		in.Exists = func(glob string) bool {
			for _, f := range files {
				if globMatch(glob, f) {
					return true
				}
			}
			return false
		}
	}
	dir := strings.TrimSuffix(ymlPath, ".yml") + ".d"
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		in.ReadFile = func(p string) ([]byte, error) {
			if strings.Contains(p, "..") {
				return nil, fmt.Errorf("bad path")
			}
			return os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		}
	}
	return in
}

// result renders what Compile returned as indented JSON.
func result(t testing.TB, plan *Plan, err error) []byte {
	var v any
	if err != nil {
		var es *Errors
		if !errors.As(err, &es) {
			t.Fatalf("error is %T, want *Errors: %v", err, err)
		}
		v = map[string]any{"errors": *es}
	} else {
		v = plan
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTestdata(t *testing.T) {
	ymls, err := filepath.Glob("testdata/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ymls)
	if len(ymls) < 40 {
		t.Errorf("only %d testdata cases", len(ymls))
	}
	for _, y := range ymls {
		name := strings.TrimSuffix(filepath.Base(y), ".yml")
		t.Run(name, func(t *testing.T) {
			in := caseInput(t, y)
			plan, err := Compile(in)
			got := result(t, plan, err)
			want := strings.TrimSuffix(y, ".yml") + ".json"
			if *update {
				if err := os.WriteFile(want, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			exp, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("missing expected output (run with -update): %v", err)
			}
			if !bytes.Equal(got, exp) {
				t.Errorf("output differs from %s\n--- got\n%s", want, got)
			}
		})
	}
}
