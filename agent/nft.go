package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"

	"github.com/moxxie/moxxie/sdn"
)

// nftTable is the nftables table the agent owns, in the inet family.
const nftTable = "moxxie"

// fwState is the firewall a Kernel last applied or found applied: the
// table it rendered ("" for no table) and the table as nft listed it, so
// a plan whose rendering nft prints differently is still seen as applied.
// Apply trusts it and does not list the table again for the same
// rendering; Verify always lists, and forgets it when the table no longer
// matches (edited or deleted by hand), so the next Apply lists and
// replaces the table.
type fwState struct {
	known   bool
	render  string
	listing string
}

// emptyFirewall reports whether fw asks for nothing: the table is then
// deleted.
func emptyFirewall(fw sdn.Firewall) bool {
	return len(fw.Bridges) == 0 && len(fw.Groups) == 0 && len(fw.Allowed) == 0 && len(fw.SNAT) == 0
}

// renderFirewall renders fw as the table inet moxxie, in the form nft
// lists it: set vnets of the bridges; one set gN per group of fw.Groups
// (g0, g1, ... in order) holding its bridges; set allowed of (in . out)
// pairs, the explicit ones and each bridge with itself (so bridged
// traffic seen by br_netfilter passes); a forward chain that accepts
// established traffic, allowed pairs and traffic within a group, and
// drops the rest routed between two vnets; and a postrouting chain
// masquerading each SNAT source.
func renderFirewall(fw sdn.Firewall) (string, error) {
	for _, b := range fw.Bridges {
		if err := checkIfname(b); err != nil {
			return "", err
		}
	}
	for _, g := range fw.Groups {
		for _, b := range g {
			if err := checkIfname(b); err != nil {
				return "", err
			}
		}
	}
	pairs, err := allowedPairs(fw)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", nftTable)
	b.WriteString("\tcomment \"managed by moxxie-agent\"\n")
	b.WriteString("\tset vnets {\n\t\ttype ifname\n")
	writeElements(&b, quoteAll(fw.Bridges))
	b.WriteString("\t}\n\n")
	for i, g := range fw.Groups {
		fmt.Fprintf(&b, "\tset g%d {\n\t\ttype ifname\n", i)
		writeElements(&b, quoteAll(g))
		b.WriteString("\t}\n\n")
	}
	b.WriteString("\tset allowed {\n\t\ttype ifname . ifname\n")
	writeElements(&b, pairs)
	b.WriteString("\t}\n\n\tchain forward {\n")
	b.WriteString("\t\ttype filter hook forward priority filter; policy accept;\n")
	b.WriteString("\t\tct state established,related accept\n")
	b.WriteString("\t\tiifname . oifname @allowed accept\n")
	for i := range fw.Groups {
		fmt.Fprintf(&b, "\t\tiifname @g%d oifname @g%d accept\n", i, i)
	}
	b.WriteString("\t\tiifname @vnets oifname @vnets drop\n")
	b.WriteString("\t}\n\n\tchain postrouting {\n")
	b.WriteString("\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	for _, s := range fw.SNAT {
		rule, err := snatRule(s)
		if err != nil {
			return "", err
		}
		b.WriteString("\t\t" + rule + "\n")
	}
	b.WriteString("\t}\n}\n")
	return b.String(), nil
}

// allowedPairs returns the elements of set allowed, sorted and unique.
func allowedPairs(fw sdn.Firewall) ([]string, error) {
	var pairs []string
	for _, p := range fw.Allowed {
		if err := checkIfname(p.In); err != nil {
			return nil, err
		}
		if err := checkIfname(p.Out); err != nil {
			return nil, err
		}
		pairs = append(pairs, fmt.Sprintf("%q . %q", p.In, p.Out))
	}
	for _, b := range fw.Bridges {
		pairs = append(pairs, fmt.Sprintf("%q . %q", b, b))
	}
	slices.Sort(pairs)
	return slices.Compact(pairs), nil
}

func snatRule(s sdn.SNAT) (string, error) {
	pfx, err := netip.ParsePrefix(s.Source)
	if err != nil {
		return "", fmt.Errorf("%w: snat source %q", ErrInvalidPlan, s.Source)
	}
	if err := checkIfname(s.Out); err != nil {
		return "", err
	}
	family := "ip"
	if pfx.Addr().Is6() && !pfx.Addr().Is4In6() {
		family = "ip6"
	}
	return fmt.Sprintf("%s saddr %s oifname %q masquerade", family, pfx.Masked(), s.Out), nil
}

// checkIfname refuses an interface name nft would need to escape.
func checkIfname(s string) error {
	if s == "" || len(s) > 15 || strings.ContainsAny(s, "\"\\ \t\n;{}") {
		return fmt.Errorf("%w: interface name %q", ErrInvalidPlan, s)
	}
	return nil
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}

