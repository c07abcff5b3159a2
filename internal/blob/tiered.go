package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"

	"gantry/internal/ci"
)

// SmallStore keeps small blobs as database rows (store.Store has these).
type SmallStore interface {
	PutSmallBlob(ctx context.Context, key string, data []byte) error
	// SmallBlob returns ci.ErrNotFound for a missing key.
	SmallBlob(ctx context.Context, key string) ([]byte, error)
	DeleteSmallBlob(ctx context.Context, key string) error
}

// DefaultSmallMax is the size up to which Tiered keeps a blob in the
// database. Most job logs are a few KiB: as a file each costs a create,
// two fsyncs, a rename and a read back to verify, several times the CPU
// of one row (measured in joblog's BenchmarkArchiveSweep).
const DefaultSmallMax = 64 << 10

// Tiered keeps the blobs under Prefix of at most Max bytes in Small and
// everything else in Large. A key lives in one tier at a time: a Put that
// lands in one tier removes the key from the other once it has succeeded,
// and Open looks in Small first.
type Tiered struct {
	Large  Store
	Small  SmallStore
	Prefix string // only keys under it may be small ("" for every key)
	Max    int64
}

func (t *Tiered) tiered(key string) bool { return strings.HasPrefix(key, t.Prefix) }

// KeepsSmall reports whether a blob of size bytes under key lives in Small.
func (t *Tiered) KeepsSmall(key string, size int64) bool { return t.tiered(key) && size <= t.Max }

// Put reads up to Max+1 bytes: a blob that ends within them is written to
// Small, a longer one streams on to Large.
func (t *Tiered) Put(ctx context.Context, key string, r io.Reader, limit int64) (int64, error) {
	if !t.tiered(key) {
		return t.Large.Put(ctx, key, r, limit)
	}
	if err := checkKey(key); err != nil {
		return 0, err
	}
	var buf bytes.Buffer // grows to the blob, not to Max
	n, err := io.CopyN(&buf, r, t.Max+1)
	if limit > 0 && n > limit {
		return 0, ErrTooLarge
	}
	head := buf.Bytes()
	switch {
	case err == io.EOF:
		if err := t.Small.PutSmallBlob(ctx, key, head); err != nil {
			return 0, err
		}
		// A larger earlier version is shadowed now (Open looks in Small
		// first); removing it only saves its space, so a failure to is no
		// failure of this Put.
		_ = t.Large.Delete(ctx, key)
		return n, nil
	case err != nil:
		return 0, err
	}
	size, err := t.Large.Put(ctx, key, io.MultiReader(bytes.NewReader(head), r), limit)
	if err != nil {
		return 0, err
	}
	// A smaller earlier version would shadow this one: until it is gone
	// the Put has not taken effect.
	if err := t.Small.DeleteSmallBlob(ctx, key); err != nil {
		return 0, err
	}
	return size, nil
}

// Open returns the blob from Small when it is there, else from Large.
func (t *Tiered) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	if t.tiered(key) {
		if err := checkKey(key); err != nil {
			return nil, 0, err
		}
		data, err := t.Small.SmallBlob(ctx, key)
		if err == nil {
			return bytesBlob{bytes.NewReader(data)}, int64(len(data)), nil
		}
		if !errors.Is(err, ci.ErrNotFound) {
			return nil, 0, err
		}
	}
	return t.Large.Open(ctx, key)
}

// Delete removes the key from both tiers.
func (t *Tiered) Delete(ctx context.Context, key string) error {
	if t.tiered(key) {
		if err := checkKey(key); err != nil {
			return err
		}
		if err := t.Small.DeleteSmallBlob(ctx, key); err != nil {
			return err
		}
	}
	return t.Large.Delete(ctx, key)
}

// bytesBlob is a small blob read from the database: a bytes.Reader (so
// also an io.ReaderAt) with nothing to close.
type bytesBlob struct{ *bytes.Reader }

func (bytesBlob) Close() error { return nil }
