package testenv

import (
	"bufio"
	"net"
	"testing"
)

// The proxy forwards, Cut drops open connections and refuses new ones,
// Restore forwards again.
func TestTCPProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					_, _ = c.Write([]byte(sc.Text() + "\n"))
				}
			}()
		}
	}()
	p := StartTCPProxy(t, echo.Addr().String())
	roundTrip := func(c net.Conn) error {
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		_, err := bufio.NewReader(c).ReadString('\n')
		return err
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	open := dial()
	if err := roundTrip(open); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	if err := roundTrip(open); err == nil {
		t.Fatal("an open connection survived the cut")
	}
	if err := roundTrip(dial()); err == nil {
		t.Fatal("a new connection got through the cut")
	}
	p.Restore()
	if err := roundTrip(dial()); err != nil {
		t.Fatalf("after the restore: %v", err)
	}
}
