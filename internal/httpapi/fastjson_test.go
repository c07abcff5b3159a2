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

// The direct timestamp writer must agree with time's layout formatting,
// including zones other than UTC and years outside four digits.
func TestAppendISOMillisMatchesLayout(t *testing.T) {
	zone := time.FixedZone("x", -5*3600-30*60)
	times := []time.Time{
		time.Date(2026, 11, 25, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 1_000_000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 1, 0, 30, 0, 5_000_000, zone),
		time.Unix(0, 0),
	}
	for i := 0; i < 1000; i++ {
		times = append(times, time.Unix(int64(i)*987_654_321, int64(i)*1_234_567%1e9))
	}
	for _, tm := range times {
		want := tm.UTC().AppendFormat(nil, isoMillis)
		if got := appendISOMillis(nil, tm); string(got) != string(want) {
			t.Fatalf("%v: got %s, want %s", tm, got, want)
		}
	}
}

func TestAppendJSONFloatMatchesEncoder(t *testing.T) {
	vals := []float64{0, 1, -1, 0.5, 1e-6, 9.99e-7, 1e-7, 1.5e-9, 1e20, 1e21, 1.234e22, -3e-12, 123.456, 2.1e-308, 1.7976931348623157e308}
	for i := 0; i < 2000; i++ {
		vals = append(vals, float64(i)*0.137-50, float64(i)*1e-9, float64(i)*7.3e18)
	}
	for _, v := range vals {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONFloat(nil, v); string(got) != string(want) {
			t.Fatalf("%v: got %s, want %s", v, got, want)
		}
	}
}
