package app_test

import (
	"fmt"
	"net/http"
	"testing"

	"gantry/internal/testenv"
)

// Playing a manual job makes it pending without a processing transition;
// a runner already long-polling must still be handed it (found by the
// client scenario: the played job waited out the whole long poll).
func TestPlayWakesHeldRunner(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			pid := n.setupProject("play", "deploy:\n  when: manual\n  script: [echo deploying]\n")
			token := n.newRunner()
			var jobs []jobJSON
			waitFor(t, "the manual job", func() bool {
				n.api("GET", fmt.Sprintf("/projects/%d/jobs?scope=manual", pid), nil, &jobs)
				return len(jobs) == 1
			})
			held := heldRequest(t, n, token)
			if code := n.api("POST", fmt.Sprintf("/projects/%d/jobs/%d/play", pid, jobs[0].ID), map[string]any{}, nil); code != http.StatusOK {
				t.Fatalf("play: %d", code)
			}
			// A held request that is not woken ends with 204 after the long poll.
			if got := <-held; got.code != http.StatusCreated || got.id != jobs[0].ID {
				t.Fatalf("held request answered %+v, want the played job %d", got, jobs[0].ID)
			}
		})
	}
}
