package site

import (
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// boundTransport is memberlist's NetTransport whose streams (push/pull
// exchanges, the TCP fallback of a failed probe) leave from the address
// it listens on, as its packets do. memberlist dials them from whatever
// address the route picks: on a host with several addresses a firewall
// between sites that passes gossip by address then sees a server under
// two, and a partition that drops its packets passes its streams, whose
// fallback probes keep the servers behind it alive.
type boundTransport struct {
	*memberlist.NetTransport
	local *net.TCPAddr
}

// bindStreams returns nt dialing from host, or nt itself when host is
// empty or unspecified (0.0.0.0, ::): then the route picks.
func bindStreams(nt *memberlist.NetTransport, host string) memberlist.NodeAwareTransport {
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return nt
	}
	return &boundTransport{NetTransport: nt, local: &net.TCPAddr{IP: ip}}
}

// DialTimeout dials addr from the listening address.
func (t *boundTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout dials a from the listening address.
func (t *boundTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: t.local}
	return d.Dial("tcp", a.Addr)
}
