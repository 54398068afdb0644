package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

func (a *app) vmCommand() *cobra.Command {
	return group("vm", "Create, start, stop and delete virtual machines",
		a.vmCreateCommand(),
		a.vmActionCommand("start", "Start a VM", (*client.Client).StartVM),
		a.vmActionCommand("stop", "Stop a VM at once, like pulling the plug", (*client.Client).StopVM),
		a.vmActionCommand("shutdown", "Ask a VM's operating system to shut down", (*client.Client).ShutdownVM),
		a.vmActionCommand("delete", "Delete a VM with its disks and release its IP addresses", (*client.Client).DeleteVM),
	)
}

func (a *app) vmCreateCommand() *cobra.Command {
	var req client.VMCreateRequest
	var nics, keyFiles []string
	var noStart, wait bool
	var idem idempotencyFlag
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a VM, by default from a template, and start it",
		Long: `Create a VM. The server checks the request against the inventory and IPAM,
picks a node unless --node is given, and answers at once with the vm.create
operation, which the leader then runs: clone the template, configure the VM,
allocate each NIC's address from its prefix, and start it.

--nic is given once per network interface, as comma-separated key=value pairs:
  bridge=vmbr0       the bridge to plug into (required)
  vlan=10            the VLAN tag
  prefix=PREFIX      the IPAM prefix to allocate the address from: its ID, or
                     its CIDR (looked up in the prefixes list)
  ip=10.0.0.5        the address to ask for (else the next free one)
  dns=web.moxxie.test  the DNS name of the address

With --wait the command follows the operation, printing each step on stderr,
and fails when the operation fails. Without it, follow the operation with
'moxxiectl operation wait ID'.`,
		Example: `  moxxiectl vm create web1 --template ubuntu-24.04 --cores 2 --memory 2048 \
    --nic bridge=vmbr0,prefix=10.0.0.0/24,dns=web1.moxxie.test --wait`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			if noStart {
				no := false
				req.Start = &no
			}
			for _, f := range []struct {
				name string
				v    int
			}{{"cores", req.Cores}, {"memory", req.Memory}, {"disk", req.Disk}} {
				if f.v < 0 {
					return usagef("--%s must not be negative, got %d", f.name, f.v)
				}
			}
			specs := make([]nicSpec, 0, len(nics))
			for _, s := range nics {
				n, err := parseNIC(s)
				if err != nil {
					return err
				}
				specs = append(specs, n)
			}
			keys, err := readSSHKeys(keyFiles)
			if err != nil {
				return err
			}
			req.SSHKeys = keys
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if req.NICs, err = resolveNICs(ctx, c, specs); err != nil {
				return err
			}
			op, m, err := c.CreateVM(ctx, req, string(idem.key))
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			return a.followOperation(ctx, c, op, wait)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Template, "template", "", "template to clone, by name or VMID; without one an empty VM is made and needs --disk")
	fl.StringVar(&req.Node, "node", "", "node to create the VM on (default: the online node with the most room under its capacity policy)")
	fl.IntVar(&req.Cores, "cores", 0, "CPU cores (default: the template's, else 1)")
	fl.IntVar(&req.Memory, "memory", 0, "memory in MiB (default: the template's, else 1024)")
	fl.IntVar(&req.Disk, "disk", 0, "disk size in GiB; required without --template")
	fl.StringVar(&req.Storage, "storage", "", "storage for the disks (default: the template's)")
	fl.StringVar(&req.Tenant, "tenant", "", "tenant owning the VM")
	fl.StringVar(&req.Project, "project", "", "project of the tenant the VM counts against (see moxxiectl project)")
	fl.StringArrayVar(&req.Tags, "tag", nil, "tag to set on the VM; repeat for several")
	fl.StringVar(&req.Description, "description", "", "what the VM is for")
	fl.BoolVar(&noStart, "no-start", false, "leave the VM stopped once created")
	fl.StringArrayVar(&nics, "nic", nil, "network interface as bridge=B[,vlan=N][,prefix=ID|CIDR][,ip=IP][,dns=NAME]; repeat for several")
	fl.StringArrayVar(&keyFiles, "ssh-key-file", nil, "file of OpenSSH public keys to install with cloud-init; repeat for several")
	fl.BoolVar(&wait, "wait", false, "follow the operation to its end, printing progress on stderr")
	idem.register(cmd)
	return cmd
}