func writeElements(b *strings.Builder, elems []string) {
	if len(elems) == 0 {
		return
	}
	fmt.Fprintf(b, "\t\telements = { %s }\n", strings.Join(elems, ", "))
}

// sameTable reports whether two table texts are equal but for
// whitespace and the order of set elements: nft wraps elements over lines
// and lists those of a large set in its hash order.
func sameTable(a, b string) bool {
	return canonTable(a) == canonTable(b)
}

// canonTable returns a table text with its whitespace collapsed and the
// elements of each "elements = { ... }" sorted. Elements never hold ", "
// (interface names hold no spaces, checkIfname).
func canonTable(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const open, end = "elements = { ", " }"
	var b strings.Builder
	for {
		i := strings.Index(s, open)
		if i < 0 {
			break
		}
		j := strings.Index(s[i+len(open):], end)
		if j < 0 {
			break
		}
		elems := strings.Split(s[i+len(open):i+len(open)+j], ", ")
		slices.Sort(elems)
		b.WriteString(s[:i+len(open)])
		b.WriteString(strings.Join(elems, ", "))
		s = s[i+len(open)+j:]
	}
	b.WriteString(s)
	return b.String()
}

// ensureFirewall makes the table inet moxxie hold fw, replacing it in one
// nft transaction when it differs, or deletes the table when fw is
// empty. Without nft only an empty firewall can be applied. Apply skips
// listing the table when it last applied or found the same rendering;
// dry passes (Verify) always list it.
func (p *pass) ensureFirewall(fw sdn.Firewall) error {
	k := p.k
	empty := emptyFirewall(fw)
	if !k.nftOK {
		if empty {
			return nil
		}
		return fmt.Errorf("firewall: %w (%s)", ErrNoNFT, strings.Join(k.cfg.NFT, " "))
	}
	body := ""
	if !empty {
		var err error
		if body, err = renderFirewall(fw); err != nil {
			return err
		}
	}
	if !p.dry && k.fw.known && k.fw.render == body {
		return nil
	}
	listing, exists, err := k.nftList(p.ctx)
	if err != nil {
		return err
	}
	held := !exists
	if !empty {
		held = exists && (sameTable(listing, body) || (k.fw.known && k.fw.render == body && k.fw.listing == listing))
	}
	switch {
	case held && !p.dry:
		k.fw = fwState{known: true, render: body, listing: listing}
		return nil
	case held:
		return nil
	case p.dry && k.fw.known && k.fw.render == body:
		// The table changed behind the Kernel's back: the next Apply
		// must list it.
		k.fw = fwState{}
	}
	if empty {
		return p.do("delete firewall", func() error {
			if _, err := k.nft(p.ctx, "", "delete", "table", "inet", nftTable); err != nil {
				return err
			}
			k.fw = fwState{known: true}
			return nil
		})
	}
	act := "replace firewall"
	if !exists {
		act = "create firewall"
	}
	return p.do(act, func() error { return k.replaceTable(p.ctx, body) })
}

// replaceTable swaps the table for body in one transaction: create it
// empty if missing, delete it, define it again.
func (k *Kernel) replaceTable(ctx context.Context, body string) error {
	k.fw = fwState{}
	script := fmt.Sprintf("table inet %s {}\ndelete table inet %s\n%s", nftTable, nftTable, body)
	if _, err := k.nft(ctx, script, "-f", "-"); err != nil {
		return err
	}
	listing, _, err := k.nftList(ctx)
	if err != nil {
		return err
	}
	k.fw = fwState{known: true, render: body, listing: listing}
	return nil
}

// nftList lists the table; exists is false when there is none.
func (k *Kernel) nftList(ctx context.Context) (listing string, exists bool, err error) {
	out, err := k.nft(ctx, "", "list", "table", "inet", nftTable)
	if err != nil {
		if strings.Contains(err.Error(), "No such file or directory") {
			return "", false, nil
		}
		return "", false, err
	}
	return out, true, nil
}

// nft runs the nft command with args, stdin as its input.
func (k *Kernel) nft(ctx context.Context, stdin string, args ...string) (string, error) {
	argv := append(slices.Clone(k.cfg.NFT[1:]), args...)
	cmd := exec.CommandContext(ctx, k.cfg.NFT[0], argv...) // #nosec G204 -- the nft command is the agent's own configuration; the arguments are a fixed table name or the rendered ruleset on stdin
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return "", fmt.Errorf("nft %s: %s", strings.Join(args, " "), msg)
		}
		return "", fmt.Errorf("nft %s: %w", strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}
