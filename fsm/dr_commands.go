package fsm

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moxxie/moxxie/ipam"
)

// DRPlanPutRequest creates (Create) or replaces a DR plan at its source
// site. LocalSite is the site of the server that proposed it.
type DRPlanPutRequest struct {
	WriteMeta
	Plan      DRPlan
	Create    bool
	LocalSite string
}

// DRPlanDeleteRequest removes a plan, or a replica the recovery site no
// longer needs.
type DRPlanDeleteRequest struct {
	WriteMeta
	ID string
}

// DRReplicaSyncRequest replaces the replicas the source site Source
// keeps at this site (LocalSite) with Plans: new and changed plans are
// stored, plans the source no longer has are removed. A replica that
// failed over keeps the version it failed over with; a newer one is
// recorded as a conflict.
type DRReplicaSyncRequest struct {
	WriteMeta
	Source    string
	LocalSite string
	Plans     []DRPlan
	// ConflictIDs are IDs stamped by the leader, one per plan, for the
	// conflicts the sync may record.
	ConflictIDs []string
}

// DRRunStartRequest starts a failover, drill or failback of a plan:
// Run is the operation (its ID stamped by the leader), Kind its kind,
// Items one per guest.
type DRRunStartRequest struct {
	WriteMeta
	Plan    string
	Kind    string
	Trigger string
	// Keep leaves a drill's guests running, for inspection.
	Keep  bool
	Run   Operation
	Items []DRItem
}

// DRItemUpdateRequest moves an item of a run to Step, recording what it
// learned; empty fields are left alone.
type DRItemUpdateRequest struct {
	WriteMeta
	Run        string
	Order      int
	VMID       int
	Step       string
	TargetVMID int
	TargetNode string
	Task       string
	TaskNode   string
	Address    string
	Backup     string
	Error      string
	// Network, on a failback item, is its original's network
	// configuration (DRItem.Network), recorded before the copy is
	// restored over it. It carries a mark (needsRules): a server of a
	// version that does not know it halts on the command rather than
	// drop it.
	Network map[string]string `codec:",omitempty"`
}

func (r *DRItemUpdateRequest) needsRules() bool { return len(r.Network) > 0 }

// DRFenceRequest records at the source site that the recovery site
// failed a plan over (Fence), with the conflicts found when fencing, or
// lifts the fence (nil) when a failback has run.
type DRFenceRequest struct {
	WriteMeta
	Plan      string
	Fence     *DRFence
	Conflicts []DRConflict
}

// DRIsolationRequest moves a plan's isolated fence (DRFence.Isolated)
// through its life at the source site: Action is one of the
// DRIsolation constants, VMIDs the guests stopped or restarted, By who
// lifts it. It never touches the fence of a known failover: such a
// fence is only turned into, never replaced by, an isolated one.
type DRIsolationRequest struct {
	WriteMeta
	Plan   string
	Action string
	VMIDs  []int
	By     string
}

// DRFailoverEndRequest ends a plan's failover at the recovery site once
// its guests went back: the plan may fail over again.
type DRFailoverEndRequest struct {
	WriteMeta
	Plan string
}

// DRRunRetryRequest runs a plan's failed failover again at the recovery
// site: its guests that failed go back to the last step they are known
// to have reached, the others (running copies) are left alone.
type DRRunRetryRequest struct {
	WriteMeta
	Plan string
}

// Type returns DRRunRetryType.
func (*DRRunRetryRequest) Type() MessageType { return DRRunRetryType }

// Type returns DRPlanPutType.
func (*DRPlanPutRequest) Type() MessageType { return DRPlanPutType }

// Type returns DRPlanDeleteType.
func (*DRPlanDeleteRequest) Type() MessageType { return DRPlanDeleteType }

// Type returns DRReplicaSyncType.
func (*DRReplicaSyncRequest) Type() MessageType { return DRReplicaSyncType }

// Type returns DRRunStartType.
func (*DRRunStartRequest) Type() MessageType { return DRRunStartType }

// Type returns DRItemUpdateType.
func (*DRItemUpdateRequest) Type() MessageType { return DRItemUpdateType }

// Type returns DRFenceType.
func (*DRFenceRequest) Type() MessageType { return DRFenceType }

// Type returns DRFailoverEndType.
func (*DRFailoverEndRequest) Type() MessageType { return DRFailoverEndType }

// Type returns DRIsolationType.
func (*DRIsolationRequest) Type() MessageType { return DRIsolationType }

