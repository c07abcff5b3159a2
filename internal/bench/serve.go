package bench

import (
	"net"
	"net/http"
)

type lateServer struct {
	url, addr string
	l         net.Listener
	srv       *http.Server
}

func (s *lateServer) start(h http.Handler) {
	s.srv.Handler = h
	go func() { _ = s.srv.Serve(s.l) }()
}

// serveLater binds a loopback port now and serves once a handler exists
// (the node's external URL must be known before it is built).
func serveLater() (*lateServer, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	s := &lateServer{url: "http://" + l.Addr().String(), addr: l.Addr().String(), l: l, srv: &http.Server{}}
	return s, func() { s.srv.Close() }, nil
}
