// Package agent is moxxie-agent's host side: it holds a host's network
// namespace to the plan the servers compiled for it. The kernel side
// (Kernel) applies a plan's links with netlink and its firewall with one
// nftables table, reports drift and watches for links changed by hand.
//
// Every link the agent creates carries an alias starting with
// sdn.AliasPrefix. Links without it are never changed or deleted, nor is
// the management interface or any link holding one of the addresses the
// agent talks to the servers from.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/moxxie/moxxie/sdn"
)

var (
	// ErrUnmanaged is returned when a plan names a link that exists
	// without Moxxie's alias: the agent refuses to take it over.
	ErrUnmanaged = errors.New("exists and is not managed by moxxie")
	// ErrProtected is returned when a plan names the management interface
	// or a link holding a protected address.
	ErrProtected = errors.New("is protected")
	// ErrNoNFT is returned when a plan's firewall is not empty and the
	// nft command cannot be found.
	ErrNoNFT = errors.New("nft is not installed")
	// ErrInvalidPlan is returned for a plan the agent cannot apply as it
	// is (an unknown link kind, a missing alias, a duplicate name).
	ErrInvalidPlan = errors.New("invalid plan")
)

// KernelConfig says where and how a Kernel works.
type KernelConfig struct {
	// Netns is a named network namespace (/run/netns/NAME); empty means
	// the namespace of the process (production).
	Netns string
	// NFT is the nft command. The default is {"nft"}, or with Netns set
	// {"ip", "netns", "exec", NAME, "nft"}.
	NFT []string
	// Management is an interface never changed or deleted.
	Management string
	// ProtectAddrs are addresses (the one the agent talks to the servers
	// from): a link holding one is never changed or deleted.
	ProtectAddrs []netip.Addr
	// DryRun makes Apply compute and return its actions without changing
	// anything.
	DryRun bool
	// Logger receives one line per action; nil discards.
	Logger *slog.Logger
}

// Kernel applies plans to one network namespace. Its methods are safe for
// concurrent use; Apply and Verify run one at a time.
type Kernel struct {
	cfg   KernelConfig
	log   *slog.Logger
	ns    netns.NsHandle // netns.None() for the current namespace
	h     *netlink.Handle
	raw   map[int]*nl.SocketHandle // NETLINK_ROUTE socket for bridge options
	nftOK bool

	mu     sync.Mutex // serializes Apply and Verify; guards closed and fw
	closed bool       // Close was called
	fw     fwState    // the firewall last applied

	namesMu sync.Mutex      // guards names; Watch reads it while Apply runs
	names   map[string]bool // names of the links of the last applied plan
}

