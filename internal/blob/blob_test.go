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
