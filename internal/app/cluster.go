package app

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"gantry/internal/joblog"
	"gantry/internal/pgnotify"
	"gantry/internal/runnerapi"
)

// Payloads nodes exchange: "j:<projectID>:<jobID>,<jobID>..." for jobs that
// became pending, "l:<jobID>" for a job's log that changed, "a:" for a
// job that ended (its log is to be archived by the archive lease's holder),
// "s:<projectID>" for a project with new status events.
const (
	jobsPendingPrefix   = "j:"
	logChangedPrefix    = "l:"
	archiveWanted       = "a:"
	eventsChangedPrefix = "s:"
)

// jobsPerPayload keeps a pending-jobs payload near 1 KB, well under the
// notification limit; longer lists go out in several.
const jobsPerPayload = 50

// publishTimeout bounds one notification; the other nodes have fallbacks
// if it gives up.
const publishTimeout = 2 * time.Second

// outboxSize is how many wake-ups may wait to be sent; past it they are
// dropped (counted in the log), and the fallbacks cover them.
const outboxSize = 4096

// payloadBudget keeps a batched notification under pgnotify.MaxPayload
// with room for the node id.
const payloadBudget = 6000

// cluster relays this node's wake-ups to the other nodes sharing its
// PostgreSQL database, and theirs to this node's waiters. Sending is off
// the request path: wake-ups queue in an outbox that one goroutine drains,
// dropping duplicates and packing several into one notification (one
// item per line), so a busy node sends few notifications and no request
// waits on one.
type cluster struct {
	events    *pgnotify.Notifier
	log       *slog.Logger
	outbox    chan string
	stop      chan struct{}
	done      chan struct{}
	started   bool
	closeOnce sync.Once
}

func newCluster(events *pgnotify.Notifier, log *slog.Logger) *cluster {
	return &cluster{events: events, log: log, outbox: make(chan string, outboxSize), stop: make(chan struct{}), done: make(chan struct{})}
}

func (c *cluster) publish(item string) {
	select {
	case c.outbox <- item:
	default:
		c.log.Warn("notify other nodes: outbox full, wake-up dropped", "item", item)
	}
}

// start runs the sender until close.
func (c *cluster) start() {
	c.started = true
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.stop:
				return
			case first := <-c.outbox:
				c.send(c.drain(first))
			}
		}
	}()
}

// close stops the sender (safe to call twice); wake-ups still queued are
// dropped.
func (c *cluster) close() {
	c.closeOnce.Do(func() {
		close(c.stop)
		if c.started { // an app closed without starting has no sender
			<-c.done
		}
	})
}

// drain takes first and whatever else is queued, without duplicates.
func (c *cluster) drain(first string) []string {
	items, seen := []string{first}, map[string]bool{first: true}
	for {
		select {
		case it := <-c.outbox:
			if !seen[it] {
				seen[it] = true
				items = append(items, it)
			}
		default:
			return items
		}
	}
}

// send publishes items, packed.
func (c *cluster) send(items []string) {
	pack(items, func(payload string) {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		defer cancel()
		if err := c.events.Publish(ctx, payload); err != nil {
			c.log.Warn("notify other nodes", "err", err)
		}
	})
}

// pack joins items one per line into as few payloads of at most
// payloadBudget bytes as fit, and hands each to emit.
func pack(items []string, emit func(payload string)) {
	var b strings.Builder
	for _, it := range items {
		if b.Len() > 0 && b.Len()+1+len(it) > payloadBudget {
			emit(b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(it)
	}
	if b.Len() > 0 {
		emit(b.String())
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

// jobEnded tells the other nodes a log awaits archiving; only the node
// holding the archive lease acts on it.
func (c *cluster) jobEnded() { c.publish(archiveWanted) }

// eventsChanged tells the other nodes' event streams of the project.
func (c *cluster) eventsChanged(projectID int64) {
	c.publish(eventsChangedPrefix + strconv.FormatInt(projectID, 10))
}

// receive acts on another node's payload with this node's hubs.
func (c *cluster) receive(runners *runnerapi.API, logHub, eventHub *joblog.Hub, archiver *joblog.Archiver) func(payload string) {
	return func(payload string) {
		for item := range strings.SplitSeq(payload, "\n") {
			c.receiveItem(runners, logHub, eventHub, archiver, item)
		}
	}
}

// receiveItem acts on one wake-up of another node's notification.
func (c *cluster) receiveItem(runners *runnerapi.API, logHub, eventHub *joblog.Hub, archiver *joblog.Archiver, item string) {
	switch {
	case item == archiveWanted:
		archiver.Wake()
	case strings.HasPrefix(item, jobsPendingPrefix):
		projectID, jobIDs, ok := parseJobsPending(item[len(jobsPendingPrefix):])
		if ok {
			// The jobs are read back from the shared store to match
			// them against this node's waiters.
			runners.JobsPending(projectID, jobIDs)
		}
	case strings.HasPrefix(item, logChangedPrefix):
		if jobID, err := strconv.ParseInt(item[len(logChangedPrefix):], 10, 64); err == nil {
			logHub.Publish(jobID)
		}
	case strings.HasPrefix(item, eventsChangedPrefix):
		if projectID, err := strconv.ParseInt(item[len(eventsChangedPrefix):], 10, 64); err == nil {
			eventHub.Publish(projectID)
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
