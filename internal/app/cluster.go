package app

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"gantry/internal/joblog"
	"gantry/internal/pgnotify"
	"gantry/internal/runnerapi"
)

// Payloads nodes exchange: "j:<projectID>:<jobID>,<jobID>..." for jobs that
// became pending, "l:<jobID>" for a job's log that changed.
const (
	jobsPendingPrefix = "j:"
	logChangedPrefix  = "l:"
)

// jobsPerPayload keeps a pending-jobs payload near 1 KB, well under the
// notification limit; longer lists go out in several.
const jobsPerPayload = 50

// publishTimeout bounds how long a request waits to tell the other nodes;
// they have fallbacks if it gives up.
const publishTimeout = 2 * time.Second

// cluster relays this node's wake-ups to the other nodes sharing its
// PostgreSQL database, and theirs to this node's waiters.
type cluster struct {
	events *pgnotify.Notifier
	log    *slog.Logger
}

func (c *cluster) publish(payload string) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := c.events.Publish(ctx, payload); err != nil {
		c.log.Warn("notify other nodes", "payload", payload, "err", err)
	}
}

// jobsPending tells the other nodes' waiting runners about jobIDs.
func (c *cluster) jobsPending(projectID int64, jobIDs []int64) {
	for len(jobIDs) > 0 {
		n := min(len(jobIDs), jobsPerPayload)
		var b strings.Builder
		b.WriteString(jobsPendingPrefix + strconv.FormatInt(projectID, 10) + ":")
		for i, id := range jobIDs[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(id, 10))
		}
		c.publish(b.String())
		jobIDs = jobIDs[n:]
	}
}

// logChanged tells the other nodes' followers of the job's log.
func (c *cluster) logChanged(jobID int64) {
	c.publish(logChangedPrefix + strconv.FormatInt(jobID, 10))
}

// receive acts on another node's payload with this node's hubs.
func (c *cluster) receive(runners *runnerapi.API, logHub *joblog.Hub) func(payload string) {
	return func(payload string) {
		switch {
		case strings.HasPrefix(payload, jobsPendingPrefix):
			projectID, jobIDs, ok := parseJobsPending(payload[len(jobsPendingPrefix):])
			if ok {
				// The jobs are read back from the shared store to match
				// them against this node's waiters.
				runners.JobsPending(projectID, jobIDs)
			}
		case strings.HasPrefix(payload, logChangedPrefix):
			if jobID, err := strconv.ParseInt(payload[len(logChangedPrefix):], 10, 64); err == nil {
				logHub.Publish(jobID)
			}
		}
	}
}

func parseJobsPending(s string) (int64, []int64, bool) {
	project, list, ok := strings.Cut(s, ":")
	if !ok {
		return 0, nil, false
	}
	projectID, err := strconv.ParseInt(project, 10, 64)
	if err != nil {
		return 0, nil, false
	}
	var jobIDs []int64
	for f := range strings.SplitSeq(list, ",") {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, nil, false
		}
		jobIDs = append(jobIDs, id)
	}
	return projectID, jobIDs, len(jobIDs) > 0
}
