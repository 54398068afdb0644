package agent

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/moxxie/moxxie/sdn"
)

// The kernel tests run in throwaway network namespaces named
// mxt<pid>-<n>-<role>, deleted in t.Cleanup whatever the outcome.

var nsSeq atomic.Int64

// needRoot skips a kernel test that cannot run here.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("kernel test: needs iproute2 (ip)")
	}
}

// newNS creates a network namespace with lo up, deleted when the test
// ends.
func newNS(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("mxt%d-%d-%s", os.Getpid(), nsSeq.Add(1), role)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("kernel test: cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v: %s", name, err, out)
		}
	})
	ipn(t, name, "link", "set", "lo", "up")
	return name
}

// run runs a command and fails the test when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ipn runs ip -n ns args.
func ipn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"-n", ns}, args...)...)
}

// needVXLAN skips when the kernel cannot create VXLAN devices.
func needVXLAN(t *testing.T) {
	t.Helper()
	ns := newNS(t, "vxchk")
	out, err := exec.Command("ip", "-n", ns, "link", "add", "vx0", "type", "vxlan", "id", "1", "dstport", "4789").CombinedOutput()
	if err != nil {
		t.Skipf("kernel test: this kernel has no VXLAN devices: %v: %s", err, out)
	}
}

// needNFT skips when nft is not installed.
func needNFT(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("kernel test: nft (nftables) is not installed")
	}
}

// newKernel opens a Kernel on ns, closed when the test ends.
func newKernel(t *testing.T, cfg KernelConfig) *Kernel {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	k, err := NewKernel(cfg)
	if err != nil {
		t.Fatalf("NewKernel: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// apply applies plan and fails the test on error; it logs the time taken.
func apply(t *testing.T, k *Kernel, plan sdn.Plan) []string {
	t.Helper()
	start := time.Now()
	acts, err := k.Apply(context.Background(), plan)
	if err != nil {
		t.Fatalf("Apply %s: %v (actions %q)", plan.Host, err, acts)
	}
	t.Logf("Apply %s: %d actions in %v", plan.Host, len(acts), time.Since(start).Round(time.Microsecond))
	return acts
}

// handle opens a netlink handle in ns for the test's own checks.
func handle(t *testing.T, ns string) *netlink.Handle {
	t.Helper()
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// link returns the link called name in h's namespace.
func link(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

// guest creates a guest namespace attached to bridge in host by a veth
// pair (tap in host, eth0 in the guest) holding cidr, with gw as its
// default route when set.
func guest(t *testing.T, host, tap, bridge, cidr, gw string) string {
	t.Helper()
	g := newNS(t, "g"+tap)
	ipn(t, host, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", g)
	ipn(t, g, "addr", "add", cidr, "dev", "eth0")
	ipn(t, g, "link", "set", "eth0", "up")
	if gw != "" {
		ipn(t, g, "route", "add", "default", "via", gw)
	}
	ipn(t, host, "link", "set", tap, "master", bridge, "up")
	return g
}

// inNS runs f on a thread switched into the namespace ns; sockets f opens
// live there.
func inNS(ns string, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in ns: leave it locked so Go retires it.
		return fmt.Errorf("back from netns %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// ping sends ICMP echo requests from namespace ns to dst until one is
// answered or timeout passes.
func ping(ns, dst string, timeout time.Duration) error {
	var conn *icmp.PacketConn
	err := inNS(ns, func() error {
		var err error
		conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	to := &net.IPAddr{IP: net.ParseIP(dst)}
	id := rand.IntN(0xffff)
	deadline := time.Now().Add(timeout)
	for seq := 1; time.Now().Before(deadline); seq++ {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("moxxie")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := conn.WriteTo(b, to); err != nil {
			return err
		}
		if echoReply(conn, to, id, min(time.Until(deadline), 250*time.Millisecond)) {
			return nil
		}
	}
	return fmt.Errorf("ping %s from %s: no reply within %v", dst, ns, timeout)
}

// echoReply waits up to wait for the reply to an echo with id from to.
func echoReply(conn *icmp.PacketConn, to *net.IPAddr, id int, wait time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return false
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id && from.String() == to.String() {
			return true
		}
	}
}

// mustPing fails the test unless ns reaches dst.
func mustPing(t *testing.T, ns, dst string) {
	t.Helper()
	start := time.Now()
	if err := ping(ns, dst, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("ping %s from %s: answered after %v", dst, ns, time.Since(start).Round(time.Millisecond))
}

// mustNotPing fails the test if ns reaches dst within a second.
func mustNotPing(t *testing.T, ns, dst string) {
	t.Helper()
	if err := ping(ns, dst, time.Second); err == nil {
		t.Fatalf("ping %s from %s answered; want it dropped", dst, ns)
	}
}

// events collects the link changes in ns until stop is called.
func events(t *testing.T, ns string) (stop func() []netlink.LinkUpdate) {
	t.Helper()
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan netlink.LinkUpdate, 1024)
	done := make(chan struct{})
	err = netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: &nsh})
	nsh.Close()
	if err != nil {
		t.Fatal(err)
	}
	return func() []netlink.LinkUpdate {
		time.Sleep(200 * time.Millisecond) // let the last notifications arrive
		close(done)
		var got []netlink.LinkUpdate
		for u := range ch {
			got = append(got, u)
		}
		return got
	}
}

// describe renders link updates for a failure message.
func describe(us []netlink.LinkUpdate) string {
	var s []string
	for _, u := range us {
		kind := "new"
		if u.Header.Type == unix.RTM_DELLINK {
			kind = "del"
		}
		s = append(s, fmt.Sprintf("%s %s flags=%v", kind, u.Link.Attrs().Name, u.Link.Attrs().Flags))
	}
	return strings.Join(s, "; ")
}

// fdbPeers lists the all-zero-MAC forwarding entries of dev in ns, as
// the bridge command shows them.
func fdbPeers(t *testing.T, ns, dev string) []string {
	t.Helper()
	out := run(t, "bridge", "-n", ns, "fdb", "show", "dev", dev)
	var peers []string
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "00:00:00:00:00:00" && f[1] == "dst" {
			if !strings.Contains(line, "self permanent") {
				t.Errorf("fdb entry %q: want self permanent", strings.TrimSpace(line))
			}
			peers = append(peers, f[2])
		}
	}
	slices.Sort(peers)
	return peers
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// runOut runs a command and returns its combined output and error.
func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
