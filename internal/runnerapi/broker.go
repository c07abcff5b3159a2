package runnerapi

import (
	"slices"
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
	woke  Candidate // the job the token in ch is for
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
		defer b.mu.Unlock()
		delete(b.waiters[runnerID], w)
		if len(b.waiters[runnerID]) == 0 {
			delete(b.waiters, runnerID)
		}
		if len(w.ch) > 0 {
			// Woken but gone without looking (its runner hung up, or its
			// hold ended at that instant): pass the wake-up on, or the
			// job would wait for a poll that happens to come.
			b.wake([]Candidate{w.woke})
		}
	}
}

// wakePerJob is how many matching waiters one pending job wakes. Waking
// more than one makes them race to claim the job, and on a busy database
// the losers' claims slow the winner's; a waiter that leaves without
// looking passes its wake-up on (see Subscribe), and every new poll looks
// for work first.
const wakePerJob = 1

// Notify wakes, for each job, a few waiters that can take it, and moves
// the versions of every runner that could. It returns how many it woke.
// The waking comes first and stops as soon as each job has its waiters:
// with hundreds of runners held, visiting them all (for the versions)
// would otherwise delay the very wake-up that dispatch latency is made of.
func (b *Broker) Notify(cands []Candidate) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	woken := b.wake(cands)
	for runnerID, ws := range b.waiters {
		for w := range ws {
			if slices.ContainsFunc(cands, w.match) {
				b.versions[runnerID]++
				break
			}
		}
	}
	return woken
}

// wake signals, for each job, up to wakePerJob idle waiters that can take
// it. b.mu is held.
func (b *Broker) wake(cands []Candidate) int {
	woken := 0
	var signaled map[*waiter]bool
	if len(cands) > 1 {
		signaled = map[*waiter]bool{}
	}
	for _, c := range cands {
		left := wakePerJob
	runners:
		for _, ws := range b.waiters {
			for w := range ws {
				if left == 0 {
					break runners
				}
				if signaled[w] || !w.match(c) {
					continue
				}
				select {
				case w.ch <- struct{}{}:
					w.woke = c
					if signaled != nil {
						signaled[w] = true
					}
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
