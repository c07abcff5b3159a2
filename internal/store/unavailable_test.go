package store_test

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func TestUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, dialErr := net.Dial("tcp", addr) // nothing listens there now
	if dialErr == nil {
		t.Skip("something took the port")
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("claim: %w", dialErr), true},
		{fmt.Errorf("claim: %w", ci.ErrUnavailable), true},
		{fmt.Errorf("job: %w", ci.ErrNotFound), false},
		{ci.ErrConflict, false},
		{errors.New("syntax error"), false},
		{nil, false},
	} {
		if got := store.Unavailable(c.err); got != c.want {
			t.Errorf("Unavailable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
