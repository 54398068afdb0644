package proxmox

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	goproxmox "github.com/luthermonson/go-proxmox"

	"github.com/moxxie/moxxie/provider"
)

// This file translates a provider.GuestSpec into Proxmox configuration
// keys. Virtual machines and containers name several things differently:
//
//	spec        qemu                              lxc
//	Name        name                              hostname
//	NICs[i]     net{i}  virtio=MAC,bridge=B,tag=T net{i} name=eth{i},bridge=B,hwaddr=MAC,tag=T,ip=..,gw=..
//	            ipconfig{i} ip=CIDR,gw=GW|ip=dhcp (the address is part of net{i})
//	SSHKeys     sshkeys (URL-encoded)             ssh-public-keys, at creation only
//	CIUser      ciuser                            (none)
//	Storage+Disk scsi0 STORAGE:GIB                rootfs STORAGE:GIB
//	OSType      ostype                            ostype
//	OSTemplate  (none)                            ostemplate, at creation only
//
// Cores, memory, tags ("a;b"), description, nameserver, searchdomain and
// pool use the same keys for both.

// specError is a GuestSpec that cannot be applied; it becomes ErrRejected.
type specError struct{ msg string }

func (e *specError) Error() string { return e.msg }

func specErrorf(format string, args ...any) error {
	return &specError{msg: fmt.Sprintf(format, args...)}
}

// qemuNICModels are the network card models QEMU guests accept.
var qemuNICModels = []string{
	"e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b",
	"i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3",
}

// tagPattern is the shape of a Proxmox guest tag.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_+.\-]*$`)

// maxNICs is the number of netN slots Proxmox offers.
const maxNICs = 32

// options is the set of configuration keys to send, plus the keys to
// delete.
type options struct {
	set    map[string]any
	delete []string
}

// specOptions translates spec for a guest of kind. current is the guest's
// present configuration when re-configuring and nil when creating; it
// supplies the MACs to keep and tells which surplus NICs to remove.
func specOptions(kind provider.GuestKind, spec provider.GuestSpec, current map[string]string) (options, error) {
	create := current == nil
	ct := kind == provider.KindContainer
	o := options{set: map[string]any{}}

	if spec.Name != "" {
		if ct {
			o.set["hostname"] = spec.Name
		} else {
			o.set["name"] = spec.Name
		}
	}
	if spec.Cores < 0 || spec.MemoryMiB < 0 || spec.DiskGiB < 0 {
		return o, specErrorf("cores, memory and disk must not be negative")
	}
	if spec.Cores > 0 {
		o.set["cores"] = spec.Cores
	}
	if spec.MemoryMiB > 0 {
		o.set["memory"] = spec.MemoryMiB
	}
	if len(spec.Tags) > 0 {
		for _, t := range spec.Tags {
			if !tagPattern.MatchString(t) {
				return o, specErrorf("invalid tag %q", t)
			}
		}
		o.set["tags"] = strings.Join(spec.Tags, ";")
	}
	if spec.Description != "" {
		o.set["description"] = spec.Description
	}
	if spec.Nameserver != "" {
		o.set["nameserver"] = spec.Nameserver
	}
	if spec.SearchDom != "" {
		o.set["searchdomain"] = spec.SearchDom
	}
	if create && spec.Pool != "" {
		o.set["pool"] = spec.Pool
	}

	for _, k := range spec.SSHKeys {
		if strings.TrimSpace(k) == "" || strings.ContainsAny(k, "\r\n") {
			return o, specErrorf("an SSH key must be one non-empty line")
		}
	}
	if ct {
		if spec.CIUser != "" {
			return o, specErrorf("containers have no cloud-init user (ciuser)")
		}
		if len(spec.SSHKeys) > 0 {
			if !create {
				return o, specErrorf("containers take SSH keys only at creation")
			}
			o.set["ssh-public-keys"] = strings.Join(spec.SSHKeys, "\n")
		}
	} else {
		if len(spec.SSHKeys) > 0 {
			o.set["sshkeys"] = goproxmox.EncodeSSHKeys(spec.SSHKeys...)
		}
		if spec.CIUser != "" {
			o.set["ciuser"] = spec.CIUser
		}
	}

	if spec.OSType != "" {
		o.set["ostype"] = spec.OSType
	}
	switch {
	case spec.OSTemplate != "" && !ct:
		return o, specErrorf("an OS template volume is for containers; a VM is cloned from a template guest")
	case ct && create && spec.OSTemplate == "":
		return o, specErrorf("creating a container needs its OS template volume in OSTemplate, e.g. local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst")
	case ct && create:
		o.set["ostemplate"] = spec.OSTemplate
	}

	if create {
		if spec.DiskGiB > 0 && spec.Storage == "" {
			return o, specErrorf("a disk size needs a storage")
		}
		if spec.Storage != "" {
			size := spec.DiskGiB
			if ct {
				if size == 0 {
					size = 8
				}
				o.set["rootfs"] = fmt.Sprintf("%s:%d", spec.Storage, size)
			} else if size > 0 {
				o.set["scsihw"] = "virtio-scsi-single"
				o.set["scsi0"] = fmt.Sprintf("%s:%d", spec.Storage, size)
				o.set["boot"] = "order=scsi0"
			}
		}
	}

	if len(spec.NICs) > maxNICs {
		return o, specErrorf("at most %d NICs", maxNICs)
	}
	for i, nic := range spec.NICs {
		key := "net" + strconv.Itoa(i)
		if nic.None {
			if nic != (provider.NIC{None: true}) {
				return o, specErrorf("NIC %d is none: it takes no settings", i)
			}
			if i == len(spec.NICs)-1 {
				return o, specErrorf("NIC %d is none: a gap must be followed by a NIC", i)
			}
			for _, k := range []string{"net", "ipconfig"} {
				if _, ok := current[k+strconv.Itoa(i)]; ok && !create {
					o.delete = append(o.delete, k+strconv.Itoa(i))
				}
			}
			continue
		}
		if ct {
			v, err := containerNIC(i, nic, current[key])
			if err != nil {
				return o, err
			}
			o.set[key] = v
		} else {
			v, err := vmNIC(nic, current[key])
			if err != nil {
				return o, err
			}
			o.set[key] = v
			if nic.KeepIP {
				continue
			}
			ipc, err := ipConfig(nic)
			if err != nil {
				return o, err
			}
			o.set["ipconfig"+strconv.Itoa(i)] = ipc
		}
	}
	if !create && len(spec.NICs) > 0 {
		// The spec lists all NICs: remove the ones past its end.
		for i := len(spec.NICs); i < maxNICs; i++ {
			for _, k := range []string{"net", "ipconfig"} {
				if _, ok := current[k+strconv.Itoa(i)]; ok {
					o.delete = append(o.delete, k+strconv.Itoa(i))
				}
			}
		}
	}

	if create && !ct && spec.Storage != "" && cloudInit(spec) {
		o.set["ide2"] = spec.Storage + ":cloudinit"
	}
	return o, nil
}

