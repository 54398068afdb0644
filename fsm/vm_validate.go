package fsm

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// VM limits, as Proxmox VE accepts them.
const (
	MaxVMCores   = 8192
	MinVMMemory  = 16 // MiB
	MaxVMNICs    = 32
	maxVMTags    = 32
	maxSSHKeys   = 32
	maxBridgeLen = 15 // IFNAMSIZ - 1
)

var (
	// vmNameRe is Proxmox's dns-name format for a VM name.
	vmNameRe = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)
	// tagRe is Proxmox's pve-tag format.
	tagRe = regexp.MustCompile(`^[a-z0-9_][a-z0-9_\-+.]*$`)
	// bridgeRe is a Linux interface name.
	bridgeRe = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$`)
	// storageRe is Proxmox's pve-storage-id format.
	storageRe = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]$`)
)

// Validate checks everything about a VM request that does not depend on
// the state, and normalizes names and tags. The API checks the rest
// (template, node, prefixes) against the inventory and IPAM.
func (v *VMSpec) Validate() error {
	if v.Name == "" {
		return fieldErrf("name", ErrInvalid, "name is required")
	}
	if len(v.Name) > 253 || !vmNameRe.MatchString(v.Name) {
		return fieldErrf("name", ErrInvalid, "name %q must be a DNS name: letters, digits and '-', in labels separated by '.'", v.Name)
	}
	if v.Cores < 1 || v.Cores > MaxVMCores {
		return fieldErrf("cores", ErrInvalid, "cores must be from 1 to %d, not %d", MaxVMCores, v.Cores)
	}
	if v.MemoryMiB < MinVMMemory {
		return fieldErrf("memory", ErrInvalid, "memory must be at least %d MiB, not %d", MinVMMemory, v.MemoryMiB)
	}
	if v.DiskGiB < 0 || v.DiskGiB > 1<<20 {
		return fieldErrf("disk", ErrInvalid, "disk must be from 0 to %d GiB, not %d", 1<<20, v.DiskGiB)
	}
	if v.TemplateVMID == 0 && v.DiskGiB == 0 {
		return fieldErrf("disk", ErrInvalid, "a VM without a template needs a disk size")
	}
	if v.Storage != "" && !storageRe.MatchString(v.Storage) {
		return fieldErrf("storage", ErrInvalid, "storage %q is not a storage ID", v.Storage)
	}
	if err := checkOptionalName("tenant", v.Tenant); err != nil {
		return err
	}
	if err := checkOptionalName("project", v.Project); err != nil {
		return err
	}
	if v.Project != "" && v.Tenant == "" {
		return fieldErrf("project", ErrInvalid, "a project needs its tenant")
	}
	if err := checkDescription(v.Description); err != nil {
		return err
	}
	if len(v.Tags) > maxVMTags {
		return fieldErrf("tags", ErrInvalid, "at most %d tags", maxVMTags)
	}
	for i, t := range v.Tags {
		t = strings.ToLower(t)
		if !tagRe.MatchString(t) || len(t) > 64 {
			return fieldErrf(fmt.Sprintf("tags[%d]", i), ErrInvalid, "tag %q must be letters, digits, '_', '-', '+' or '.'", t)
		}
		v.Tags[i] = t
	}
	if len(v.SSHKeys) > maxSSHKeys {
		return fieldErrf("ssh_keys", ErrInvalid, "at most %d keys", maxSSHKeys)
	}
	for i, k := range v.SSHKeys {
		if !strings.HasPrefix(k, "ssh-") && !strings.HasPrefix(k, "ecdsa-") && !strings.HasPrefix(k, "sk-") || strings.ContainsAny(k, "\n\r") {
			return fieldErrf(fmt.Sprintf("ssh_keys[%d]", i), ErrInvalid, "not an OpenSSH public key line")
		}
	}
	if len(v.NICs) > MaxVMNICs {
		return fieldErrf("nics", ErrInvalid, "at most %d NICs", MaxVMNICs)
	}
	for i := range v.NICs {
		if err := v.NICs[i].validate(fmt.Sprintf("nics[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (n *VMNIC) validate(f string) error {
	if n.Bridge == "" || len(n.Bridge) > maxBridgeLen || !bridgeRe.MatchString(n.Bridge) {
		return fieldErrf(f+".bridge", ErrInvalid, "bridge %q must be an interface name of 1-%d characters", n.Bridge, maxBridgeLen)
	}
	if n.VLAN < 0 || n.VLAN > 4094 {
		return fieldErrf(f+".vlan", ErrInvalid, "vlan must be from 1 to 4094 (0 or absent: untagged), not %d", n.VLAN)
	}
	if n.Address != "" {
		if n.PrefixID == "" {
			return fieldErrf(f+".address", ErrInvalid, "an address needs a prefix_id to allocate it from")
		}
		a, err := netip.ParseAddr(n.Address)
		if err != nil || a.Zone() != "" {
			return fieldErrf(f+".address", ErrInvalid, "%q is not an IP address", n.Address)
		}
		n.Address = a.String()
	}
	if n.DNSName != "" && n.PrefixID == "" {
		return fieldErrf(f+".dns_name", ErrInvalid, "a DNS name needs an address: give prefix_id")
	}
	name, err := normalHostname(f+".dns_name", n.DNSName)
	if err != nil {
		return err
	}
	n.DNSName = name
	return nil
}
