package proxmox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	goproxmox "github.com/luthermonson/go-proxmox"

	"github.com/moxxie/moxxie/provider"
)

// Provider implements provider.Provider for one Proxmox VE cluster.
// It is safe for concurrent use.
type Provider struct {
	client *goproxmox.Client
	tr     *transport
	// hc, base and auth make the requests the client library decodes too
	// slowly for large answers (see resources).
	hc     *http.Client
	base   string
	auth   string
	secret string
	poll   time.Duration
	log    *slog.Logger
}

var _ provider.Provider = (*Provider)(nil)

// New validates cfg and returns a Provider for it. It makes no request.
func New(cfg Config) (*Provider, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       s.tls,
	}
	tr := &transport{
		base:        base,
		timeout:     s.timeout,
		retries:     s.retries,
		backoffBase: 250 * time.Millisecond,
		backoffMax:  5 * time.Second,
		prefix:      apiSuffix,
		secret:      s.secret,
		log:         s.log,
		tracer:      s.tracer,
		tracing:     s.tracing,
	}
	client := goproxmox.NewClient(s.baseURL,
		goproxmox.WithHTTPClient(&http.Client{Transport: tr}),
		goproxmox.WithAPIToken(s.tokenID, s.secret),
		goproxmox.WithUserAgent("moxxie"),
		goproxmox.WithLogger(&libLogger{log: s.log, secret: s.secret}),
	)
	return &Provider{
		client: client, tr: tr, secret: s.secret, poll: s.taskPoll, log: s.log,
		hc: &http.Client{Transport: tr}, base: s.baseURL, auth: "PVEAPIToken=" + s.tokenID + "=" + s.secret,
	}, nil
}

// Name returns "proxmox".
func (p *Provider) Name() string { return "proxmox" }

// fail wraps the error of operation op. Errors from the transport already
// wrap a provider sentinel; anything else (an answer that cannot be
// decoded) is reported as ErrUnavailable. The token secret is removed
// from the message in every case.
func (p *Provider) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if !classified(err) {
		err = fmt.Errorf("unexpected answer: %w: %w", err, provider.ErrUnavailable)
	}
	err = fmt.Errorf("proxmox: %s: %w", op, err)
	if msg := err.Error(); strings.Contains(msg, p.secret) {
		return &redactedError{msg: redactSecret(msg, p.secret), err: err}
	}
	return err
}