// cloudInit reports whether spec sets anything that cloud-init delivers.
func cloudInit(spec provider.GuestSpec) bool {
	return len(spec.NICs) > 0 || len(spec.SSHKeys) > 0 || spec.CIUser != "" ||
		spec.Nameserver != "" || spec.SearchDom != ""
}

// kv is one key=value item of a Proxmox property string.
type kv struct{ k, v string }

// parseProps splits a property string such as
// "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1".
func parseProps(s string) []kv {
	var out []kv
	for item := range strings.SplitSeq(s, ",") {
		if item == "" {
			continue
		}
		k, v, _ := strings.Cut(item, "=")
		out = append(out, kv{k, v})
	}
	return out
}

// vmNIC returns the net{i} value of a virtual machine's NIC. The MAC and
// model of the current value cur are kept unless nic sets them, and so are
// its other options (firewall, mtu, rate, queues, link_down).
func vmNIC(nic provider.NIC, cur string) (string, error) {
	if err := checkNIC(nic); err != nil {
		return "", err
	}
	var curModel, curMAC string
	var keep []string
	for _, p := range parseProps(cur) {
		switch {
		case slices.Contains(qemuNICModels, p.k):
			curModel, curMAC = p.k, p.v
		case p.k == "model":
			curModel = p.v
		case p.k == "macaddr":
			curMAC = p.v
		case p.k == "bridge" || p.k == "tag":
		default:
			keep = append(keep, p.k+"="+p.v)
		}
	}
	model := nic.Model
	if model == "" {
		model = curModel
	}
	if model == "" {
		model = "virtio"
	}
	if !slices.Contains(qemuNICModels, model) {
		return "", specErrorf("unknown NIC model %q", nic.Model)
	}
	mac := curMAC
	if nic.MAC != "" {
		mac = normalMAC(nic.MAC)
	}
	parts := []string{model}
	if mac != "" {
		parts[0] += "=" + mac
	}
	parts = append(parts, "bridge="+nic.Bridge)
	if nic.VLAN > 0 {
		parts = append(parts, "tag="+strconv.Itoa(nic.VLAN))
	}
	return strings.Join(append(parts, linkDown(keep, nic.LinkDown)...), ","), nil
}

