package joblog

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"gantry/internal/ci"
)

// Hub tells live followers of a job's log that something changed: bytes
// were appended or the job ended. It only reaches followers on this node;
// followers also poll for the others.
type Hub struct {
	mu        sync.Mutex
	followers map[int64]map[chan struct{}]struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

// NewHub creates a hub with no followers.
func NewHub() *Hub {
	return &Hub{followers: map[int64]map[chan struct{}]struct{}{}, closed: make(chan struct{})}
}

// Subscribe returns a channel signalled on every change of the job's log,
// and the function that unsubscribes.
func (h *Hub) Subscribe(jobID int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.followers[jobID] == nil {
		h.followers[jobID] = map[chan struct{}]struct{}{}
	}
	h.followers[jobID][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.followers[jobID], ch)
		if len(h.followers[jobID]) == 0 {
			delete(h.followers, jobID)
		}
		h.mu.Unlock()
	}
}

// Followers counts the streams following the job's log.
func (h *Hub) Followers(jobID int64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.followers[jobID])
}

// Publish wakes the job's followers; it never blocks.
func (h *Hub) Publish(jobID int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.followers[jobID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Close ends every follow stream (the server is stopping).
func (h *Hub) Close() { h.closeOnce.Do(func() { close(h.closed) }) }

// Done is closed by Close.
func (h *Hub) Done() <-chan struct{} { return h.closed }

// Follow streams a job's log as server-sent events.
type Follow struct {
	Reader *Reader
	Hub    *Hub
	// Status reads the job's current status.
	Status func(ctx context.Context) (ci.JobStatus, error)
	// Poll is how often it looks for changes the hub did not announce.
	Poll time.Duration
}

// maxEventBytes bounds one event's data, so memory stays flat however much
// log is pending.
const maxEventBytes = 64 << 10

// Serve streams from byte offset from: each event's id is the offset after
// its data. It ends with an "end" event once the job is over and every byte
// was sent, or when the client goes away or the hub closes.
func (f *Follow) Serve(ctx context.Context, w http.ResponseWriter, jobID, from int64) error {
	changed, unsubscribe := f.Hub.Subscribe(jobID)
	defer unsubscribe()
	poll := f.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return err
	}
	var buf bytes.Buffer
	for {
		// The status is read before the log: a job seen ended has no
		// bytes still to come beyond the size read next.
		status, err := f.Status(ctx)
		if err != nil {
			return err
		}
		ended := status.Completed()
		log, err := f.Reader.Open(ctx, jobID)
		if err != nil {
			return err
		}
		for from < log.Size() {
			buf.Reset()
			if _, err := log.CopyRange(ctx, &buf, from, min(from+maxEventBytes, log.Size())); err != nil {
				log.Close()
				return err
			}
			data := buf.Bytes()
			if !ended || from+int64(len(data)) < log.Size() {
				data = data[:completePrefix(data)]
			}
			if len(data) == 0 {
				break // an incomplete character or line break: wait for the rest
			}
			from += int64(len(data))
			writeEvent(w, "", from, data)
		}
		size := log.Size()
		log.Close()
		if ended && from >= size {
			writeEvent(w, "end", from, nil)
			return rc.Flush()
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-f.Hub.closed:
			return nil
		case <-changed:
		case <-ticker.C:
		}
	}
}

// completePrefix is how much of data can be sent now: it holds back a
// trailing partial UTF-8 character (split across events it would decode
// as garbage) and a trailing CR (it may start a CRLF).
func completePrefix(data []byte) int {
	n := len(data)
	if n > 0 && data[n-1] == '\r' {
		n--
	}
	for i := 1; i <= utf8.UTFMax-1 && i <= n; i++ {
		c := data[n-i]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(data[n-i : n]) {
				n -= i
			}
			break
		}
	}
	return n
}

// writeEvent writes one event. SSE ends a line at CR, LF or CRLF and
// cannot carry a bare CR, so each of those becomes a new data line (the
// client joins them with LF); the id still counts the raw bytes, and the
// plain endpoint serves them exactly.
func writeEvent(w http.ResponseWriter, event string, id int64, data []byte) {
	var b bytes.Buffer
	if event != "" {
		b.WriteString("event: " + event + "\n")
	}
	b.WriteString("id: " + strconv.FormatInt(id, 10) + "\n")
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b.WriteString("data: ")
		b.Write(data[:i])
		b.WriteByte('\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	_, _ = w.Write(b.Bytes())
}
