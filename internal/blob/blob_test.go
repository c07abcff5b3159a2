package blob_test

import (
	"context"
	"database/sql"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gantry/internal/blob"
	"gantry/internal/blob/blobtest"
	"gantry/internal/testenv"
)

func TestFS(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blobtest.Subject {
		root := t.TempDir()
		return blobtest.Subject{Store: &blob.FS{Root: root}, Contents: func() ([]string, error) { return filesUnder(root) }}
	})
}

// TestS3 runs the suite with a key prefix, so it also shows that every
// object lands under the prefix.
func TestS3(t *testing.T) {
	srv := testenv.S3(t)
	const prefix = "gantry/blobs/"
	blobtest.Run(t, func(t *testing.T) blobtest.Subject {
		o := srv.NewBucket(t)
		o.Prefix = prefix
		// The smallest part S3 allows, so the 12 and 20 MiB cases take
		// the multipart path with several parts.
		o.PartSize = 5 << 20
		st, err := blob.NewS3(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		contents := func() ([]string, error) {
			all, err := srv.Contents(context.Background(), o.Bucket)
			for i, name := range all {
				if rest, ok := strings.CutPrefix(name, prefix); ok {
					all[i] = rest
				} else if rest, ok := strings.CutPrefix(name, "unfinished upload of "+prefix); ok {
					all[i] = "unfinished upload of " + rest
				} else {
					all[i] = "outside the prefix: " + name
				}
			}
			return all, err
		}
		return blobtest.Subject{Store: st, Contents: contents}
	})
}

func TestS3Options(t *testing.T) {
	srv := testenv.S3(t)
	ctx := context.Background()
	o := srv.NewBucket(t)
	st, err := blob.NewS3(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "top/level", strings.NewReader("x"), 0); err != nil {
		t.Fatal(err)
	}
	if got, err := srv.Contents(ctx, o.Bucket); err != nil || strings.Join(got, ",") != "top/level" {
		t.Fatalf("without a prefix the key is the object name: %q %v", got, err)
	}
	missing := o
	missing.Bucket += "-not-there"
	if _, err := blob.NewS3(ctx, missing); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("a missing bucket: %v", err)
	}
	wrong := o
	wrong.SecretKey = "wrong"
	if _, err := blob.NewS3(ctx, wrong); err == nil {
		t.Fatal("a wrong secret key was accepted")
	}
	small := o
	small.PartSize = 1 << 20
	if _, err := blob.NewS3(ctx, small); err == nil {
		t.Fatal("a part size below 5 MiB was accepted")
	}
}

// filesUnder lists the regular files below root, temporary ones included.
func filesUnder(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	return out, err
}

// A directory removed after a Put wrote into it is made again by the next.
func TestFSDirectoryRemovedBetweenPuts(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st := &blob.FS{Root: root}
	for i, key := range []string{"a/b/one", "a/b/two", "a/b/three"} {
		if _, err := st.Put(ctx, key, strings.NewReader(key), 0); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		if i == 0 {
			if err := os.RemoveAll(filepath.Join(root, "a")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, err := filesUnder(root); err != nil || strings.Join(got, ",") != "a/b/three,a/b/two" {
		t.Fatalf("files %q %v", got, err)
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

// TestTiered runs the suite on files with small blobs (16 bytes or less,
// so most cases cross between the tiers) in each database. The backend
// holds what both tiers hold; a key in both would show twice.
func TestTiered(t *testing.T) {
	for _, be := range testenv.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			blobtest.Run(t, func(t *testing.T) blobtest.Subject {
				root, db := t.TempDir(), be.Open(t)
				pool := db.(interface{ WritePool() *sql.DB }).WritePool()
				contents := func() ([]string, error) {
					files, err := filesUnder(root)
					if err != nil {
						return nil, err
					}
					rows, err := pool.Query(`SELECT key FROM small_blobs`)
					if err != nil {
						return nil, err
					}
					defer rows.Close()
					for rows.Next() {
						var k string
						if err := rows.Scan(&k); err != nil {
							return nil, err
						}
						files = append(files, k)
					}
					slices.Sort(files)
					return files, rows.Err()
				}
				return blobtest.Subject{Store: &blob.Tiered{Large: &blob.FS{Root: root}, Small: db, Max: 16}, Contents: contents}
			})
		})
	}
}

// Only keys under the prefix may be small; the rest go to the large tier
// whatever their size.
func TestTieredPrefix(t *testing.T) {
	ctx := context.Background()
	root, db := t.TempDir(), testenv.OpenSQLite(t)
	st := &blob.Tiered{Large: &blob.FS{Root: root}, Small: db, Prefix: "traces/", Max: blob.DefaultSmallMax}
	for _, key := range []string{"traces/1/1001.log", "artifacts/1/a.zip"} {
		if _, err := st.Put(ctx, key, strings.NewReader("tiny"), 0); err != nil {
			t.Fatal(err)
		}
		r, n, err := st.Open(ctx, key)
		if err != nil || n != 4 {
			t.Fatalf("%s: %d %v", key, n, err)
		}
		r.Close()
	}
	files, err := filesUnder(root)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(files, ",") != "artifacts/1/a.zip" {
		t.Fatalf("files %v: only the artifact belongs there", files)
	}
	if data, err := db.SmallBlob(ctx, "traces/1/1001.log"); err != nil || string(data) != "tiny" {
		t.Fatalf("small blob: %q %v", data, err)
	}
}
