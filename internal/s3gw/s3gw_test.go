package s3gw_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"

	"gantry/internal/s3gw"
	"gantry/internal/testenv"
)

func TestFindHonoursTheVariable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "versitygw")
	_, err := s3gw.Find(func(k string) string {
		if k == s3gw.BinaryEnv {
			return missing
		}
		return ""
	})
	if !errors.Is(err, s3gw.ErrNoBinary) {
		t.Fatalf("a %s naming a missing file: %v", s3gw.BinaryEnv, err)
	}
}

// Stop leaves neither the process nor its data behind.
func TestStartStop(t *testing.T) {
	ctx := context.Background()
	g, err := s3gw.Start(ctx, testenv.VersityGW(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.NewBucket(ctx); err != nil {
		g.Stop()
		t.Fatal(err)
	}
	g.Stop()
	if _, err := os.Stat(g.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("data left in %s: %v", g.Dir, err)
	}
	if c, err := net.Dial("tcp", g.Endpoint); err == nil {
		c.Close()
		t.Errorf("%s still answers after Stop", g.Endpoint)
	}
}
