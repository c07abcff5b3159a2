package runnerapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

// samplePayload is a no-op job's payload as gantry builds it: the
// predefined variables and one script step.
func samplePayload() *jobPayload {
	uid := int64(1)
	p := &jobPayload{ID: 123456, Token: "glcbt-64_0123456789abcdefghijklmn", JobInfo: payloadJobInfo{ID: 123456, Name: "noop", Stage: "test", ProjectID: 1,
		ProjectName: "app", ProjectFullPath: "bench/app", NamespaceID: 1, PipelineID: 99, UserID: &uid, TimeInQueueSeconds: 0.0123, InstanceRunnersJobs: "0"},
		GitInfo: payloadGitInfo{RepoURL: "http://gitlab-ci-token:glcbt-64_0123456789abcdefghijklmn@127.0.0.1:8080/bench/app.git", RepoObjectFormat: "sha1",
			Ref: "main", SHA: "3f1c0e0d5b8a9c2e4f6a7b8c9d0e1f2a3b4c5d6e", RefType: "branch", Refspecs: []string{"+3f1c:refs/pipelines/99", "+refs/heads/main:refs/remotes/origin/main"}, Depth: 20},
		RunnerInfo: payloadRunnerInfo{Timeout: 3600}, Steps: []payloadStep{{Name: "script", Script: []string{"true"}, Timeout: 3600, When: "on_success"}},
		Services: []payloadImage{}, Artifacts: []payloadArtifact{}, Cache: []any{}, Credentials: []any{}, Dependencies: []payloadDependency{},
		Features: payloadFeatures{TraceSections: true, TokenMaskPrefixes: tokenMaskPrefixes, FailureReasons: failureReasons}}
	for i := 0; i < 45; i++ {
		p.Variables = append(p.Variables, payloadVariable{Key: "CI_PREDEFINED_VARIABLE_" + strconv.Itoa(i), Value: "http://127.0.0.1:8080/bench/app/-/jobs/123456", Public: true})
	}
	return p
}

// BenchmarkPayloadJSON compares the hand-written payload with encoding/json.
func BenchmarkPayloadJSON(b *testing.B) {
	p := samplePayload()
	b.Run("hand", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := p.appendJSON(make([]byte, 0, 8<<10)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := json.Marshal(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The hand-written payload is the document encoding/json writes for the
// same struct, byte for byte with HTML escaping off.
func TestPayloadJSONMatchesEncoder(t *testing.T) {
	uid := int64(7)
	odd := "quote \" backslash \\ <tag> & amp\n\ttab \x01 ctl ü 🚀 \u2028 bad \xff"
	full := &jobPayload{
		ID: 42, Token: "glcbt-" + odd, AllowGitFetch: true,
		JobInfo: payloadJobInfo{ID: 42, Name: odd, Stage: "test", ProjectID: 3, ProjectName: "app", ProjectFullPath: "g/app", NamespaceID: 2,
			PipelineID: 9, UserID: &uid, TimeInQueueSeconds: 1.25e-7, InstanceRunnersJobs: "0"},
		GitInfo: payloadGitInfo{RepoURL: "http://gitlab-ci-token:x@h/g/app.git", RepoObjectFormat: "sha1", Ref: "main", SHA: "abc", BeforeSHA: "000",
			RefType: "branch", Protected: true, Refspecs: []string{"+abc:refs/pipelines/9", "+refs/heads/main:refs/remotes/origin/main"}, Depth: 20},
		RunnerInfo: payloadRunnerInfo{Timeout: 3600},
		Variables: []payloadVariable{{Key: "CI", Value: "true", Public: true}, {Key: "SECRET", Value: odd, Masked: true},
			{Key: "F", Value: "x", File: true, Raw: true}},
		Steps: []payloadStep{{Name: "script", Script: []string{"echo " + odd, "make"}, Timeout: 3600, When: "on_success"},
			{Name: "after_script", Timeout: 3600, When: "always", AllowFailure: true}},
		Image:    &payloadImage{Name: "golang:1.26", Alias: "go", Command: []string{"sh"}, Entrypoint: []string{""}, PullPolicy: []string{"always", "if-not-present"}},
		Services: []payloadImage{{Name: "postgres:15"}, {Name: "redis", Alias: "cache"}},
		Artifacts: []payloadArtifact{{Name: "art", Untracked: true, Exclude: []string{}, When: "on_success", ArtifactType: "archive", ArtifactFormat: "zip", ExpireIn: "1 day"},
			{Name: "junit", Paths: []string{"report.xml"}, Exclude: []string{}, When: "always", ArtifactType: "junit", ArtifactFormat: "gzip"}},
		Cache:        []any{map[string]any{"key": "deps", "paths": []any{"vendor/"}, "policy": "pull-push", "untracked": false}},
		Credentials:  []any{map[string]any{"type": "registry", "url": "r.example", "username": "u", "password": "p"}},
		Dependencies: []payloadDependency{{ID: 40, Name: "build", Token: "glcbt-t"}},
		Features:     payloadFeatures{TraceSections: true, TokenMaskPrefixes: tokenMaskPrefixes, FailureReasons: failureReasons},
	}
	full.Dependencies[0].ArtifactsFile.Filename, full.Dependencies[0].ArtifactsFile.Size = "artifacts.zip", 1234
	bare := &jobPayload{ID: 1, Token: "t", Variables: []payloadVariable{}, Steps: []payloadStep{{Name: "script"}},
		Services: []payloadImage{}, Artifacts: []payloadArtifact{}, Cache: []any{}, Credentials: []any{}, Dependencies: []payloadDependency{}}
	for name, p := range map[string]*jobPayload{"sample": samplePayload(), "full": full, "bare": bare, "nil slices": {ID: 2, Token: "t"}} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(p); err != nil {
			t.Fatal(err)
		}
		got, err := p.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(got, '\n'), want.Bytes()) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want.Bytes())
		}
	}
}
