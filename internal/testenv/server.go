package testenv

import (
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"gantry/internal/httpapi"
)

// Server is a seeded gantry API on a real loopback port.
type Server struct {
	URL     string // base URL, no trailing slash; also the external URL
	Fixture *Fixture
}

// StartServer seeds a fresh store from b and serves the API on 127.0.0.1.
// The server's clock is fixed at T0, and its external URL is its own
// address, so Link headers are followable by real clients.
func StartServer(t testing.TB, b Backend) *Server {
	t.Helper()
	st := b.Open(t)
	fx := Seed(t, st)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	api := httpapi.New(httpapi.Config{ExternalURL: base, Version: "17.9.3"}, httpapi.Deps{Store: st, Now: func() time.Time { return T0 }})
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &Server{URL: base, Fixture: fx}
}

// FixtureJSON describes the fixture for harnesses in other languages.
func (s *Server) FixtureJSON() []byte {
	f := s.Fixture
	statusIDs := map[string]int64{}
	for st, j := range f.JobsByStatus {
		statusIDs[string(st)] = j.ID
	}
	all := make([]int64, len(f.AllBuilds))
	allStatus := make([]string, len(f.AllBuilds))
	for i, j := range f.AllBuilds {
		all[i], allStatus[i] = j.ID, string(j.Status)
	}
	b, _ := json.MarshalIndent(map[string]any{
		"url": s.URL, "tokens": f.Tokens, "job_token": f.JobToken, "other_job_token": f.OtherJobToken,
		"finished_job_token": f.FinishedJobToken,
		"project_id":         f.Project.ID, "project_path": f.Project.FullPath, "other_project_id": f.Other.ID,
		"pipeline_id": f.Pipeline.ID, "downstream_pipeline_id": f.Downstream.ID, "bridge_id": f.Bridge.ID,
		"retried_old_id": f.RetriedOld.ID, "retried_new_id": f.RetriedNew.ID, "tag_job_id": f.TagJob.ID,
		"other_job_id": f.OtherJob.ID, "jobs_by_status": statusIDs, "all_build_ids": all, "all_build_statuses": allStatus,
		"trace": string(f.Trace),
	}, "", "  ")
	return b
}
