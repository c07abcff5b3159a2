package bench_test

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"testing"

	"gantry/internal/bench"
)

// The idle-connection benchmark against a real gantry process: every long
// poll is held open by the server and its memory is read.
func TestIdleConnsSmoke(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gantry")
	if out, err := exec.Command("go", "build", "-o", bin, "gantry/cmd/gantry").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	base, loaded, sockets, err := bench.IdleConns(context.Background(), bench.IdleConnsOptions{Binary: bin, Conns: 200, TempDir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if base <= 0 || loaded <= 0 {
		t.Fatalf("RSS %v → %v", base, loaded)
	}
	if sockets < 200 {
		t.Fatalf("the server held %d sockets, want at least 200 long polls", sockets)
	}
}
