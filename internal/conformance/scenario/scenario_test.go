package scenario_test

import (
	"testing"
	"time"

	"gantry/internal/conformance/scenario"
	"gantry/internal/testenv"
)

// TestBuild builds the scenario on every store; Build itself fails the
// test when anything came out other than designed.
func TestBuild(t *testing.T) {
	bin := scenario.Binary(t)
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			start := time.Now()
			d := scenario.Build(t, b, bin)
			t.Logf("scenario on %s built in %v: pipeline %d, child %d, %d builds", b.Name, time.Since(start).Round(time.Millisecond),
				d.PipelineID, d.ChildPipelineID, len(d.ProjectBuildIDs))
		})
	}
}
