package pvesim

import (
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moxxie/moxxie/pvesim/schema"
)

var (
	// ErrNoSuchNode means the named node is not part of the simulated cluster.
	ErrNoSuchNode = errors.New("pvesim: no such node")
	// ErrNoSuchGuest means no guest has the given VMID.
	ErrNoSuchGuest = errors.New("pvesim: no such guest")
	// ErrInvalidUpdate means a test hook tried a change the simulator
	// cannot represent (a new VMID or kind, an unknown status).
	ErrInvalidUpdate = errors.New("pvesim: invalid guest update")
)

// defaultTaskDuration is the base duration of a task when Config leaves it
// zero; task kinds scale it (a stop takes half, a migration three times).
const defaultTaskDuration = 80 * time.Millisecond

// Config configures a simulator.
type Config struct {
	// Seed is the cluster to start with. Zero: DefaultSeed().
	Seed Seed
	// Faults are the faults injected from the start.
	Faults Faults
	// Tokens maps API token IDs ("root@pam!moxxie") to their secrets.
	Tokens map[string]string
	// Users maps user IDs ("root@pam") to passwords for ticket logins.
	Users map[string]string
	// TaskDuration is the base duration of a task. Zero: a short default.
	TaskDuration time.Duration
	// Logf receives one line per request and per finished task. Nil: silent.
	// Secrets are never logged.
	Logf func(format string, args ...any)
	// RandSeed seeds every random choice (MAC addresses, generated guests,
	// fault draws), so that runs are repeatable. Zero: 1.
	RandSeed uint64
}

// Route is one API route the simulator serves, in the schema's template
// form: Method "POST", Path "/nodes/{node}/qemu/{vmid}/status/start".
type Route struct{ Method, Path string }

// Sim is a simulated Proxmox VE cluster behind its HTTP API.
type Sim struct {
	cfg          Config
	schema       *schema.Schema
	handlers     map[Route]handler // immutable after New
	taskDuration time.Duration
	ticketKey    []byte
	csrfKey      []byte
	started      time.Time

	faultsV  atomic.Pointer[Faults]
	requests atomic.Uint64

	randMu sync.Mutex
	rnd    *mrand.Rand // guarded by randMu

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // task goroutines

	mu          sync.RWMutex
	epoch       uint64                    // guarded by mu; changes with every write, see lock
	clusterName string                    // guarded by mu
	nodes       []*node                   // guarded by mu; in seed order
	nodeByName  map[string]*node          // guarded by mu
	guests      map[int]*guest            // guarded by mu
	storage     []*storageConfig          // guarded by mu; storage.cfg order
	storageByID map[string]*storageConfig // guarded by mu
	sdn         sdnState                  // guarded by mu
	tasks       taskIndex                 // guarded by mu

	// backupStores are the backup storages in a directory
	// (Seed.BackupDirs). The slice is fixed once New returns; the stores
	// are guarded by mu.
	backupStores []*store
}

var loadSchema = sync.OnceValue(schema.Load)

// New builds a simulator from cfg.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Faults.validate(); err != nil {
		return nil, err
	}
	if cfg.RandSeed == 0 {
		cfg.RandSeed = 1
	}
	s := &Sim{
		cfg:          cfg,
		schema:       loadSchema(),
		taskDuration: cfg.TaskDuration,
		ticketKey:    randomBytes(32),
		csrfKey:      randomBytes(32),
		started:      time.Now(),
		rnd:          mrand.New(mrand.NewPCG(cfg.RandSeed, cfg.RandSeed^0x9e3779b97f4a7c15)),
		closed:       make(chan struct{}),
		nodeByName:   map[string]*node{},
		guests:       map[int]*guest{},
		storageByID:  map[string]*storageConfig{},
		tasks:        taskIndex{byUPID: map[string]*task{}, byNode: map[string][]*task{}},
	}
	if s.taskDuration <= 0 {
		s.taskDuration = defaultTaskDuration
	}
	s.SetFaults(cfg.Faults)
	s.tasks.nextPID = 1000 + uint32(s.randIntN(30000))
	s.sdn.init()
	s.handlers = s.routeTable()
	seed := cfg.Seed
	if seed.isZero() {
		seed = DefaultSeed()
	}
	if err := s.build(seed); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler serves the Proxmox VE API under /api2/json/ and the simulator's
// admin API under /pvesim/v1/.
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Routes lists the API routes the simulator serves.
func (s *Sim) Routes() []Route {
	routes := make([]Route, 0, len(s.handlers))
	for r := range s.handlers {
		routes = append(routes, r)
	}
	slices.SortFunc(routes, func(a, b Route) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return routes
}

// Requests is the number of API requests received so far.
func (s *Sim) Requests() uint64 { return s.requests.Load() }

// Close stops all running tasks (they end as interrupted) and releases
// requests held by the timeout fault. The handler keeps answering, but new
// tasks fail at once.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		s.lock()
		close(s.closed)
		s.unlock()
	})
	s.wg.Wait()
}