// vmActionCommand returns the command of a power or delete operation.
func (a *app) vmActionCommand(verb, short string, do func(*client.Client, context.Context, int, string) (*client.Operation, *client.Meta, error)) *cobra.Command {
	var wait bool
	var idem idempotencyFlag
	cmd := &cobra.Command{
		Use:   verb + " VMID",
		Short: short,
		Args:  exactArgs("VMID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			vmid, err := parseVMID(args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			op, m, err := do(c, cmd.Context(), vmid, string(idem.key))
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			return a.followOperation(cmd.Context(), c, op, wait)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the operation to its end, printing progress on stderr")
	idem.register(cmd)
	return cmd
}

// nicSpec is a parsed --nic: the NIC, and the CIDR its prefix was given as
// (then PrefixID is empty until resolved).
type nicSpec struct {
	nic  client.VMNIC
	cidr netip.Prefix
}

// parseNIC parses a --nic value, bridge=vmbr0,vlan=10,prefix=ID|CIDR,ip=IP,dns=NAME.
func parseNIC(s string) (nicSpec, error) {
	var n nicSpec
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			return n, usagef("--nic %q: %q is not key=value", s, part)
		}
		if seen[k] {
			return n, usagef("--nic %q: %s given twice", s, k)
		}
		seen[k] = true
		switch k {
		case "bridge":
			n.nic.Bridge = v
		case "vlan":
			tag, err := strconv.Atoi(v)
			if err != nil || tag < 1 || tag > 4094 {
				return n, usagef("--nic %q: vlan must be a number from 1 to 4094, got %q", s, v)
			}
			n.nic.VLAN = tag
		case "prefix":
			if !strings.Contains(v, "/") {
				n.nic.PrefixID = v
				break
			}
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return n, usagef("--nic %q: prefix %q is neither a prefix ID nor a CIDR", s, v)
			}
			if p != p.Masked() {
				return n, usagef("--nic %q: prefix %s is not canonical: did you mean %s?", s, v, p.Masked())
			}
			n.cidr = p
		case "ip":
			ip, err := netip.ParseAddr(v)
			if err != nil {
				return n, usagef("--nic %q: ip %q is not an IP address", s, v)
			}
			n.nic.Address = ip.String()
		case "dns":
			n.nic.DNSName = v
		default:
			return n, usagef("--nic %q: unknown key %q: want bridge, vlan, prefix, ip or dns", s, k)
		}
	}
	if n.nic.Bridge == "" {
		return n, usagef("--nic %q: bridge= is required", s)
	}
	if (n.nic.Address != "" || n.nic.DNSName != "") && !seen["prefix"] {
		return n, usagef("--nic %q: ip and dns need prefix= to allocate the address from", s)
	}
	return n, nil
}

// resolveNICs returns the NICs of specs with prefixes given as a CIDR
// replaced by the ID of the one prefix that has that CIDR.
func resolveNICs(ctx context.Context, c *client.Client, specs []nicSpec) ([]client.VMNIC, error) {
	out := make([]client.VMNIC, len(specs))
	ids := map[netip.Prefix]string{}
	for i, s := range specs {
		out[i] = s.nic
		if !s.cidr.IsValid() {
			continue
		}
		if id, ok := ids[s.cidr]; ok {
			out[i].PrefixID = id
			continue
		}
		list, _, err := c.PrefixList(ctx, client.PrefixFilter{Contains: s.cidr.String()}, nil)
		if err != nil {
			return nil, fmt.Errorf("looking up prefix %s: %w", s.cidr, err)
		}
		var found []client.Prefix
		for _, p := range list {
			if pp, err := netip.ParsePrefix(p.Prefix); err == nil && pp == s.cidr {
				found = append(found, p)
			}
		}
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("no prefix %s in IPAM (see moxxiectl ipam prefix list)", s.cidr)
		case 1:
			ids[s.cidr] = found[0].ID
			out[i].PrefixID = found[0].ID
		default:
			var in []string
			for _, p := range found {
				in = append(in, fmt.Sprintf("%s in VRF %s", p.ID, p.VRF))
			}
			return nil, fmt.Errorf("prefix %s exists in several VRFs (%s): give the prefix ID", s.cidr, strings.Join(in, ", "))
		}
	}
	return out, nil
}

// readSSHKeys reads the public keys of files: one per line, skipping blank
// lines and comments.
func readSSHKeys(files []string) ([]string, error) {
	var keys []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line != "" && !strings.HasPrefix(line, "#") {
				keys = append(keys, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	return keys, nil
}
