// Package blobtest is the conformance suite every blob.Store adapter
// passes: the same cases, run against real storage.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"gantry/internal/blob"
)

// Subject is one fresh, empty store under test.
type Subject struct {
	Store blob.Store
	// Contents lists everything the backend holds (files, objects,
	// unfinished uploads), so a refused Put can be seen to leave nothing.
	Contents func() ([]string, error)
}

// Run runs the suite; fresh returns a new empty store for each case.
func Run(t *testing.T, fresh func(t *testing.T) Subject) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, s Subject)
	}{
		{"PutOpenRead", func(t *testing.T, s Subject) {
			put(t, s.Store, "a/b/c.zip", "hello", 0)
			expectBlob(t, s.Store, "a/b/c.zip", "hello")
		}},
		{"Seek", func(t *testing.T, s Subject) { testSeek(t, s.Store) }},
		{"Overwrite", func(t *testing.T, s Subject) {
			put(t, s.Store, "k", "first version, longer", 0)
			put(t, s.Store, "k", "second", 0)
			expectBlob(t, s.Store, "k", "second")
			expectContents(t, s, "k")
		}},
		{"Delete", func(t *testing.T, s Subject) {
			put(t, s.Store, "d/x", "x", 0)
			if err := s.Store.Delete(ctx, "d/x"); err != nil {
				t.Fatal(err)
			}
			expectMissing(t, s.Store, "d/x")
			// Deleting what is not there succeeds: callers retry deletes.
			if err := s.Store.Delete(ctx, "d/x"); err != nil {
				t.Fatalf("second delete: %v", err)
			}
			if err := s.Store.Delete(ctx, "never/was"); err != nil {
				t.Fatalf("delete of a missing key: %v", err)
			}
		}},
		{"NotFound", func(t *testing.T, s Subject) { expectMissing(t, s.Store, "no/such/key") }},
		{"Empty", func(t *testing.T, s Subject) {
			put(t, s.Store, "empty", "", 0)
			expectBlob(t, s.Store, "empty", "")
			put(t, s.Store, "empty-limited", "", 1)
			expectBlob(t, s.Store, "empty-limited", "")
		}},
		{"Limit", func(t *testing.T, s Subject) {
			put(t, s.Store, "exact", "0123", 4)
			expectBlob(t, s.Store, "exact", "0123")
			if _, err := s.Store.Put(ctx, "over", strings.NewReader("01234"), 4); !errors.Is(err, blob.ErrTooLarge) {
				t.Fatalf("one byte past the limit: %v", err)
			}
			expectMissing(t, s.Store, "over")
			// A refused overwrite keeps the previous blob.
			if _, err := s.Store.Put(ctx, "exact", strings.NewReader("abcde"), 4); !errors.Is(err, blob.ErrTooLarge) {
				t.Fatalf("refused overwrite: %v", err)
			}
			expectBlob(t, s.Store, "exact", "0123")
			expectContents(t, s, "exact")
		}},
		{"LimitLarge", func(t *testing.T, s Subject) {
			// Past any single-request size (S3 uploads this in parts).
			const limit = 12<<20 + 3
			if n, err := s.Store.Put(ctx, "at", Pattern(0, limit), limit); err != nil || n != limit {
				t.Fatalf("at the limit: %d %v", n, err)
			}
			expectPattern(t, s.Store, "at", 0, limit)
			if _, err := s.Store.Put(ctx, "past", Pattern(0, limit+1), limit); !errors.Is(err, blob.ErrTooLarge) {
				t.Fatalf("one byte past the limit: %v", err)
			}
			expectMissing(t, s.Store, "past")
			expectContents(t, s, "at")
		}},
		{"Large", func(t *testing.T, s Subject) {
			const size = 20 << 20
			if n, err := s.Store.Put(ctx, "large/object", Pattern(7, size), 0); err != nil || n != size {
				t.Fatalf("put: %d %v", n, err)
			}
			expectPattern(t, s.Store, "large/object", 7, size)
			r, _, err := s.Store.Open(ctx, "large/object")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// A range straddling the first part boundary of any part size
			// from 5 to 16 MiB.
			for _, off := range []int64{5<<20 - 100, 8<<20 - 100, 16<<20 - 100, size - 100} {
				expectRange(t, r, off, patternBytes(7+off, 100))
			}
		}},
		{"InvalidKeys", func(t *testing.T, s Subject) {
			for _, bad := range []string{"", "../x", "/abs", "a/../../x", "a/..", "a//b", "a/./b", "./a", "a/", ".."} {
				if _, err := s.Store.Put(ctx, bad, strings.NewReader("x"), 0); !errors.Is(err, blob.ErrInvalidKey) {
					t.Errorf("Put(%q): %v", bad, err)
				}
				if _, _, err := s.Store.Open(ctx, bad); !errors.Is(err, blob.ErrInvalidKey) {
					t.Errorf("Open(%q): %v", bad, err)
				}
				if err := s.Store.Delete(ctx, bad); !errors.Is(err, blob.ErrInvalidKey) {
					t.Errorf("Delete(%q): %v", bad, err)
				}
			}
			expectContents(t, s)
		}},
		{"ConcurrentPuts", func(t *testing.T, s Subject) {
			const writers, size = 8, 300 << 10
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := fmt.Sprintf("concurrent/%d", i)
					if n, err := s.Store.Put(ctx, key, Pattern(int64(i)*1000, size), 0); err != nil || n != size {
						errs <- fmt.Errorf("%s: %d %v", key, n, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			for i := range writers {
				expectPattern(t, s.Store, fmt.Sprintf("concurrent/%d", i), int64(i)*1000, size)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, fresh(t)) })
	}
}

func testSeek(t *testing.T, st blob.Store) {
	const size = 100_000
	want := patternBytes(0, size)
	put(t, st, "seek", string(want), 0)
	r, n, err := st.Open(context.Background(), "seek")
	if err != nil || n != size {
		t.Fatal(n, err)
	}
	defer r.Close()
	// A partial read, then seeks that must drop what was buffered.
	expectRange(t, r, 0, want[:10])
	expectRange(t, r, 50_000, want[50_000:51_000])
	expectRange(t, r, size-22, want[size-22:])
	expectRange(t, r, 0, want[:1])
	if pos, err := r.Seek(10, io.SeekCurrent); err != nil || pos != 11 {
		t.Fatalf("seek current: %d %v", pos, err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(r, buf); err != nil || !bytes.Equal(buf, want[11:16]) {
		t.Fatalf("after seek current: %q %v", buf, err)
	}
	if pos, err := r.Seek(-4, io.SeekEnd); err != nil || pos != size-4 {
		t.Fatalf("seek end: %d %v", pos, err)
	}
	if rest, err := io.ReadAll(r); err != nil || !bytes.Equal(rest, want[size-4:]) {
		t.Fatalf("tail: %q %v", rest, err)
	}
	if k, err := r.Read(buf); k != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d %v", k, err)
	}
	if pos, err := r.Seek(0, io.SeekEnd); err != nil || pos != size {
		t.Fatalf("seek to the end: %d %v", pos, err)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("seek before the start accepted")
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if all, err := io.ReadAll(r); err != nil || !bytes.Equal(all, want) {
		t.Fatalf("whole after seeking back: %d bytes, %v", len(all), err)
	}
	ra, ok := r.(io.ReaderAt)
	if !ok {
		t.Fatalf("%T is not an io.ReaderAt", r)
	}
	at := make([]byte, 300)
	if k, err := ra.ReadAt(at, 40_000); k != 300 || err != nil || !bytes.Equal(at, want[40_000:40_300]) {
		t.Fatalf("ReadAt in the middle: %d %v", k, err)
	}
	if k, err := ra.ReadAt(at, size-100); k != 100 || err != io.EOF || !bytes.Equal(at[:100], want[size-100:]) {
		t.Fatalf("ReadAt across the end: %d %v", k, err)
	}
	if k, err := ra.ReadAt(at, size); k != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end: %d %v", k, err)
	}
}

func put(t *testing.T, st blob.Store, key, body string, limit int64) {
	t.Helper()
	n, err := st.Put(context.Background(), key, strings.NewReader(body), limit)
	if err != nil || n != int64(len(body)) {
		t.Fatalf("Put(%q): %d %v", key, n, err)
	}
}

func expectBlob(t *testing.T, st blob.Store, key, want string) {
	t.Helper()
	r, size, err := st.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != want || size != int64(len(want)) {
		t.Fatalf("%q: size %d, %q, %v; want %q", key, size, got, err, want)
	}
}

func expectMissing(t *testing.T, st blob.Store, key string) {
	t.Helper()
	if r, _, err := st.Open(context.Background(), key); !errors.Is(err, blob.ErrNotFound) {
		if err == nil {
			r.Close()
		}
		t.Fatalf("Open(%q): %v, want ErrNotFound", key, err)
	}
}

// expectContents checks the backend holds exactly keys and nothing else:
// no temporary files, no unfinished uploads.
func expectContents(t *testing.T, s Subject, keys ...string) {
	t.Helper()
	got, err := s.Contents()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != strings.Join(keys, "\n") {
		t.Fatalf("backend holds %q, want %q", got, keys)
	}
}

// expectPattern compares a blob with Pattern(start, size) by digest, so
// neither side is held in memory.
func expectPattern(t *testing.T, st blob.Store, key string, start, size int64) {
	t.Helper()
	r, n, err := st.Open(context.Background(), key)
	if err != nil || n != size {
		t.Fatalf("Open(%q): %d %v", key, n, err)
	}
	defer r.Close()
	got, want := sha256.New(), sha256.New()
	if k, err := io.Copy(got, r); err != nil || k != size {
		t.Fatalf("read %q: %d %v", key, k, err)
	}
	_, _ = io.Copy(want, Pattern(start, size))
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("%q differs from what was written", key)
	}
}

func expectRange(t *testing.T, r io.ReadSeeker, off int64, want []byte) {
	t.Helper()
	if pos, err := r.Seek(off, io.SeekStart); err != nil || pos != off {
		t.Fatalf("seek %d: %d %v", off, pos, err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("at %d: %v", off, err)
	}
}

// Pattern streams size bytes of a position-dependent sequence starting at
// position start, without holding them: large objects are generated.
func Pattern(start, size int64) io.Reader { return &pattern{pos: start, end: start + size} }

type pattern struct{ pos, end int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.pos >= p.end {
		return 0, io.EOF
	}
	if rest := p.end - p.pos; int64(len(b)) > rest {
		b = b[:rest]
	}
	for i := range b {
		b[i] = patternByte(p.pos + int64(i))
	}
	p.pos += int64(len(b))
	return len(b), nil
}

// patternByte mixes the position so that no two nearby windows match and
// an off-by-one in a ranged read shows.
func patternByte(i int64) byte {
	x := uint64(i) * 0x9E3779B97F4A7C15
	return byte(x >> 56)
}

func patternBytes(start, n int64) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(Pattern(start, n), b)
	return b
}
