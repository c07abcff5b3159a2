package runnerapi

import (
	"strconv"
	"sync"
	"time"
)

// Broker wakes long-polling runners when a job they can take becomes
// pending. It keeps one version per runner (sent as X-GitLab-Last-Update)
// and signals only the waiters whose runner matches the job.
type Broker struct {
	mu       sync.Mutex
	epoch    string // distinguishes versions across restarts
	versions map[int64]uint64
	waiters  map[int64]map[*waiter]struct{}
}

type waiter struct {
	match func(c Candidate) bool
	ch    chan struct{}
}

// Candidate is a job that became pending, as matching needs it.
type Candidate struct {
	ProjectID int64
	Chain     []int64 // the project's namespace and its ancestors
	Tags      []string
	Protected bool
}

// NewBroker creates an empty broker.
func NewBroker() *Broker {
	return &Broker{epoch: strconv.FormatInt(time.Now().UnixNano(), 36), versions: map[int64]uint64{}, waiters: map[int64]map[*waiter]struct{}{}}
}

// Version is the runner's current queue version.
func (b *Broker) Version(runnerID int64) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.epoch + "-" + strconv.FormatUint(b.versions[runnerID], 10)
}

// Subscribe registers a waiter for a runner; cancel removes it.
func (b *Broker) Subscribe(runnerID int64, match func(Candidate) bool) (<-chan struct{}, func()) {
	w := &waiter{match: match, ch: make(chan struct{}, 1)}
	b.mu.Lock()
	if b.waiters[runnerID] == nil {
		b.waiters[runnerID] = map[*waiter]struct{}{}
	}
	b.waiters[runnerID][w] = struct{}{}
	b.mu.Unlock()
	return w.ch, func() {
		b.mu.Lock()
		delete(b.waiters[runnerID], w)
		if len(b.waiters[runnerID]) == 0 {
			delete(b.waiters, runnerID)
		}
		b.mu.Unlock()
	}
}

// wakePerJob is how many matching waiters one pending job wakes. Waking
// every matching runner would make them all race to claim one job (a
// thundering herd); a few suffice, since a woken runner that loses the race
// simply waits again, and every new poll looks for work first.
const wakePerJob = 3

// Notify wakes, for each job, a few waiters that can take it, and moves
// the versions of every runner that could. It returns how many it woke.
func (b *Broker) Notify(cands []Candidate) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	woken := 0
	signaled := map[*waiter]bool{}
	for _, c := range cands {
		left := wakePerJob
		for runnerID, ws := range b.waiters {
			bumped := false
			for w := range ws {
				if !w.match(c) {
					continue
				}
				if !bumped {
					b.versions[runnerID]++
					bumped = true
				}
				if left == 0 || signaled[w] {
					continue
				}
				select {
				case w.ch <- struct{}{}:
					signaled[w] = true
					woken++
					left--
				default:
				}
			}
		}
	}
	return woken
}

// WakeAll wakes every held long poll once, so each looks for work again
// (after wake-ups may have been lost), and moves every runner's version.
func (b *Broker) WakeAll() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	woken := 0
	for runnerID, ws := range b.waiters {
		b.versions[runnerID]++
		for w := range ws {
			select {
			case w.ch <- struct{}{}:
				woken++
			default:
			}
		}
	}
	return woken
}

// Waiting is the number of long-polls being held.
func (b *Broker) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, ws := range b.waiters {
		n += len(ws)
	}
	return n
}
