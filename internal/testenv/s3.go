package testenv

import (
	"context"
	"os"
	"testing"

	"gantry/internal/blob"
	"gantry/internal/s3gw"
)

// S3Server is a versitygw on loopback, started for one test.
type S3Server struct{ *s3gw.Gateway }

// S3 starts versitygw (posix backend in a temporary directory) and stops
// it when the test ends. Without the binary the test is skipped with a
// note, or fails when GANTRY_TEST_REQUIRE_S3=1 (scripts/test sets it).
func S3(t testing.TB) *S3Server {
	t.Helper()
	g, err := s3gw.Start(context.Background(), VersityGW(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	return &S3Server{g}
}

// VersityGW returns the versitygw binary's path; without one the test is
// skipped with a note, or fails when GANTRY_TEST_REQUIRE_S3=1.
func VersityGW(t testing.TB) string {
	t.Helper()
	bin, err := s3gw.Find(os.Getenv)
	if err != nil {
		if os.Getenv("GANTRY_TEST_REQUIRE_S3") == "1" {
			t.Fatalf("GANTRY_TEST_REQUIRE_S3=1: %v", err)
		}
		t.Logf("NOTE: S3 half not run: %v", err)
		t.Skip("no versitygw")
	}
	return bin
}

// NewBucket creates an empty bucket and returns the options reaching it.
func (s *S3Server) NewBucket(t testing.TB) blob.S3Options {
	t.Helper()
	o, err := s.Gateway.NewBucket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// OpenBucket returns an S3 blob store on a new bucket.
func (s *S3Server) OpenBucket(t testing.TB) (*blob.S3, blob.S3Options) {
	t.Helper()
	o := s.NewBucket(t)
	st, err := blob.NewS3(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return st, o
}