// SetNodeOnline takes a node offline or brings it back. An offline node's
// guests and storage show status unknown in cluster/resources, requests
// under /nodes/{node}/ answer 595, and cluster/status reports it offline.
// Losing the majority of nodes loses quorum: writes then fail.
func (s *Sim) SetNodeOnline(name string, online bool) error {
	s.lock()
	defer s.unlock()
	n := s.nodeByName[name]
	if n == nil {
		return fmt.Errorf("%w: %q", ErrNoSuchNode, name)
	}
	if online && !n.online {
		n.bootTime = time.Now()
		// A node coming back has rebooted: its guests are stopped.
		for _, g := range n.guests {
			g.running = false
		}
	}
	n.online = online
	return nil
}

// Guest is a copy of one simulated guest's state, for tests.
type Guest struct {
	VMID     int
	Node     string
	Type     string // "qemu" or "lxc"
	Name     string
	Status   string // "running" or "stopped"
	Template bool
	Lock     string
	Tags     []string
	Pool     string
	// Config is the guest configuration as Proxmox stores it (the keys
	// above included: name or hostname, tags, template, lock).
	Config map[string]string
}

func (s *Sim) guestView(g *guest) Guest {
	status := "stopped"
	if g.running {
		status = "running"
	}
	var tags []string
	if t := g.conf["tags"]; t != "" {
		tags = splitTags(t)
	}
	return Guest{
		VMID:     g.vmid,
		Node:     g.node.name,
		Type:     g.kind,
		Name:     g.name(),
		Status:   status,
		Template: g.template(),
		Lock:     g.lock(),
		Tags:     tags,
		Pool:     g.pool,
		Config:   cloneConf(g.conf),
	}
}

// Guests lists every guest, by VMID.
func (s *Sim) Guests() []Guest {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Guest, 0, len(s.guests))
	for _, g := range s.guests {
		out = append(out, s.guestView(g))
	}
	slices.SortFunc(out, func(a, b Guest) int { return a.VMID - b.VMID })
	return out
}

// UpdateGuest changes a guest behind the API's back, as an administrator
// clicking in the Proxmox UI would. fn gets a copy of the guest; the
// simulator then applies what fn changed: the Config map first, then the
// fields (Name, Tags, Template, Lock, Pool, Status, Node). Capacity is not
// checked. VMID and Type cannot change.
func (s *Sim) UpdateGuest(vmid int, fn func(g *Guest)) error {
	s.lock()
	defer s.unlock()
	g := s.guests[vmid]
	if g == nil {
		return fmt.Errorf("%w: %d", ErrNoSuchGuest, vmid)
	}
	before := s.guestView(g)
	after := s.guestView(g)
	fn(&after)
	if after.VMID != before.VMID || after.Type != before.Type {
		return fmt.Errorf("%w: VMID and type are fixed", ErrInvalidUpdate)
	}
	if after.Status != "running" && after.Status != "stopped" {
		return fmt.Errorf("%w: status %q", ErrInvalidUpdate, after.Status)
	}
	target := g.node
	if after.Node != before.Node {
		if target = s.nodeByName[after.Node]; target == nil {
			return fmt.Errorf("%w: %q", ErrNoSuchNode, after.Node)
		}
	}
	conf := cloneConf(after.Config)
	set := func(key, old, val string) {
		if val == old {
			return
		}
		if val == "" {
			delete(conf, key)
		} else {
			conf[key] = val
		}
	}
	set(g.nameKey(), before.Name, after.Name)
	set("tags", strings.Join(before.Tags, ";"), strings.Join(after.Tags, ";"))
	set("lock", before.Lock, after.Lock)
	if after.Template != before.Template {
		if after.Template {
			conf["template"] = "1"
		} else {
			delete(conf, "template")
		}
	}
	g.conf = conf
	g.pool = after.Pool
	if after.Status != before.Status {
		g.running = after.Status == "running"
		g.started = time.Now()
	}
	if target != g.node {
		delete(g.node.guests, vmid)
		g.node = target
		target.guests[vmid] = g
	}
	return nil
}

// RemoveGuest deletes a guest and its volumes behind the API's back.
func (s *Sim) RemoveGuest(vmid int) error {
	s.lock()
	defer s.unlock()
	g := s.guests[vmid]
	if g == nil {
		return fmt.Errorf("%w: %d", ErrNoSuchGuest, vmid)
	}
	s.removeGuest(g)
	return nil
}

// removeGuest drops g and every image volume it owns on its node's stores.
func (s *Sim) removeGuest(g *guest) {
	for _, st := range g.node.stores {
		for id, v := range st.vols {
			if v.vmid == g.vmid && (v.content == "images" || v.content == "rootdir") {
				delete(st.vols, id)
			}
		}
	}
	delete(g.node.guests, g.vmid)
	delete(s.guests, g.vmid)
}

// lock takes the write lock. Every write section changes the epoch (on
// entry and exit), which invalidates the guests' derived values (see
// guest.derived).
func (s *Sim) lock() {
	s.mu.Lock()
	s.epoch++
}

func (s *Sim) unlock() {
	s.epoch++
	s.mu.Unlock()
}

func (s *Sim) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

func (s *Sim) randIntN(n int) int {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.rnd.IntN(n)
}

func (s *Sim) randFloat() float64 {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.rnd.Float64()
}

// randomMAC returns a MAC address in the Proxmox OUI, as Proxmox assigns
// to new network devices.
func (s *Sim) randomMAC() string {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return fmt.Sprintf("BC:24:11:%02X:%02X:%02X", s.rnd.IntN(256), s.rnd.IntN(256), s.rnd.IntN(256))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func splitTags(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == ' ' })
}
