// Package blob stores artifacts and archived logs. FS is the default
// adapter: files under a root directory, written atomically (temporary
// file, fsync, rename) so an acknowledged upload survives a crash. S3
// keeps them in an S3-compatible object store. Both accept the same keys
// and agree on every outcome the Store interface describes.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// ErrNotFound is returned for a missing key.
var ErrNotFound = errors.New("blob: not found")

// ErrTooLarge is returned when a write exceeds its limit.
var ErrTooLarge = errors.New("blob: too large")

// ErrInvalidKey is returned for a key no adapter accepts.
var ErrInvalidKey = errors.New("blob: invalid key")

// Store is the blob seam.
type Store interface {
	// Put writes r under key, at most limit bytes (0: no limit), and returns
	// the size. A failed or refused Put leaves the previous blob, if any,
	// untouched and nothing partial behind.
	Put(ctx context.Context, key string, r io.Reader, limit int64) (int64, error)
	// Open returns the blob and its size, or ErrNotFound. Both adapters'
	// readers are also io.ReaderAt (for archive/zip).
	Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error)
	// Delete removes the blob; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// checkKey accepts slash-separated relative paths without empty, "." or
// ".." segments, so a key maps to one file under FS's root and to the
// same object name on S3.
func checkKey(key string) error {
	if key == "" || strings.Contains(key, "..") || path.Clean("/"+key) != "/"+key {
		return fmt.Errorf("%w %q", ErrInvalidKey, key)
	}
	return nil
}

// FS stores blobs as files under Root.
type FS struct {
	Root string

	// dirs holds directories Put found or made, so that the next Put in
	// one skips MkdirAll (a directory removed since is made again).
	dirsMu sync.Mutex
	dirs   map[string]struct{}
}

// maxKnownDirs bounds dirs; past it, it starts over.
const maxKnownDirs = 4096

func (f *FS) path(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(f.Root, filepath.FromSlash(key)), nil
}

type limitedReader struct {
	r     io.Reader
	left  int64
	limit bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.limit && l.left <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, ErrTooLarge
		}
		return 0, io.EOF
	}
	if l.limit && int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

func (f *FS) Put(ctx context.Context, key string, r io.Reader, limit int64) (int64, error) {
	dst, err := f.path(key)
	if err != nil {
		return 0, err
	}
	tmp, err := f.createTemp(filepath.Dir(dst))
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, &limitedReader{r: r, left: limit, limit: limit > 0})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		// Only a failed Put leaves its temporary file to remove.
		_ = os.Remove(tmp.Name())
		return 0, err
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return n, nil
}

// createTemp creates a temporary file in dir, making dir first unless
// it is known to exist.
func (f *FS) createTemp(dir string) (*os.File, error) {
	f.dirsMu.Lock()
	_, known := f.dirs[dir]
	f.dirsMu.Unlock()
	if known {
		tmp, err := os.CreateTemp(dir, ".upload-*")
		if !errors.Is(err, os.ErrNotExist) {
			return tmp, err
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	f.dirsMu.Lock()
	if f.dirs == nil || len(f.dirs) >= maxKnownDirs {
		f.dirs = map[string]struct{}{}
	}
	f.dirs[dir] = struct{}{}
	f.dirsMu.Unlock()
	return os.CreateTemp(dir, ".upload-*")
}

func (f *FS) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	p, err := f.path(key)
	if err != nil {
		return nil, 0, err
	}
	fh, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, 0, err
	}
	return fh, st.Size(), nil
}

func (f *FS) Delete(ctx context.Context, key string) error {
	p, err := f.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ReaderAt gives ranged reads over an opened blob, so a zip's central
// directory and one entry can be read without loading the whole archive.
// Files already are ReaderAts; other readers are served by seeking.
func ReaderAt(r io.ReadSeeker) io.ReaderAt {
	if ra, ok := r.(io.ReaderAt); ok {
		return ra
	}
	return &seekingReaderAt{r: r}
}

type seekingReaderAt struct {
	mu sync.Mutex
	r  io.ReadSeeker
}

func (s *seekingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.r.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(s.r, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF // ReadAt reports a short read at the end as EOF
	}
	return n, err
}
