package httpapi_test

import (
	"context"
	"fmt"
	"testing"

	"gantry/internal/ci"
)

func TestJobQueue(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		q := func(id int64) map[string]any {
			r := e.get(fmt.Sprintf("/api/v4/projects/%s/jobs/%d/queue", pid(e), id), dev)
			expect(t, r, 200, "")
			return r.json(t).(map[string]any)
		}
		// The fixture's only runner matches the pending job but is running another.
		m := q(e.fx.JobsByStatus[ci.StatusPending].ID)
		if m["position"].(float64) != 1 || m["reason"] != "matching_runners_busy" || m["matching_runners"].(float64) != 1 || m["online_matching_runners"].(float64) != 1 {
			t.Fatalf("pending job: %v", m)
		}
		if m := q(e.fx.JobsByStatus[ci.StatusSuccess].ID); m["reason"] != "not_pending" || m["position"] != nil {
			t.Fatalf("finished job: %v", m)
		}
		// A job asking for a tag no runner has.
		gpu := *e.fx.JobsByStatus[ci.StatusPending]
		gpu.ID, gpu.TagList, gpu.Name = 0, []string{"gpu"}, "needs-gpu"
		j, err := e.st.InsertJob(context.Background(), gpu)
		if err != nil {
			t.Fatal(err)
		}
		if m := q(j.ID); m["reason"] != "no_online_runner_matches" || m["matching_runners"].(float64) != 0 || m["position"].(float64) != 2 {
			t.Fatalf("gpu job: %v", m)
		}
		expect(t, e.get(fmt.Sprintf("/api/v4/projects/%s/jobs/%d/queue", pid(e), j.ID), e.fx.Tokens["guest"]), 403, `{"message":"403 Forbidden"}`)
	})
}
