package dns

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// startFastUDP opens n UDP sockets on addr beside CoreDNS's, which has
// already bound coreSockets there with SO_REUSEPORT, and serves m's queries
// on them. It steers every datagram to its own sockets, chosen by the CPU
// that received it, with a classic BPF program on the port's SO_REUSEPORT
// group (socket(7): sockets are numbered in the order they joined, so
// CoreDNS's come first). Should the program not attach, the kernel spreads
// datagrams over all sockets and CoreDNS answers its share: the same
// answers, only slower, but for the EDNS size those advertise (the
// client's, as over TCP) and the size they are cut to (the client's,
// beyond 1232).
func startFastUDP(m *Moxxie, addr string, n, coreSockets int) (*fastUDP, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	f := &fastUDP{m: m}
	for range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("moxxie: fast UDP socket on %s: %w", addr, err)
		}
		f.conns = append(f.conns, pc.(*net.UDPConn))
	}
	if err := steer(f.conns[0], coreSockets, n); err != nil {
		log.Warningf("UDP queries on %s are shared with CoreDNS's socket, which answers them more slowly: %v", addr, err)
	}
	for _, c := range f.conns {
		f.wg.Add(1)
		go f.serve(c)
	}
	return f, nil
}

// steer attaches to conn's SO_REUSEPORT group a program choosing the
// socket first + CPU % n.
func steer(conn *net.UDPConn, first, n int) error {
	raw, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtCPUID},
		bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: uint32(n)},
		bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: uint32(first)},
		bpf.RetA{},
	})
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &prog)
	}); err != nil {
		return err
	}
	return serr
}