// classified reports whether err already carries a provider sentinel or
// the caller's context error.
func classified(err error) bool {
	for _, s := range []error{provider.ErrNotFound, provider.ErrUnavailable, provider.ErrRejected,
		provider.ErrUnauthorized, provider.ErrTaskFailed, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// redactedError is an error whose message had the token secret removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// reject returns an error for a request refused before it was sent.
func reject(op, format string, args ...any) error {
	return fmt.Errorf("proxmox: %s: %s: %w", op, fmt.Sprintf(format, args...), provider.ErrRejected)
}

// checkRef validates a guest reference.
func checkRef(op string, ref provider.GuestRef) error {
	if ref.Node == "" {
		return reject(op, "guest reference has no node")
	}
	if ref.VMID <= 0 {
		return reject(op, "guest reference has no VMID")
	}
	if ref.Kind != provider.KindVM && ref.Kind != provider.KindContainer {
		return reject(op, "unknown guest kind %q", ref.Kind)
	}
	return nil
}

// refName names a guest in error messages, e.g. "qemu/100 on pve1".
func refName(ref provider.GuestRef) string {
	return fmt.Sprintf("%s/%d on %s", ref.Kind, ref.VMID, ref.Node)
}

// nodePath returns the API path of a node.
func nodePath(node string) string {
	return "/nodes/" + url.PathEscape(node)
}

// guestPath returns the API path of a guest, /nodes/{node}/{qemu|lxc}/{vmid}.
func guestPath(ref provider.GuestRef) string {
	return fmt.Sprintf("%s/%s/%d", nodePath(ref.Node), ref.Kind, ref.VMID)
}

// Cluster describes the cluster from /cluster/status and the Proxmox VE
// version from /version. A node that is not part of a cluster reports an
// empty name and is quorate.
func (p *Provider) Cluster(ctx context.Context) (provider.ClusterInfo, error) {
	const op = "cluster status"
	var entries []struct {
		Type    string  `json:"type"`
		Name    string  `json:"name"`
		Quorate pveBool `json:"quorate"`
		Nodes   pveInt  `json:"nodes"`
	}
	if err := p.client.Get(ctx, "/cluster/status", &entries); err != nil {
		return provider.ClusterInfo{}, p.fail(op, err)
	}
	var version struct {
		Version string `json:"version"`
	}
	if err := p.client.Get(ctx, "/version", &version); err != nil {
		return provider.ClusterInfo{}, p.fail(op, err)
	}
	info := provider.ClusterInfo{Quorate: true, Version: version.Version}
	nodes := 0
	for _, e := range entries {
		switch e.Type {
		case "cluster":
			info.Name = e.Name
			info.Quorate = bool(e.Quorate)
			info.Nodes = int(e.Nodes)
		case "node":
			nodes++
		}
	}
	if info.Nodes == 0 {
		info.Nodes = nodes
	}
	return info, nil
}

// resource is one entry of /cluster/resources.
type resource struct {
	Type       string   `json:"type"`
	Node       string   `json:"node"`
	Name       string   `json:"name"`
	Status     string   `json:"status"`
	VMID       pveInt   `json:"vmid"`
	Template   pveBool  `json:"template"`
	Tags       string   `json:"tags"`
	Pool       string   `json:"pool"`
	Lock       string   `json:"lock"`
	CPU        pveFloat `json:"cpu"`
	MaxCPU     pveFloat `json:"maxcpu"`
	Mem        pveUint  `json:"mem"`
	MaxMem     pveUint  `json:"maxmem"`
	Disk       pveUint  `json:"disk"`
	MaxDisk    pveUint  `json:"maxdisk"`
	Uptime     pveUint  `json:"uptime"`
	Storage    string   `json:"storage"`
	PluginType string   `json:"plugintype"`
	Content    string   `json:"content"`
	Shared     pveBool  `json:"shared"`
}

func (r resource) node() provider.Node {
	return provider.Node{
		Name: r.Node, Status: r.Status,
		CPU: float64(r.CPU), MaxCPU: int(math.Round(float64(r.MaxCPU))),
		Mem: uint64(r.Mem), MaxMem: uint64(r.MaxMem),
		Disk: uint64(r.Disk), MaxDisk: uint64(r.MaxDisk),
		Uptime: uint64(r.Uptime),
	}
}

func (r resource) guest() provider.Guest {
	return provider.Guest{
		GuestRef: provider.GuestRef{Node: r.Node, VMID: int(r.VMID), Kind: provider.GuestKind(r.Type)},
		Name:     r.Name, Status: r.Status, Template: bool(r.Template),
		Tags: splitList(r.Tags), Pool: r.Pool, Lock: r.Lock,
		CPU: float64(r.CPU), MaxCPU: int(math.Round(float64(r.MaxCPU))),
		Mem: uint64(r.Mem), MaxMem: uint64(r.MaxMem),
		Disk: uint64(r.Disk), MaxDisk: uint64(r.MaxDisk),
		Uptime: uint64(r.Uptime),
	}
}

func (r resource) storage() provider.Storage {
	return provider.Storage{
		Node: r.Node, Name: r.Storage, Type: r.PluginType,
		Content: splitList(r.Content), Shared: bool(r.Shared), Status: r.Status,
		Used: uint64(r.Disk), Total: uint64(r.MaxDisk),
	}
}

// resources reads /cluster/resources, of one type when typ is not empty.
func (p *Provider) resources(ctx context.Context, typ string) ([]resource, error) {
	// One request and one streaming decode into exact field names: the
	// client library decodes every answer twice and matches fields
	// case-insensitively, which for 10,000 guests costs several times
	// more CPU than the whole rest of a sync.
	path := "/cluster/resources"
	if typ != "" {
		path += "?type=" + url.QueryEscape(typ)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", p.auth)
	req.Header.Set("Accept", "application/json")
	res, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	rs, err := decodeResources(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return rs, nil
}

// Inventory reads nodes, guests and storage in one request to
// /cluster/resources. The lists are sorted by node, then VMID or name.
func (p *Provider) Inventory(ctx context.Context) (provider.Inventory, error) {
	rs, err := p.resources(ctx, "")
	if err != nil {
		return provider.Inventory{}, p.fail("inventory", err)
	}
	inv := provider.Inventory{Nodes: []provider.Node{}, Guests: []provider.Guest{}, Storage: []provider.Storage{}}
	for _, r := range rs {
		switch r.Type {
		case "node":
			inv.Nodes = append(inv.Nodes, r.node())
		case "qemu", "lxc":
			inv.Guests = append(inv.Guests, r.guest())
		case "storage":
			inv.Storage = append(inv.Storage, r.storage())
		}
	}
	slices.SortFunc(inv.Nodes, func(a, b provider.Node) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(inv.Guests, func(a, b provider.Guest) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return a.VMID - b.VMID
	})
	slices.SortFunc(inv.Storage, func(a, b provider.Storage) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return inv, nil
}

// Nodes lists the cluster's nodes from /nodes, sorted by name.
func (p *Provider) Nodes(ctx context.Context) ([]provider.Node, error) {
	ns, err := p.client.Nodes(ctx)
	if err != nil {
		return nil, p.fail("list nodes", err)
	}
	out := make([]provider.Node, 0, len(ns))
	for _, n := range ns {
		if n == nil {
			continue
		}
		out = append(out, provider.Node{
			Name: n.Node, Status: n.Status,
			CPU: n.CPU, MaxCPU: n.MaxCPU,
			Mem: n.Mem, MaxMem: n.MaxMem,
			Disk: n.Disk, MaxDisk: n.MaxDisk,
			Uptime: n.Uptime,
		})
	}
	slices.SortFunc(out, func(a, b provider.Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Guest reads one guest's state from its status/current. Proxmox does not
// report the pool there, so Pool stays empty; Inventory has it.
func (p *Provider) Guest(ctx context.Context, ref provider.GuestRef) (provider.Guest, error) {
	op := "read guest " + refName(ref)
	if err := checkRef(op, ref); err != nil {
		return provider.Guest{}, err
	}
	var st struct {
		Name      string   `json:"name"`
		Status    string   `json:"status"`
		QMPStatus string   `json:"qmpstatus"`
		Template  pveBool  `json:"template"`
		Tags      string   `json:"tags"`
		Lock      string   `json:"lock"`
		CPU       pveFloat `json:"cpu"`
		CPUs      pveFloat `json:"cpus"`
		MaxCPU    pveFloat `json:"maxcpu"`
		Mem       pveUint  `json:"mem"`
		MaxMem    pveUint  `json:"maxmem"`
		Disk      pveUint  `json:"disk"`
		MaxDisk   pveUint  `json:"maxdisk"`
		Uptime    pveUint  `json:"uptime"`
	}
	if err := p.client.Get(ctx, guestPath(ref)+"/status/current", &st); err != nil {
		return provider.Guest{}, p.fail(op, err)
	}
	status := st.Status
	if status == "running" && st.QMPStatus != "" && st.QMPStatus != "running" {
		status = st.QMPStatus
	}
	maxCPU := st.CPUs
	if maxCPU == 0 {
		maxCPU = st.MaxCPU
	}
	return provider.Guest{
		GuestRef: ref,
		Name:     st.Name, Status: status, Template: bool(st.Template),
		Tags: splitList(st.Tags), Lock: st.Lock,
		CPU: float64(st.CPU), MaxCPU: int(math.Round(float64(maxCPU))),
		Mem: uint64(st.Mem), MaxMem: uint64(st.MaxMem),
		Disk: uint64(st.Disk), MaxDisk: uint64(st.MaxDisk),
		Uptime: uint64(st.Uptime),
	}, nil
}

// GuestConfig reads a guest's configuration. Numbers keep their JSON
// spelling, flags read 1 or 0, and values such as sshkeys stay encoded as
// Proxmox stores them.
func (p *Provider) GuestConfig(ctx context.Context, ref provider.GuestRef) (map[string]string, error) {
	op := "read config of " + refName(ref)
	if err := checkRef(op, ref); err != nil {
		return nil, err
	}
	cfg, err := p.guestConfig(ctx, ref)
	if err != nil {
		return nil, p.fail(op, err)
	}
	return cfg, nil
}

// guestConfig reads a guest's configuration without wrapping errors.
func (p *Provider) guestConfig(ctx context.Context, ref provider.GuestRef) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := p.client.Get(ctx, guestPath(ref)+"/config", &raw); err != nil {
		return nil, err
	}
	return configValues(raw), nil
}

// NextID asks the cluster for a free VMID. Another caller may take it
// before it is used; creating or cloning to a taken VMID is rejected.
func (p *Provider) NextID(ctx context.Context) (int, error) {
	var id pveInt
	if err := p.client.Get(ctx, "/cluster/nextid", &id); err != nil {
		return 0, p.fail("next VMID", err)
	}
	if id <= 0 {
		return 0, p.fail("next VMID", fmt.Errorf("invalid VMID %d", id))
	}
	return int(id), nil
}

// libLogger hands go-proxmox's log lines to slog, at debug level except
// for its errors, with the token secret removed.
type libLogger struct {
	log    *slog.Logger
	secret string
}

func (l *libLogger) emit(level slog.Level, format string, v ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, redactSecret("go-proxmox: "+fmt.Sprintf(format, v...), l.secret))
}

// Debugf logs at debug level.
func (l *libLogger) Debugf(format string, v ...any) { l.emit(slog.LevelDebug, format, v...) }

// Infof logs at debug level; the library's info lines are chatter to us.
func (l *libLogger) Infof(format string, v ...any) { l.emit(slog.LevelDebug, format, v...) }

// Warnf logs at warning level.
func (l *libLogger) Warnf(format string, v ...any) { l.emit(slog.LevelWarn, format, v...) }

// Errorf logs at error level.
func (l *libLogger) Errorf(format string, v ...any) { l.emit(slog.LevelError, format, v...) }
