package runner

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	maskedText     = "[MASKED]"
	traceLimit     = 4 << 20 // gitlab-runner's default output_limit (4096 KB)
	traceChunkSize = 1 << 20
	maxMaskHold    = 64 << 10
)

// ---- masking ------------------------------------------------------------

// masker replaces secret values (and tokens with known prefixes) in a byte
// stream. It holds back a tail that might be the start of a secret until the
// next write or the final flush, so secrets split across writes are masked.
type masker struct {
	secrets  [][]byte // longest first
	prefixes [][]byte
	first    [256]bool
	pending  []byte
}

func newMasker(secrets, prefixes []string) *masker {
	m := &masker{}
	seen := map[string]bool{}
	add := func(s string) {
		if s == "" || seen[s] {
			return
		}
		seen[s] = true
		m.secrets = append(m.secrets, []byte(s))
		m.first[s[0]] = true
	}
	for _, s := range secrets {
		add(s)
		// gitlab-runner also masks the URL-encoded forms of values.
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
	}
	slices.SortFunc(m.secrets, func(a, b []byte) int { return len(b) - len(a) })
	for _, p := range prefixes {
		if p == "" {
			continue
		}
		m.prefixes = append(m.prefixes, []byte(p))
		m.first[p[0]] = true
	}
	slices.SortFunc(m.prefixes, func(a, b []byte) int { return len(b) - len(a) })
	return m
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// feed adds p and returns the bytes that are safe to emit. With final set,
// everything pending is emitted.
func (m *masker) feed(p []byte, final bool) []byte {
	if len(m.secrets) == 0 && len(m.prefixes) == 0 {
		if len(m.pending) == 0 {
			return p
		}
		p = append(m.pending, p...)
		m.pending = nil
		return p
	}
	buf := append(m.pending, p...)
	m.pending = nil
	out := make([]byte, 0, len(buf))
	i := 0
	force := final || len(buf) > maxMaskHold
scan:
	for i < len(buf) {
		c := buf[i]
		if !m.first[c] {
			// copy a run of uninteresting bytes at once
			j := i + 1
			for j < len(buf) && !m.first[buf[j]] {
				j++
			}
			out = append(out, buf[i:j]...)
			i = j
			continue
		}
		rest := buf[i:]
		for _, s := range m.secrets {
			if bytes.HasPrefix(rest, s) {
				out = append(out, maskedText...)
				i += len(s)
				continue scan
			}
		}
		for _, pre := range m.prefixes {
			if bytes.HasPrefix(rest, pre) {
				j := len(pre)
				for j < len(rest) && isTokenChar(rest[j]) {
					j++
				}
				if j == len(rest) && !force {
					break scan // the token may continue in the next write
				}
				out = append(out, pre...)
				if j > len(pre) {
					out = append(out, maskedText...)
				}
				i += j
				continue scan
			}
		}
		if !force {
			for _, s := range m.secrets {
				if len(rest) < len(s) && bytes.HasPrefix(s, rest) {
					break scan
				}
			}
			for _, pre := range m.prefixes {
				if len(rest) < len(pre) && bytes.HasPrefix(pre, rest) {
					break scan
				}
			}
		}
		out = append(out, c)
		i++
	}
	if i < len(buf) {
		m.pending = append([]byte(nil), buf[i:]...)
	}
	return out
}

// ---- the job log --------------------------------------------------------

// jobTrace is the job log: masked bytes exactly as they are (or will be)
// uploaded, plus the upload offset.
type jobTrace struct {
	mu       sync.Mutex
	m        *masker
	data     []byte
	limit    int
	limitHit bool
	closed   bool
	sent     int
}

func newJobTrace(m *masker) *jobTrace { return &jobTrace{m: m, limit: traceLimit} }

func (t *jobTrace) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return len(p), nil
	}
	t.appendLocked(t.m.feed(p, false))
	return len(p), nil
}

func (t *jobTrace) appendLocked(b []byte) {
	if t.limitHit || len(b) == 0 {
		return
	}
	if len(t.data)+len(b) > t.limit {
		t.data = append(t.data, b[:t.limit-len(t.data)]...)
		t.data = append(t.data, fmt.Sprintf("\n\x1b[31;1mJob's log exceeded limit of %d bytes.\nJob execution will continue but no more output will be collected.\x1b[0;m\n", t.limit)...)
		t.limitHit = true
		return
	}
	t.data = append(t.data, b...)
}

// finish flushes the masker; later writes are dropped.
func (t *jobTrace) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.appendLocked(t.m.feed(nil, true))
		t.closed = true
	}
}

// pending returns the next chunk to upload.
func (t *jobTrace) pending() (int, []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sent >= len(t.data) {
		return t.sent, nil
	}
	end := min(len(t.data), t.sent+traceChunkSize)
	return t.sent, t.data[t.sent:end:end]
}

func (t *jobTrace) setSent(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent = max(0, min(n, len(t.data)))
}

func (t *jobTrace) summary() (checksum string, size int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("crc32:%08x", crc32.ChecksumIEEE(t.data)), len(t.data)
}

// helpers that write gitlab-runner style lines