// NewKernel opens netlink sockets in the configured namespace.
func NewKernel(cfg KernelConfig) (*Kernel, error) {
	k := &Kernel{cfg: cfg, log: cfg.Logger, ns: netns.None(), names: map[string]bool{}}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Netns != "" {
		ns, err := netns.GetFromName(cfg.Netns)
		if err != nil {
			return nil, fmt.Errorf("open netns %q: %w", cfg.Netns, err)
		}
		k.ns = ns
	}
	if len(k.cfg.NFT) == 0 {
		k.cfg.NFT = []string{"nft"}
		if cfg.Netns != "" {
			k.cfg.NFT = []string{"ip", "netns", "exec", cfg.Netns, "nft"}
		}
	}
	k.nftOK = nftInstalled(k.cfg.NFT)
	h, err := netlink.NewHandleAt(k.ns, unix.NETLINK_ROUTE)
	if err != nil {
		k.closeNS()
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	k.h = h
	s, err := nl.GetNetlinkSocketAt(k.ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		k.closeNS()
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	k.raw = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
	return k, nil
}

// nftInstalled reports whether the nft command (and, behind
// "ip netns exec", the nft binary) can be found.
func nftInstalled(cmd []string) bool {
	if _, err := exec.LookPath(cmd[0]); err != nil {
		return false
	}
	if len(cmd) > 1 && cmd[len(cmd)-1] == "nft" {
		_, err := exec.LookPath("nft")
		return err == nil
	}
	return true
}

// closeNS closes the namespace handle through a copy: NsHandle.Close
// writes to the handle, which Watch reads without the lock.
func (k *Kernel) closeNS() {
	if ns := k.ns; ns.IsOpen() {
		_ = ns.Close()
	}
}

// inNetns runs f on an OS thread in the Kernel's namespace, where the
// files under /proc/sys/net are that namespace's (they belong to the
// namespace of the thread that opens them). The thread is locked to a
// goroutine of its own and never unlocked, so Go ends it with that
// goroutine instead of reusing it elsewhere. Without a configured
// namespace f runs where it is called. f must not start goroutines.
func (k *Kernel) inNetns(f func() error) error {
	if !k.ns.IsOpen() {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(k.ns); err != nil {
			errc <- fmt.Errorf("enter netns %q: %w", k.cfg.Netns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Close releases the netlink sockets and the namespace handle.
func (k *Kernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	k.h.Close()
	for _, s := range k.raw {
		s.Close()
	}
	k.closeNS()
	return nil
}

// Apply makes the namespace hold plan exactly: it creates, updates and
// deletes only links whose alias starts with sdn.AliasPrefix, sets the
// IPv4 and IPv6 forwarding sysctls of the plan's bridges as ifupdown2 does
// (on for a bridge with addresses, off for one without), and replaces the
// firewall table when it differs. It returns the actions it took
// ("create bridge v1", "set mtu of v1 to 1450", "recreate vxlan_v1: vni
// 100 -> 200", "delete vxlan old"), empty when nothing differed. A second
// Apply of the same plan takes no action and sends no netlink change; a
// link that is already right is never set down or up. Apply does not list
// the firewall table when it last applied (or found) the same one: a table
// changed by hand is found by Verify, after which Apply replaces it. With
// DryRun set it changes nothing and returns the actions it would take.
func (k *Kernel) Apply(ctx context.Context, plan sdn.Plan) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.cfg.DryRun {
		k.namesMu.Lock()
		k.names = planNames(plan)
		k.namesMu.Unlock()
	}
	return k.reconcile(ctx, plan, k.cfg.DryRun)
}

// Verify lists the differences between plan and the kernel (drift), as
// the actions Apply would take; empty when none. It changes nothing; when
// it finds the firewall table differs from the one last applied, the next
// Apply lists and replaces the table.
func (k *Kernel) Verify(plan sdn.Plan) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reconcile(context.Background(), plan, true)
}

// planNames returns the names of plan's links.
func planNames(plan sdn.Plan) map[string]bool {
	names := make(map[string]bool, len(plan.Links))
	for _, l := range plan.Links {
		names[l.Name] = true
	}
	return names
}

// pass is one reconciliation: the kernel's links as it goes and the
// actions taken (or, dry, that would be). It reads the namespace with one
// dump each of links, addresses and, when the plan has VXLAN links, the
// bridge forwarding database, and looks links up in them by index; a
// link it creates starts with none of them.
type pass struct {
	k       *Kernel
	ctx     context.Context
	dry     bool
	links   map[string]netlink.Link // by name, updated as links are created
	created map[string]bool         // names of the links this pass created
	guarded map[string]string       // protected link names -> why
	bropts  map[int]bridgeOpts      // by ifindex, bridges only
	addrs   map[int][]netip.Prefix  // by ifindex
	fdb     map[int][]netlink.Neigh // all-zero-MAC entries by ifindex
	acts    []string
}

// do records action and, unless dry, runs f; an error is wrapped with the
// action.
func (p *pass) do(action string, f func() error) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	if !p.dry {
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", action, err)
		}
		p.k.log.Info("sdn action", "action", action)
	}
	p.acts = append(p.acts, action)
	return nil
}

func (k *Kernel) reconcile(ctx context.Context, plan sdn.Plan, dry bool) ([]string, error) {
	if k.closed {
		return nil, errors.New("kernel closed")
	}
	if err := checkPlan(plan); err != nil {
		return nil, err
	}
	p := &pass{k: k, ctx: ctx, dry: dry, created: map[string]bool{}}
	if err := p.load(plan); err != nil {
		return nil, err
	}
	if err := p.checkOwnership(plan); err != nil {
		return nil, err
	}
	if err := p.removeStale(plan); err != nil {
		return p.acts, err
	}
	for _, l := range ordered(plan.Links) {
		if err := p.ensureLink(l); err != nil {
			return p.acts, err
		}
	}
	if err := p.ensureForwarding(plan); err != nil {
		return p.acts, err
	}
	if err := p.ensureFirewall(plan.Firewall); err != nil {
		return p.acts, err
	}
	return p.acts, nil
}

// checkPlan refuses plans the agent cannot apply: bad names or aliases,
// unknown kinds, a port whose master is not a bridge of the plan (the
// agent never adds ports to a bridge it does not own).
func checkPlan(plan sdn.Plan) error {
	bridges := map[string]bool{}
	for _, l := range plan.Links {
		if l.Kind == sdn.LinkBridge {
			bridges[l.Name] = true
		}
	}
	seen := map[string]bool{}
	for _, l := range plan.Links {
		if err := checkLink(l, seen, bridges); err != nil {
			return fmt.Errorf("%w: link %q: %s", ErrInvalidPlan, l.Name, err)
		}
		seen[l.Name] = true
	}
	return nil
}

func checkLink(l sdn.Link, seen, bridges map[string]bool) error {
	switch {
	case l.Name == "" || len(l.Name) > unix.IFNAMSIZ-1:
		return errors.New("name must be 1-15 characters")
	case seen[l.Name]:
		return errors.New("named twice")
	case !strings.HasPrefix(l.Alias, sdn.AliasPrefix):
		return fmt.Errorf("alias %q does not start with %q", l.Alias, sdn.AliasPrefix)
	case l.Master != "" && !bridges[l.Master]:
		return fmt.Errorf("master %q is not a bridge of the plan", l.Master)
	}
	switch l.Kind {
	case sdn.LinkBridge:
		if l.Master != "" {
			return errors.New("a bridge has no master")
		}
	case sdn.LinkVXLAN:
		if l.VNI < 1 || l.VNI > 1<<24-1 {
			return fmt.Errorf("vni %d out of range", l.VNI)
		}
	case sdn.LinkVLAN:
		if l.VLAN < 1 || l.VLAN > 4094 || l.Parent == "" {
			return fmt.Errorf("vlan %d on parent %q", l.VLAN, l.Parent)
		}
	default:
		return fmt.Errorf("kind %q", l.Kind)
	}
	return nil
}

// ordered returns links with the bridges first, so ports find their
// masters whatever the plan's order.
func ordered(links []sdn.Link) []sdn.Link {
	out := make([]sdn.Link, 0, len(links))
	for _, l := range links {
		if l.Kind == sdn.LinkBridge {
			out = append(out, l)
		}
	}
	for _, l := range links {
		if l.Kind != sdn.LinkBridge {
			out = append(out, l)
		}
	}
	return out
}

// load reads the namespace's links, addresses and, when plan has VXLAN
// links, forwarding entries, and finds the protected links: the
// management interface and every link holding a protected address.
func (p *pass) load(plan sdn.Plan) error {
	links, bropts, err := dump2(p.k.linkDump)
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	p.bropts = bropts
	p.links = make(map[string]netlink.Link, len(links))
	byIndex := make(map[int]string, len(links))
	for _, l := range links {
		p.links[l.Attrs().Name] = l
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return p.k.h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	p.addrs = make(map[int][]netip.Prefix)
	for _, a := range addrs {
		if pfx, ok := prefixOf(a); ok {
			p.addrs[a.LinkIndex] = append(p.addrs[a.LinkIndex], pfx)
		}
	}
	if slices.ContainsFunc(plan.Links, func(l sdn.Link) bool { return l.Kind == sdn.LinkVXLAN }) {
		entries, err := dump(func() ([]netlink.Neigh, error) { return p.k.h.NeighList(0, unix.AF_BRIDGE) })
		if err != nil {
			return fmt.Errorf("list fdb: %w", err)
		}
		p.fdb = make(map[int][]netlink.Neigh)
		for _, n := range entries {
			if slices.Equal(n.HardwareAddr, zeroMAC) {
				p.fdb[n.LinkIndex] = append(p.fdb[n.LinkIndex], n)
			}
		}
	}
	p.guarded = map[string]string{}
	if m := p.k.cfg.Management; m != "" {
		p.guarded[m] = "the management interface"
	}
	for index, pfxs := range p.addrs {
		for _, pfx := range pfxs {
			for _, pa := range p.k.cfg.ProtectAddrs {
				if pfx.Addr() == pa.Unmap() {
					if name, ok := byIndex[index]; ok {
						p.guarded[name] = "holding protected address " + pa.String()
					}
				}
			}
		}
	}
	return nil
}

// checkOwnership refuses a plan naming a link the agent may not touch.
func (p *pass) checkOwnership(plan sdn.Plan) error {
	for _, l := range plan.Links {
		if why, ok := p.guarded[l.Name]; ok {
			return fmt.Errorf("link %q %w (%s)", l.Name, ErrProtected, why)
		}
		cur, ok := p.links[l.Name]
		if ok && !managed(cur) {
			return fmt.Errorf("link %q %w (alias %q): refusing to take it over", l.Name, ErrUnmanaged, cur.Attrs().Alias)
		}
	}
	return nil
}

// managed reports whether a link carries Moxxie's alias.
func managed(l netlink.Link) bool {
	return strings.HasPrefix(l.Attrs().Alias, sdn.AliasPrefix)
}

// dump runs a netlink dump, retrying when the kernel reports it was
// interrupted by a concurrent change.
func dump[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 10 {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// dump2 is dump for a dump returning two values.
func dump2[T, U any](f func() (T, U, error)) (T, U, error) {
	var (
		v   T
		w   U
		err error
	)
	for range 10 {
		v, w, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, w, err
		}
	}
	return v, w, err
}