// Validate checks the action and the guests.
func (r *DRIsolationRequest) Validate() error {
	switch r.Action {
	case DRIsolationFence, DRIsolationLift, DRIsolationEnd:
		if len(r.VMIDs) > 0 {
			return fieldErrf("vmids", ErrInvalid, "action %s takes no guests", r.Action)
		}
	case DRIsolationStopped, DRIsolationRestarted:
		if len(r.VMIDs) == 0 {
			return fieldErrf("vmids", ErrInvalid, "action %s names the guests", r.Action)
		}
		for _, v := range r.VMIDs {
			if v <= 0 {
				return fieldErrf("vmids", ErrInvalid, "vmid %d is not a guest ID", v)
			}
		}
	default:
		return fieldErrf("action", ErrInvalid, "unknown isolation action %q", r.Action)
	}
	if r.Action == DRIsolationLift && r.By == "" {
		return fieldErrf("by", ErrInvalid, "a lift names who lifts the fence")
	}
	return nil
}

var (
	// drPlanIDRe is a plan ID.
	drPlanIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	// drSiteRe is a site name (package site's rule).
	drSiteRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	// drNodeRe is a Proxmox node name.
	drNodeRe = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
	// drBridgeRe is a Linux bridge or a Proxmox vnet name.
	drBridgeRe = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$`)
)

// MaxDRGuests bounds the guests of one plan.
const MaxDRGuests = 500

// ValidDRPlanID reports whether s is a DR plan ID.
func ValidDRPlanID(s string) bool { return drPlanIDRe.MatchString(s) }

// Validate checks the plan.
func (p *DRPlan) Validate() error {
	if !drPlanIDRe.MatchString(p.ID) {
		return fieldErrf("id", ErrInvalid, "plan id %q is not 1-40 lowercase letters, digits or dashes", p.ID)
	}
	if !drSiteRe.MatchString(p.SourceSite) {
		return fieldErrf("source_site", ErrInvalid, "%q is not a site name", p.SourceSite)
	}
	if !drSiteRe.MatchString(p.RecoverySite) {
		return fieldErrf("recovery_site", ErrInvalid, "%q is not a site name", p.RecoverySite)
	}
	if p.RecoverySite == p.SourceSite {
		return fieldErrf("recovery_site", ErrInvalid, "the recovery site must be another site than %s", p.SourceSite)
	}
	if !ValidStorageName(p.BackupStorage) {
		return fieldErrf("backup_storage", ErrInvalid, "%q is not a storage ID", p.BackupStorage)
	}
	if !ValidStorageName(p.TargetStorage) {
		return fieldErrf("target_storage", ErrInvalid, "%q is not a storage ID", p.TargetStorage)
	}
	if p.TargetNode != "" && !drNodeRe.MatchString(p.TargetNode) {
		return fieldErrf("target_node", ErrInvalid, "%q is not a node name", p.TargetNode)
	}
	if p.RPO != "" {
		d, err := time.ParseDuration(p.RPO)
		if err != nil || d < time.Minute || d > 366*24*time.Hour {
			return fieldErrf("rpo", ErrInvalid, "rpo %q is not a duration from 1m to 8784h, such as 4h or 26h", p.RPO)
		}
	}
	if len(p.Guests) == 0 || len(p.Guests) > MaxDRGuests {
		return fieldErrf("guests", ErrInvalid, "a plan protects 1 to %d guests, not %d", MaxDRGuests, len(p.Guests))
	}
	vmids, targets, names := map[int]bool{}, map[int]bool{}, map[string]bool{}
	for i, g := range p.Guests {
		f := func(s string) string { return "guests[" + strconv.Itoa(i) + "]." + s }
		if g.VMID < MinVMID || g.VMID > MaxVMID || vmids[g.VMID] {
			return fieldErrf(f("vmid"), ErrInvalid, "vmid %d is out of range or listed twice", g.VMID)
		}
		vmids[g.VMID] = true
		if g.Order < 0 || g.Order > 999999 {
			return fieldErrf(f("order"), ErrInvalid, "order must be 0 to 999999")
		}
		if g.TargetVMID != 0 && (g.TargetVMID < MinVMID || g.TargetVMID > MaxVMID || targets[g.TargetVMID]) {
			return fieldErrf(f("target_vmid"), ErrInvalid, "target vmid %d is out of range or listed twice", g.TargetVMID)
		}
		targets[g.TargetVMID] = g.TargetVMID != 0
		if g.DNSName != "" {
			if err := ipam.ValidHostname(g.DNSName); err != nil {
				return fieldErrf(f("dns_name"), ErrInvalid, "%v", err)
			}
			if names[g.DNSName] {
				return fieldErrf(f("dns_name"), ErrInvalid, "dns name %s is listed twice", g.DNSName)
			}
			names[g.DNSName] = true
		}
	}
	sources := map[string]bool{}
	for i, n := range p.Networks {
		f := func(s string) string { return "networks[" + strconv.Itoa(i) + "]." + s }
		if !drBridgeRe.MatchString(n.Source) || sources[n.Source] {
			return fieldErrf(f("source"), ErrInvalid, "%q is not a bridge or vnet name, or is mapped twice", n.Source)
		}
		sources[n.Source] = true
		if !drBridgeRe.MatchString(n.Target) {
			return fieldErrf(f("target"), ErrInvalid, "%q is not a bridge or vnet name", n.Target)
		}
		if len(n.Prefix) > 64 {
			return fieldErrf(f("prefix"), ErrInvalid, "prefix is longer than 64 bytes")
		}
	}
	if len(names) > 0 && !slices.ContainsFunc(p.Networks, func(n DRNetwork) bool { return n.Prefix != "" }) {
		return fieldErrf("networks", ErrInvalid, "guests with a dns_name need a network mapped to a prefix of the recovery site")
	}
	return nil
}

// Validate checks the request.
func (r *DRPlanPutRequest) Validate() error { return r.Plan.Validate() }

// Validate checks the sync.
func (r *DRReplicaSyncRequest) Validate() error {
	if !drSiteRe.MatchString(r.Source) {
		return fieldErrf("source", ErrInvalid, "%q is not a site name", r.Source)
	}
	if len(r.ConflictIDs) != len(r.Plans) {
		return fieldErrf("conflict_ids", ErrInvalid, "one conflict ID per plan")
	}
	for i := range r.Plans {
		if err := r.Plans[i].Validate(); err != nil {
			return err
		}
		if r.Plans[i].SourceSite != r.Source {
			return fieldErrf("source_site", ErrInvalid, "plan %s is not of site %s", r.Plans[i].ID, r.Source)
		}
	}
	return nil
}

// Validate checks the run.
func (r *DRRunStartRequest) Validate() error {
	if drSteps[r.Kind] == nil {
		return fieldErrf("kind", ErrInvalid, "%q is not a DR run", r.Kind)
	}
	if r.Trigger != DRTriggerAutomatic && r.Trigger != DRTriggerManual {
		return fieldErrf("trigger", ErrInvalid, "trigger %q is not automatic or manual", r.Trigger)
	}
	if r.Run.ID == "" {
		return fieldErrf("id", ErrInvalid, "operation id is required")
	}
	seen := map[int]bool{}
	for _, it := range r.Items {
		if it.VMID < MinVMID || it.VMID > MaxVMID || seen[it.VMID] {
			return fieldErrf("items", ErrInvalid, "vmid %d is invalid or listed twice", it.VMID)
		}
		seen[it.VMID] = true
	}
	return nil
}

// Validate checks the update.
func (r *DRItemUpdateRequest) Validate() error {
	if err := checkDRNetworkConfig(r.Network); err != nil {
		return err
	}
	if r.Step == DRStepFailed && r.Error == "" {
		return fieldErrf("error", ErrInvalid, "a failed item needs an error")
	}
	if r.Step == "" || r.Step == DRStepPending {
		return fieldErrf("step", ErrInvalid, "step %q cannot be set", r.Step)
	}
	return nil
}

// checkDRNetworkConfig checks an original's recorded network
// configuration: netN and ipconfigN keys with values of at most 1,024
// bytes.
func checkDRNetworkConfig(conf map[string]string) error {
	if len(conf) > 2*maxGuestNICs {
		return fieldErrf("network", ErrInvalid, "%d keys: a guest has at most %d NICs", len(conf), maxGuestNICs)
	}
	for k, v := range conf {
		if !IsNetworkConfigKey(k) {
			return fieldErrf("network", ErrInvalid, "key %q is not netN or ipconfigN", k)
		}
		if v == "" || len(v) > 1024 {
			return fieldErrf("network", ErrInvalid, "key %s: a value of 1 to 1024 bytes is required", k)
		}
	}
	return nil
}

// maxGuestNICs is the number of netN slots Proxmox offers.
const maxGuestNICs = 32

// IsNetworkConfigKey reports whether k is a guest configuration key that
// holds its network settings: netN (N below 32) or ipconfigN.
func IsNetworkConfigKey(k string) bool {
	n, ok := strings.CutPrefix(k, "net")
	if !ok {
		n, ok = strings.CutPrefix(k, "ipconfig")
	}
	if !ok || n == "" || len(n) > 2 || (len(n) == 2 && n[0] == '0') || strings.Trim(n, "0123456789") != "" {
		return false
	}
	i, err := strconv.Atoi(n)
	return err == nil && i < maxGuestNICs
}
