package runnerapi

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

type runnerInfo struct {
	Name         string         `json:"name"`
	Version      string         `json:"version"`
	Revision     string         `json:"revision"`
	Platform     string         `json:"platform"`
	Architecture string         `json:"architecture"`
	Executor     string         `json:"executor"`
	Shell        string         `json:"shell"`
	Features     map[string]any `json:"features"`
}

type requestBody struct {
	Token      string     `json:"token"`
	SystemID   string     `json:"system_id"`
	LastUpdate string     `json:"last_update"`
	Info       runnerInfo `json:"info"`
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// manager returns the runner manager for system_id, creating it on first
// contact; later calls are answered from memory.
func (a *API) manager(ctx context.Context, r *ci.Runner, systemID string, info runnerInfo, ip string) (int64, error) {
	if systemID == "" {
		return 0, nil
	}
	key := string(r.Type) + ":" + systemID + ":" + itoa(r.ID) + ":" + info.Version
	a.mu.Lock()
	id, ok := a.managers[key]
	a.mu.Unlock()
	if ok {
		return id, nil
	}
	now := a.now()
	m, err := a.store.UpsertRunnerManager(ctx, ci.RunnerManager{RunnerID: r.ID, SystemID: systemID, Version: strp(info.Version), Revision: strp(info.Revision),
		Platform: strp(info.Platform), Architecture: strp(info.Architecture), IPAddress: strp(ip), CreatedAt: now, ContactedAt: &now})
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	if len(a.managers) > 100000 {
		a.managers = map[string]int64{}
	}
	a.managers[key] = m.ID
	a.mu.Unlock()
	return m.ID, nil
}

// POST /jobs/request: hand the runner a job, or hold the request until a
// job it can take becomes pending (long poll), then answer 204.
func (a *API) handleRequest(w http.ResponseWriter, r *http.Request) error {
	var body requestBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	ctx := r.Context()
	runner, err := a.authRunner(ctx, runnerToken(r, body.Token))
	if err != nil {
		return err
	}
	managerID, err := a.manager(ctx, runner, body.SystemID, body.Info, clientIP(r))
	if err != nil {
		return err
	}
	a.touch(ctx, runner.ID, managerID)
	s, err := a.loadScope(ctx, runner)
	if err != nil {
		return err
	}
	// Subscribe before looking, so a job that becomes pending in between
	// still wakes this request.
	wake, cancel := a.broker.Subscribe(runner.ID, s.canTake)
	defer cancel()
	deadline := time.NewTimer(a.cfg.LongPoll + time.Duration(rand.Int64N(int64(a.cfg.LongPoll/10)+1)))
	defer deadline.Stop()
	hold := body.LastUpdate != "" // first polls are answered at once, as GitLab does
	var recheck <-chan time.Time
	if a.cfg.Recheck > 0 {
		t := time.NewTicker(a.cfg.Recheck)
		defer t.Stop()
		recheck = t.C
	}
	for {
		claimed := a.takeUndelivered(runner.ID)
		if claimed == nil {
			if claimed, err = a.claim(ctx, s, managerID); err != nil {
				return err
			}
		}
		if claimed != nil {
			payload, err := a.payload(ctx, claimed, runner)
			var body []byte
			if err == nil {
				body, err = payload.appendJSON(make([]byte, 0, 8<<10))
			}
			if err != nil {
				// The job is the runner's already: keep it for its retry
				// rather than leave it running with nobody on it.
				a.keepUndelivered(runner.ID, claimed)
				return err
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write(body)
			return nil
		}
		if !hold || runner.Paused {
			break
		}
		select {
		case <-wake:
			continue
		case <-recheck:
			continue
		case <-deadline.C:
		case <-ctx.Done():
			return nil
		}
		break
	}
	w.Header().Set("X-GitLab-Last-Update", a.broker.Version(runner.ID))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	for i := len(host) - 1; i >= 0; i-- {
		if host[i] == ':' {
			return host[:i]
		}
	}
	return host
}

// claimedJob is what the store's claim returned, with the job's plain token.
type claimedJob struct {
	store.Claimed
	token string
}

// maxUndelivered bounds the jobs kept per runner; past it the watchdog
// fails the rest.
const maxUndelivered = 16

func (a *API) keepUndelivered(runnerID int64, c *claimedJob) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.undelivered[runnerID]) < maxUndelivered {
		a.undelivered[runnerID] = append(a.undelivered[runnerID], c)
	}
}

func (a *API) takeUndelivered(runnerID int64) *claimedJob {
	a.mu.Lock()
	defer a.mu.Unlock()
	list := a.undelivered[runnerID]
	if len(list) == 0 {
		return nil
	}
	c := list[0]
	if len(list) == 1 {
		delete(a.undelivered, runnerID)
	} else {
		a.undelivered[runnerID] = list[1:]
	}
	return c
}