// linkDown returns the options to keep, with link_down=1 when down.
func linkDown(keep []string, down bool) []string {
	if !down {
		return keep
	}
	keep = slices.DeleteFunc(keep, func(o string) bool { return strings.HasPrefix(o, "link_down=") })
	return append(keep, "link_down=1")
}

// containerNIC returns the net{i} value of a container's NIC, keeping the
// interface name, MAC and other options of the current value cur.
func containerNIC(i int, nic provider.NIC, cur string) (string, error) {
	if err := checkNIC(nic); err != nil {
		return "", err
	}
	if nic.Model != "" && nic.Model != "veth" {
		return "", specErrorf("containers have veth NICs, not %q", nic.Model)
	}
	name := "eth" + strconv.Itoa(i)
	var curMAC string
	var keep []string
	for _, p := range parseProps(cur) {
		switch p.k {
		case "name":
			name = p.v
		case "hwaddr":
			curMAC = p.v
		case "ip", "gw", "ip6", "gw6":
			if nic.KeepIP {
				keep = append(keep, p.k+"="+p.v)
			}
		case "bridge", "tag":
		default:
			keep = append(keep, p.k+"="+p.v)
		}
	}
	parts := []string{"name=" + name, "bridge=" + nic.Bridge}
	mac := curMAC
	if nic.MAC != "" {
		mac = normalMAC(nic.MAC)
	}
	if mac != "" {
		parts = append(parts, "hwaddr="+mac)
	}
	if nic.VLAN > 0 {
		parts = append(parts, "tag="+strconv.Itoa(nic.VLAN))
	}
	if !nic.KeepIP {
		addr, err := ipConfig(nic)
		if err != nil {
			return "", err
		}
		parts = append(parts, addr)
	}
	return strings.Join(append(parts, linkDown(keep, nic.LinkDown)...), ","), nil
}

// ipConfig returns a NIC's address configuration as cloud-init and
// containers take it: "ip=10.0.0.5/24,gw=10.0.0.1", "ip6=...,gw6=..." or
// "ip=dhcp".
func ipConfig(nic provider.NIC) (string, error) {
	if nic.IP == "" || strings.EqualFold(nic.IP, "dhcp") {
		if nic.Gateway != "" {
			return "", specErrorf("gateway %s without an address", nic.Gateway)
		}
		return "ip=dhcp", nil
	}
	pfx, err := netip.ParsePrefix(nic.IP)
	if err != nil {
		return "", specErrorf("NIC address %q is not in CIDR notation", nic.IP)
	}
	ip, gw := "ip", "gw"
	if pfx.Addr().Is6() {
		ip, gw = "ip6", "gw6"
	}
	s := ip + "=" + pfx.String()
	if nic.Gateway != "" {
		g, err := netip.ParseAddr(nic.Gateway)
		if err != nil || g.Is4() != pfx.Addr().Is4() {
			return "", specErrorf("gateway %q does not suit address %s", nic.Gateway, nic.IP)
		}
		s += "," + gw + "=" + g.String()
	}
	return s, nil
}

// checkNIC validates the parts of a NIC both guest kinds share.
func checkNIC(nic provider.NIC) error {
	if nic.Bridge == "" || strings.ContainsAny(nic.Bridge, ",= ") {
		return specErrorf("NIC bridge %q is empty or invalid", nic.Bridge)
	}
	if nic.VLAN < 0 || nic.VLAN > 4094 {
		return specErrorf("VLAN %d out of range 1-4094", nic.VLAN)
	}
	if nic.KeepIP && (nic.IP != "" || nic.Gateway != "") {
		return specErrorf("a NIC that keeps its address configuration takes no address or gateway")
	}
	if nic.MAC != "" {
		hw, err := net.ParseMAC(nic.MAC)
		if err != nil || len(hw) != 6 {
			return specErrorf("invalid MAC %q", nic.MAC)
		}
	}
	return nil
}

// normalMAC writes a MAC as Proxmox does, upper case with colons.
func normalMAC(s string) string {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return s
	}
	return strings.ToUpper(hw.String())
}

// rejectSpec turns a specError into ErrRejected for operation op, and
// passes other errors through.
func rejectSpec(op string, err error) error {
	var se *specError
	if errors.As(err, &se) {
		return reject(op, "%s", se.msg)
	}
	return err
}
