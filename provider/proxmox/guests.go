package proxmox

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	goproxmox "github.com/luthermonson/go-proxmox"

	"github.com/moxxie/moxxie/provider"
)

// Guest operations use the API paths directly: they have the same shape
// for virtual machines and containers, and go-proxmox can only address a
// container after reading it twice.

// CreateGuest creates a guest from spec on ref.Node with ref.VMID. A
// container needs its OS template volume in spec.OSTemplate.
func (p *Provider) CreateGuest(ctx context.Context, ref provider.GuestRef, spec provider.GuestSpec) (provider.Task, error) {
	op := "create " + refName(ref)
	if err := checkRef(op, ref); err != nil {
		return provider.Task{}, err
	}
	o, err := specOptions(ref.Kind, spec, nil)
	if err != nil {
		return provider.Task{}, rejectSpec(op, err)
	}
	node := (&goproxmox.Node{}).New(p.client, ref.Node)
	var task *goproxmox.Task
	if ref.Kind == provider.KindVM {
		vmOpts := make([]goproxmox.VirtualMachineOption, 0, len(o.set))
		for _, k := range sortedKeys(o.set) {
			vmOpts = append(vmOpts, goproxmox.VirtualMachineOption{Name: k, Value: o.set[k]})
		}
		task, err = node.NewVirtualMachine(ctx, ref.VMID, vmOpts...)
	} else {
		ctOpts := make([]goproxmox.ContainerOption, 0, len(o.set))
		for _, k := range sortedKeys(o.set) {
			ctOpts = append(ctOpts, goproxmox.ContainerOption{Name: k, Value: o.set[k]})
		}
		task, err = node.NewContainer(ctx, ref.VMID, ctOpts...)
	}
	if err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	var upid string
	if task != nil {
		upid = string(task.UPID)
	}
	return taskOf(upid, ref.Node), nil
}

// CloneGuest clones spec.Source to spec.NewID, on spec.Target when set.
// The clone gets spec.Spec's name, description and pool, and spec.Spec's
// storage for a full clone; the caller applies the rest of spec.Spec with
// ConfigureGuest once the returned task has ended.
func (p *Provider) CloneGuest(ctx context.Context, spec provider.CloneSpec) (provider.Task, error) {
	src := spec.Source
	op := fmt.Sprintf("clone %s to %d", refName(src), spec.NewID)
	if err := checkRef(op, src); err != nil {
		return provider.Task{}, err
	}
	if spec.NewID <= 0 {
		return provider.Task{}, reject(op, "NewID is required (see NextID)")
	}
	if spec.NewID == src.VMID {
		return provider.Task{}, reject(op, "NewID is the source's VMID")
	}
	body := map[string]any{"newid": spec.NewID}
	if spec.Target != "" && spec.Target != src.Node {
		body["target"] = spec.Target
	}
	if spec.Full {
		body["full"] = 1
		if spec.Spec.Storage != "" {
			body["storage"] = spec.Spec.Storage
		}
	}
	if spec.Spec.Name != "" {
		if src.Kind == provider.KindContainer {
			body["hostname"] = spec.Spec.Name
		} else {
			body["name"] = spec.Spec.Name
		}
	}
	if spec.Spec.Description != "" {
		body["description"] = spec.Spec.Description
	}
	if spec.Spec.Pool != "" {
		body["pool"] = spec.Spec.Pool
	}
	upid, err := p.post(ctx, guestPath(src)+"/clone", body)
	if err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	return taskOf(upid, src.Node), nil
}

