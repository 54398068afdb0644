package site

import (
	"io"
	"log"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestBindStreams: a stream dialed by the transport leaves from the
// address it listens on, not the one the route picks (127.0.0.1 on
// loopback), unless it listens on every address.
func TestBindStreams(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.203:0")
	if err != nil {
		t.Skipf("no 127.0.0.203 to listen on: %v", err)
	}
	defer ln.Close()
	from := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			from <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	nt, err := newNetTransport("127.0.0.202:0", log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer nt.Shutdown()
	tr := bindStreams(nt, "127.0.0.202")
	if _, ok := tr.(*boundTransport); !ok {
		t.Fatalf("transport %T, want a bound one", tr)
	}
	for _, dial := range []func() (net.Conn, error){
		func() (net.Conn, error) {
			return tr.DialAddressTimeout(memberlist.Address{Addr: ln.Addr().String()}, time.Second)
		},
		func() (net.Conn, error) {
			return tr.(memberlist.Transport).DialTimeout(ln.Addr().String(), time.Second)
		},
	} {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if got := <-from; got != "127.0.0.202" {
			t.Errorf("stream from %s, want 127.0.0.202", got)
		}
	}
	for _, host := range []string{"", "0.0.0.0", "::"} {
		if got := bindStreams(nt, host); got != memberlist.NodeAwareTransport(nt) {
			t.Errorf("bindStreams(%q) = %T, want the transport itself", host, got)
		}
	}
}
