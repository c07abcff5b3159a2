package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// The hand-written encoder must produce encoding/json's bytes exactly.
func TestFastJobJSONMatchesEncoder(t *testing.T) {
	t0 := Time(time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC))
	cov, d := 12.5, 1e-7
	for _, e := range []*jobEntityBuild{
		{jobBasicEntity: jobBasicEntity{ID: 1, Status: "failed", Stage: "te\"st", Name: "a\\b\n\t\u2028<>&\x01é\xff", Ref: "main", Coverage: &cov,
			CreatedAt: t0, StartedAt: &t0, Duration: &d, User: json.RawMessage(`{"id":1}`), Commit: json.RawMessage("null"),
			Pipeline: json.RawMessage(`{"id":2}`), FailureReason: "script_failure", WebURL: "https://x/-/jobs/1"},
			ArtifactsFile: &artifactsFileEntity{Filename: "artifacts.zip", Size: 9}, Artifacts: []artifactEntity{{"archive", 9, "artifacts.zip", "zip"}, {"trace", 1, "job.log", "raw"}},
			Runner: &runnerEntity{ID: 3, Status: "online"}, RunnerManager: &runnerManagerEntity{ID: 4, SystemID: "s"}, ArtifactsExpireAt: &t0, Archived: true,
			TagList: []string{"a", "b"}},
		{jobBasicEntity: jobBasicEntity{ID: 2, Status: "created", User: json.RawMessage("null"), Commit: json.RawMessage("null"), Pipeline: json.RawMessage("null")},
			Artifacts: []artifactEntity{}, TagList: []string{}},
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
		runner, manager := json.RawMessage("null"), json.RawMessage("null")
		if e.Runner != nil {
			runner, _ = json.Marshal(e.Runner)
			manager, _ = json.Marshal(e.RunnerManager)
		}
		got := e.appendJSON(nil, runner, manager)
		if string(got) != string(bytes.TrimSpace(want.Bytes())) {
			t.Errorf("fast encoder differs:\n got %s\nwant %s", got, want.Bytes())
		}
	}
}
