package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"gantry/internal/ci"
)

// appendJob must write exactly what encoding/json writes for jobEntityOf.
func TestAppendJobMatchesEntity(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	a := New(Config{ExternalURL: "http://gantry.test", ArchiveBuildsOlderThan: 24 * time.Hour}, Deps{})
	a.now = func() time.Time { return now }
	p := &ci.Project{ID: 1, FullPath: "g/app", CIJobTokenScopeEnabled: true}
	past, later := now.Add(-48*time.Hour), now.Add(time.Hour)
	started, finished := now.Add(-10*time.Minute), now.Add(-time.Minute)
	version := "17.9.3"
	uid, rid, mid, missing := int64(5), int64(7), int64(9), int64(99)
	cov, tiny := 12.5, 1e-7
	jc := &jobContext{project: p, now: now,
		pipelines: map[int64]*ci.Pipeline{3: {ID: 3, IID: 1, ProjectID: 1, SHA: "abc", Ref: "main", Status: ci.StatusRunning, Source: ci.SourcePush, CreatedAt: past, UpdatedAt: now}},
		users:     map[int64]*ci.User{uid: {ID: uid, Username: "u", Name: "U", Email: "u@example.com", CreatedAt: past}},
		commits:   map[string]*ci.Commit{"abc": {SHA: "abc", Title: "t", Message: "m", AuthorName: "a", AuthorEmail: "a@example.com", AuthoredDate: past, CommittedDate: past}},
		runners:   map[int64]*ci.Runner{rid: {ID: rid, Type: ci.InstanceRunner, Description: "r", CreatedAt: past, ContactedAt: &started}},
		managers:  map[int64]*ci.RunnerManager{mid: {ID: mid, RunnerID: rid, SystemID: "s_1", Version: &version, CreatedAt: past, ContactedAt: &started}},
		artifacts: map[int64][]*ci.Artifact{
			1: {{ID: 1, FileType: "archive", FileFormat: "zip", Filename: "a.zip", Size: 9, ExpireAt: &later}, {ID: 2, FileType: "trace", FileFormat: "raw", Filename: "job.log", Size: 3}},
			2: {{ID: 3, FileType: "archive", FileFormat: "zip", Filename: "old.zip", Size: 1, ExpireAt: &past}},
		},
		encUsers: map[int64]json.RawMessage{}, encCommits: map[string]json.RawMessage{}, encPipelines: map[int64]json.RawMessage{},
		encRunners: map[runnerKey]json.RawMessage{}, encManagers: map[runnerKey]json.RawMessage{}}
	jobs := []*ci.Job{
		{ID: 1, ProjectID: 1, PipelineID: 3, Kind: ci.KindBuild, Status: ci.StatusFailed, Stage: "te\"st", Name: "a\\b\n\t\u2028<>&\x01é\xff", Ref: "main",
			Coverage: &cov, AllowFailure: true, CreatedAt: past, QueuedAt: &past, StartedAt: &started, FinishedAt: &finished, UserID: &uid,
			FailureReason: ci.FailureScript, RunnerID: &rid, RunnerManagerID: &mid, ArtifactsExpireAt: &later, TagList: []string{"a", "b"}},
		{ID: 2, ProjectID: 1, PipelineID: 3, Kind: ci.KindBuild, Status: ci.StatusRunning, CreatedAt: now, QueuedAt: &past, StartedAt: &started,
			RunnerID: &rid, RunnerManagerID: &mid, Coverage: &tiny},
		{ID: 3, ProjectID: 1, PipelineID: 4, Kind: ci.KindBuild, Status: ci.StatusFailed, CreatedAt: now, RunnerID: &missing, RunnerManagerID: &missing, ErasedAt: &finished},
		{ID: 4, ProjectID: 1, PipelineID: 3, Kind: ci.KindBridge, Status: ci.StatusSuccess, CreatedAt: now},
	}
	for _, j := range jobs {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(a.jobEntityOf(jc, j)); err != nil {
			t.Fatal(err)
		}
		if got := a.appendJob(nil, jc, j); string(got) != string(bytes.TrimSpace(want.Bytes())) {
			t.Errorf("job %d: appendJob differs from the entity:\n got %s\nwant %s", j.ID, got, want.Bytes())
		}
	}
}

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