// ConfigureGuest applies spec to an existing guest. It reads the current
// configuration first, so that NICs keep their MACs and options, and
// sends it with its digest, so that a concurrent change is refused rather
// than overwritten. NICs past the end of a non-empty spec.NICs are
// removed. Storage and DiskGiB only apply at creation and are ignored
// here. A pool change is made at once through /pools.
//
// Virtual machines are re-configured by a task; containers are
// re-configured synchronously, and the returned Task then has an empty ID,
// which WaitTask reports as done.
func (p *Provider) ConfigureGuest(ctx context.Context, ref provider.GuestRef, spec provider.GuestSpec) (provider.Task, error) {
	op := "configure " + refName(ref)
	if err := checkRef(op, ref); err != nil {
		return provider.Task{}, err
	}
	// Validate what needs no current configuration before any request.
	if _, err := specOptions(ref.Kind, spec, map[string]string{}); err != nil {
		return provider.Task{}, rejectSpec(op, err)
	}
	cur, err := p.guestConfig(ctx, ref)
	if err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	o, err := specOptions(ref.Kind, spec, cur)
	if err != nil {
		return provider.Task{}, rejectSpec(op, err)
	}
	if spec.Pool != "" {
		if err := p.setPool(ctx, ref, spec.Pool); err != nil {
			return provider.Task{}, p.fail(op, err)
		}
	}
	return p.sendConfig(ctx, op, ref, cur, o.changes(cur))
}

// SetGuestConfig sets the configuration keys of set on an existing guest
// and deletes those of del that it has, as they are given: values are
// Proxmox property strings (e.g. net0 "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=20").
// Keys whose value is already the one given are left out, and the change
// is sent with the digest of the configuration read, so that a concurrent
// change is refused rather than overwritten. Like ConfigureGuest, a
// container's change needs no task: the returned Task then has an empty
// ID.
func (p *Provider) SetGuestConfig(ctx context.Context, ref provider.GuestRef, set map[string]string, del []string) (provider.Task, error) {
	op := "configure " + refName(ref)
	if err := checkRef(op, ref); err != nil {
		return provider.Task{}, err
	}
	for k, v := range set {
		if !configKey.MatchString(k) {
			return provider.Task{}, reject(op, "invalid configuration key %q", k)
		}
		if v == "" {
			return provider.Task{}, reject(op, "configuration key %s has an empty value: delete it instead", k)
		}
	}
	for _, k := range del {
		if !configKey.MatchString(k) {
			return provider.Task{}, reject(op, "invalid configuration key %q", k)
		}
		if _, ok := set[k]; ok {
			return provider.Task{}, reject(op, "configuration key %s is both set and deleted", k)
		}
	}
	cur, err := p.guestConfig(ctx, ref)
	if err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	o := options{set: map[string]any{}}
	for k, v := range set {
		o.set[k] = v
	}
	for _, k := range del {
		if _, ok := cur[k]; ok {
			o.delete = append(o.delete, k)
		}
	}
	slices.Sort(o.delete)
	return p.sendConfig(ctx, op, ref, cur, o.changes(cur))
}

// sendConfig sends the changes to a guest's configuration cur, with its
// digest; no changes send nothing.
func (p *Provider) sendConfig(ctx context.Context, op string, ref provider.GuestRef, cur map[string]string, changes map[string]any) (provider.Task, error) {
	if len(changes) == 0 {
		return provider.Task{Node: ref.Node}, nil
	}
	if d := cur["digest"]; d != "" {
		changes["digest"] = d
	}
	var upid string
	var err error
	if ref.Kind == provider.KindVM {
		upid, err = p.post(ctx, guestPath(ref)+"/config", changes)
	} else {
		err = p.client.Put(ctx, guestPath(ref)+"/config", changes, &upid)
	}
	if err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	return taskOf(upid, ref.Node), nil
}

// configKey is the form of a guest configuration key.
var configKey = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// changes returns the parameters that differ from the current
// configuration cur, with the keys to delete under "delete".
func (o options) changes(cur map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range o.set {
		c, ok := cur[k]
		if ok && (c == fmt.Sprint(v) || k == "tags" && sameTags(c, fmt.Sprint(v))) {
			continue
		}
		out[k] = v
	}
	if len(o.delete) > 0 {
		out["delete"] = strings.Join(o.delete, ",")
	}
	return out
}