func (t *jobTrace) printf(format string, a ...any) {
	fmt.Fprintf(t, "\x1b[0K"+format+"\x1b[0;m\n", a...)
}
func (t *jobTrace) infof(format string, a ...any) {
	fmt.Fprintf(t, "\x1b[32;1m"+format+"\x1b[0;m\n", a...)
}
func (t *jobTrace) warnf(format string, a ...any) {
	fmt.Fprintf(t, "\x1b[0;33mWARNING: "+format+"\x1b[0;m\n", a...)
}
func (t *jobTrace) errorf(format string, a ...any) {
	fmt.Fprintf(t, "\x1b[31;1mERROR: "+format+"\x1b[0;m\n", a...)
}
func (t *jobTrace) sectionStart(name, header string) {
	fmt.Fprintf(t, "section_start:%d:%s\r\x1b[0K\x1b[0K\x1b[36;1m%s\x1b[0;m\x1b[0;m\n", time.Now().Unix(), name, header)
}
func (t *jobTrace) sectionEnd(name string) {
	fmt.Fprintf(t, "section_end:%d:%s\r\x1b[0K\x1b[0K", time.Now().Unix(), name)
}

// ---- upload -------------------------------------------------------------

type patchResult int

const (
	patchOK patchResult = iota
	patchRangeMismatch
	patchNotFound
	patchForbidden
	patchError
)

// patchTrace sends one PATCH with the next chunk. It returns what happened
// and the Job-Status header.
func (j *job) patchTrace(ctx context.Context) (patchResult, string, bool) {
	start, chunk := j.trace.pending()
	if len(chunk) == 0 {
		return patchOK, "", false
	}
	u := j.r.apiURL(fmt.Sprintf("jobs/%d/trace", j.p.ID)) + "?debug_trace=" + strconv.FormatBool(j.debugTrace)
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPatch, u, bytes.NewReader(chunk))
	if err != nil {
		return patchError, "", true
	}
	req.Header.Set("JOB-TOKEN", j.p.Token)
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", start, start+len(chunk)-1))
	req.Header.Set("User-Agent", j.r.userAgent())
	resp, err := j.r.client.Do(req)
	if err != nil {
		j.r.log.Warn("runner: trace patch failed", "job", j.p.ID, "err", err)
		return patchError, "", true
	}
	resp.Body.Close()
	status := resp.Header.Get("Job-Status")
	if d := parseInterval(resp.Header); d > 0 {
		j.setInterval(d)
	}
	switch resp.StatusCode {
	case http.StatusAccepted:
		j.trace.setSent(start + len(chunk))
		j.touched()
		return patchOK, status, true
	case http.StatusRequestedRangeNotSatisfiable:
		rng := resp.Header.Get("Range")
		if i := strings.LastIndexByte(rng, '-'); i >= 0 {
			if n, err := strconv.Atoi(strings.TrimSpace(rng[i+1:])); err == nil {
				j.trace.setSent(n)
			}
		}
		j.r.log.Info("runner: trace range mismatch; resyncing", "job", j.p.ID, "range", rng)
		return patchRangeMismatch, status, true
	case http.StatusNotFound:
		return patchNotFound, status, true
	case http.StatusForbidden:
		return patchForbidden, status, true
	default:
		j.r.log.Warn("runner: trace patch rejected", "job", j.p.ID, "status", resp.StatusCode)
		return patchError, status, true
	}
}

// traceLoop streams the log incrementally and sends keep-alive PUTs until
// stop is closed.
func (j *job) traceLoop(ctx context.Context, stop <-chan struct{}) {
	for {
		t := time.NewTimer(j.interval())
		select {
		case <-stop:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !j.traceDisabled.Load() {
			res, status, sent := j.patchTrace(ctx)
			if sent {
				j.handleRemoteStatus(status, res == patchForbidden)
				if res == patchNotFound {
					j.r.log.Warn("runner: server does not know the trace; not sending it any more", "job", j.p.ID)
					j.traceDisabled.Store(true)
				}
			}
		}
		if j.sinceTouch() >= j.r.forceSendInterval {
			status, code := j.putState(ctx, "running", "", 0)
			j.handleRemoteStatus(status, code == http.StatusForbidden || code == http.StatusNotFound)
		}
	}
}

// flushTrace uploads everything not yet accepted.
func (j *job) flushTrace(ctx context.Context) {
	if j.traceDisabled.Load() {
		return
	}
	failures := 0
	for ctx.Err() == nil {
		res, _, sent := j.patchTrace(ctx)
		if !sent {
			return
		}
		switch res {
		case patchOK:
			failures = 0
			continue
		case patchNotFound, patchForbidden:
			j.r.log.Warn("runner: final trace upload refused", "job", j.p.ID, "result", res)
			return
		}
		failures++
		if failures > 10 {
			j.r.log.Error("runner: giving up uploading the trace", "job", j.p.ID)
			return
		}
		wait := j.interval()
		if res == patchError {
			wait = min(j.r.retryBase<<min(failures-1, 5), 30*time.Second)
		}
		sleepCtx(ctx, wait)
	}
}

// putState sends PUT /jobs/:id. It returns Job-Status and the HTTP status (0 on transport errors).
func (j *job) putState(ctx context.Context, state, reason string, exitCode int) (string, int) {
	sum, size := j.trace.summary()
	body := updateJobRequest{
		Info: j.r.info(), Token: j.p.Token, State: state, FailureReason: reason, ExitCode: exitCode,
		Checksum: sum, Output: &traceOutput{Checksum: sum, Bytesize: size},
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	resp, data, err := j.r.doJSON(rctx, http.MethodPut, fmt.Sprintf("jobs/%d", j.p.ID), j.p.Token, body)
	if err != nil {
		j.r.log.Warn("runner: job update failed", "job", j.p.ID, "state", state, "err", err)
		return "", 0
	}
	if d := parseInterval(resp.Header); d > 0 {
		j.setInterval(d)
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted {
		j.touched()
	} else {
		j.r.log.Warn("runner: job update rejected", "job", j.p.ID, "state", state, "status", resp.StatusCode, "message", errorMessage(data))
	}
	return resp.Header.Get("Job-Status"), resp.StatusCode
}
