package blob_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"gantry/internal/blob"
)

func TestFS(t *testing.T) {
	ctx := context.Background()
	fs := &blob.FS{Root: t.TempDir()}
	n, err := fs.Put(ctx, "a/b/c.zip", strings.NewReader("hello"), 0)
	if err != nil || n != 5 {
		t.Fatal(n, err)
	}
	r, size, err := fs.Open(ctx, "a/b/c.zip")
	if err != nil || size != 5 {
		t.Fatal(size, err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "hello" {
		t.Fatalf("%q", b)
	}
	if _, err := fs.Put(ctx, "big", strings.NewReader("0123456789"), 4); !errors.Is(err, blob.ErrTooLarge) {
		t.Fatalf("limit: %v", err)
	}
	if _, _, err := fs.Open(ctx, "big"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a refused upload left a blob: %v", err)
	}
	if _, err := fs.Put(ctx, "exact", strings.NewReader("0123"), 4); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	for _, bad := range []string{"../x", "/abs", "a/../../x", "", "a//b"} {
		if _, err := fs.Put(ctx, bad, strings.NewReader("x"), 0); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
	if err := fs.Delete(ctx, "a/b/c.zip"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fs.Open(ctx, "a/b/c.zip"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatal(err)
	}
}

// onlySeeker hides the file's own ReadAt, so the seeking adapter is used.
type onlySeeker struct{ io.ReadSeeker }

func TestReaderAtOverASeeker(t *testing.T) {
	ra := blob.ReaderAt(onlySeeker{strings.NewReader("0123456789")})
	buf := make([]byte, 3)
	if n, err := ra.ReadAt(buf, 4); n != 3 || err != nil || string(buf) != "456" {
		t.Fatalf("ReadAt(4) = %d %v %q", n, err, buf)
	}
	if n, err := ra.ReadAt(buf, 8); n != 2 || err != io.EOF || string(buf[:n]) != "89" {
		t.Fatalf("short read at the end = %d %v %q", n, err, buf[:n])
	}
	if _, err := ra.ReadAt(buf, 20); err == nil {
		t.Fatal("read past the end succeeded")
	}
}