// sameTags reports whether two tag lists hold the same tags; Proxmox
// sorts them.
func sameTags(a, b string) bool {
	x, y := splitList(a), splitList(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// setPool moves a guest into pool unless it is there already.
func (p *Provider) setPool(ctx context.Context, ref provider.GuestRef, pool string) error {
	rs, err := p.resources(ctx, "vm")
	if err != nil {
		return err
	}
	for _, r := range rs {
		if int(r.VMID) == ref.VMID && r.Pool == pool {
			return nil
		}
	}
	err = p.client.Put(ctx, "/pools", map[string]any{
		"poolid": pool, "vms": strconv.Itoa(ref.VMID), "allow-move": 1,
	}, nil)
	if statusOf(err) == http.StatusNotImplemented {
		// Proxmox VE before 8.1 only has the per-pool path.
		err = p.client.Put(ctx, "/pools/"+url.PathEscape(pool), map[string]any{
			"vms": strconv.Itoa(ref.VMID), "allow-move": 1,
		}, nil)
	}
	return err
}

// StartGuest starts a guest.
func (p *Provider) StartGuest(ctx context.Context, ref provider.GuestRef) (provider.Task, error) {
	return p.guestTask(ctx, "start", ref, http.MethodPost, "/status/start", nil)
}

// StopGuest stops a guest at once.
func (p *Provider) StopGuest(ctx context.Context, ref provider.GuestRef) (provider.Task, error) {
	return p.guestTask(ctx, "stop", ref, http.MethodPost, "/status/stop", nil)
}

// ShutdownGuest asks the guest OS to shut down and stops the guest if it
// has not after timeout (rounded up to whole seconds; zero keeps
// Proxmox's default of 180 seconds).
func (p *Provider) ShutdownGuest(ctx context.Context, ref provider.GuestRef, timeout time.Duration) (provider.Task, error) {
	body := map[string]any{"forceStop": 1}
	if timeout < 0 {
		return provider.Task{}, reject("shut down "+refName(ref), "negative timeout")
	}
	if timeout > 0 {
		body["timeout"] = int(math.Ceil(timeout.Seconds()))
	}
	return p.guestTask(ctx, "shut down", ref, http.MethodPost, "/status/shutdown", body)
}

// DeleteGuest destroys a stopped guest and its disks, and purges it from
// backup jobs, replication and HA.
func (p *Provider) DeleteGuest(ctx context.Context, ref provider.GuestRef) (provider.Task, error) {
	return p.guestTask(ctx, "delete", ref, http.MethodDelete, "?purge=1&destroy-unreferenced-disks=1", nil)
}

// MigrateGuest moves a guest to target. A running virtual machine
// migrates live when online is set, with its local disks. Containers
// cannot migrate live: online restarts a running container on the target
// instead.
func (p *Provider) MigrateGuest(ctx context.Context, ref provider.GuestRef, target string, online bool) (provider.Task, error) {
	op := "migrate " + refName(ref) + " to " + target
	if target == "" {
		return provider.Task{}, reject(op, "no target node")
	}
	if target == ref.Node {
		return provider.Task{}, reject(op, "the guest is on the target already")
	}
	body := map[string]any{"target": target}
	if online {
		if ref.Kind == provider.KindContainer {
			body["restart"] = 1
		} else {
			body["online"] = 1
			body["with-local-disks"] = 1
		}
	}
	return p.guestTask(ctx, "migrate", ref, http.MethodPost, "/migrate", body)
}

// guestTask sends a request that starts a task on a guest.
func (p *Provider) guestTask(ctx context.Context, verb string, ref provider.GuestRef, method, suffix string, body map[string]any) (provider.Task, error) {
	op := verb + " " + refName(ref)
	if err := checkRef(op, ref); err != nil {
		return provider.Task{}, err
	}
	path := guestPath(ref) + suffix
	var upid string
	var err error
	switch method {
	case http.MethodPost:
		upid, err = p.post(ctx, path, body)
	case http.MethodDelete:
		err = p.client.Delete(ctx, path, &upid)
	default:
		return provider.Task{}, fmt.Errorf("proxmox: %s: unsupported method %s", op, method)
	}
	if err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	return taskOf(upid, ref.Node), nil
}

// post sends a POST whose answer is a UPID (or null). A nil body sends an
// empty JSON object, which Proxmox reads as no parameters.
func (p *Provider) post(ctx context.Context, path string, body map[string]any) (string, error) {
	if body == nil {
		body = map[string]any{}
	}
	var upid string
	err := p.client.Post(ctx, path, body, &upid)
	return upid, err
}

// sortedKeys returns the keys of m in order, so that requests are
// reproducible.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
