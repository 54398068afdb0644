package proxmox

import (
	"errors"
	"net/url"
	"reflect"
	"testing"

	"github.com/moxxie/moxxie/provider"
)

func TestSpec_VMCreate(t *testing.T) {
	spec := provider.GuestSpec{
		Name: "web1", Cores: 2, MemoryMiB: 2048, Tags: []string{"web", "prod"},
		Description: "front end",
		NICs: []provider.NIC{
			{Bridge: "vmbr0", VLAN: 10, IP: "10.0.0.5/24", Gateway: "10.0.0.1"},
			{Bridge: "vmbr1", Model: "e1000", MAC: "bc:24:11:00:00:01"},
		},
		Nameserver: "10.0.0.53", SearchDom: "example.test",
		SSHKeys: []string{"ssh-ed25519 AAAA+x/y= a@b", "ssh-rsa BBBB c@d"},
		CIUser:  "ops", Storage: "local-lvm", DiskGiB: 32, OSType: "l26", Pool: "prod",
	}
	o, err := specOptions(provider.KindVM, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "web1", "cores": 2, "memory": 2048, "tags": "web;prod", "description": "front end",
		"net0": "virtio,bridge=vmbr0,tag=10", "ipconfig0": "ip=10.0.0.5/24,gw=10.0.0.1",
		"net1": "e1000=BC:24:11:00:00:01,bridge=vmbr1", "ipconfig1": "ip=dhcp",
		"nameserver": "10.0.0.53", "searchdomain": "example.test",
		"sshkeys": "ssh-ed25519%20AAAA%2Bx%2Fy%3D%20a%40b%0Assh-rsa%20BBBB%20c%40d",
		"ciuser":  "ops", "scsi0": "local-lvm:32", "scsihw": "virtio-scsi-single", "boot": "order=scsi0",
		"ide2": "local-lvm:cloudinit", "ostype": "l26", "pool": "prod",
	}
	if !reflect.DeepEqual(o.set, want) {
		t.Errorf("options:\n got %v\nwant %v", o.set, want)
	}
	keys, err := url.PathUnescape(o.set["sshkeys"].(string))
	if err != nil || keys != "ssh-ed25519 AAAA+x/y= a@b\nssh-rsa BBBB c@d" {
		t.Errorf("sshkeys decode to %q, %v", keys, err)
	}
}

func TestSpec_VMReconfigureKeepsMACAndOptions(t *testing.T) {
	cur := map[string]string{
		"net0":      "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,tag=5",
		"ipconfig0": "ip=dhcp",
		"net1":      "e1000=BC:24:11:AA:BB:CD,bridge=vmbr1",
		"ipconfig1": "ip=dhcp",
		"net2":      "virtio=BC:24:11:AA:BB:CE,bridge=vmbr2",
	}
	spec := provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr9", IP: "2001:db8::5/64", Gateway: "2001:db8::1"}}}
	o, err := specOptions(provider.KindVM, spec, cur)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.set["net0"], "virtio=BC:24:11:AA:BB:CC,bridge=vmbr9,firewall=1"; got != want {
		t.Errorf("net0 = %q, want %q", got, want)
	}
	if got, want := o.set["ipconfig0"], "ip6=2001:db8::5/64,gw6=2001:db8::1"; got != want {
		t.Errorf("ipconfig0 = %q, want %q", got, want)
	}
	if want := []string{"net1", "ipconfig1", "net2"}; !reflect.DeepEqual(o.delete, want) {
		t.Errorf("delete = %v, want %v", o.delete, want)
	}
	if _, ok := o.set["pool"]; ok {
		t.Error("pool is set through the config on re-configuration")
	}
	ch := o.changes(map[string]string{"net0": "virtio=BC:24:11:AA:BB:CC,bridge=vmbr9,firewall=1"})
	if _, ok := ch["net0"]; ok {
		t.Error("an unchanged key is sent")
	}
	if ch["delete"] != "net1,ipconfig1,net2" {
		t.Errorf("delete parameter = %v", ch["delete"])
	}
}

// TestSpec_KeepIP: a NIC that keeps its address configuration leaves a
// VM's ipconfigN and a container NIC's ip and gw as they are.
func TestSpec_KeepIP(t *testing.T) {
	cur := map[string]string{
		"net0": "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,tag=5", "ipconfig0": "ip=10.0.5.9/24,gw=10.0.5.1,ip6=auto",
		"net1": "virtio=BC:24:11:AA:BB:CD,bridge=vmbr1", "ipconfig1": "ip=dhcp",
	}
	o, err := specOptions(provider.KindVM, provider.GuestSpec{NICs: []provider.NIC{
		{Bridge: "vmbr0", VLAN: 5, KeepIP: true}, {Bridge: "vmbr2", IP: "10.0.2.5/24"},
	}}, cur)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.set["ipconfig0"]; ok || o.set["net0"] != "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,tag=5" || o.set["ipconfig1"] != "ip=10.0.2.5/24" || len(o.delete) != 0 {
		t.Errorf("VM: set %v, delete %v", o.set, o.delete)
	}
	if ch := o.changes(cur); ch["net0"] != nil || ch["ipconfig0"] != nil {
		t.Errorf("VM changes %v", ch)
	}

	// A gap in the numbering: net1 stays empty (and goes, were it there).
	o, err = specOptions(provider.KindVM, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0", KeepIP: true}, {None: true}, {Bridge: "vmbr2"}}},
		map[string]string{"net0": "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0", "net1": "virtio=BC:24:11:AA:BB:CD,bridge=vmbr1", "net2": "virtio=BC:24:11:AA:BB:CE,bridge=vmbr1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.set["net1"]; ok || o.set["net2"] != "virtio=BC:24:11:AA:BB:CE,bridge=vmbr2" || o.set["ipconfig2"] != "ip=dhcp" || !reflect.DeepEqual(o.delete, []string{"net1"}) {
		t.Errorf("gap: set %v, delete %v", o.set, o.delete)
	}

	cur = map[string]string{"net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:01:02:03,ip=10.0.1.5/24,gw=10.0.1.1,tag=20,type=veth"}
	o, err = specOptions(provider.KindContainer, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr1", VLAN: 20, KeepIP: true}}}, cur)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.set["net0"], "name=eth0,bridge=vmbr1,hwaddr=BC:24:11:01:02:03,tag=20,ip=10.0.1.5/24,gw=10.0.1.1,type=veth"; got != want {
		t.Errorf("container net0 = %q, want %q", got, want)
	}
}

func TestSpec_Container(t *testing.T) {
	spec := provider.GuestSpec{
		Name: "ct1", Cores: 1, MemoryMiB: 512, Storage: "local-lvm", DiskGiB: 4,
		OSTemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
		NICs:       []provider.NIC{{Bridge: "vmbr0", VLAN: 20, IP: "10.0.1.5/24", Gateway: "10.0.1.1"}},
		SSHKeys:    []string{"ssh-ed25519 AAAA a@b"},
	}
	o, err := specOptions(provider.KindContainer, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"hostname": "ct1", "cores": 1, "memory": 512, "rootfs": "local-lvm:4",
		"ostemplate":      "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
		"net0":            "name=eth0,bridge=vmbr0,tag=20,ip=10.0.1.5/24,gw=10.0.1.1",
		"ssh-public-keys": "ssh-ed25519 AAAA a@b",
	}
	if !reflect.DeepEqual(o.set, want) {
		t.Errorf("options:\n got %v\nwant %v", o.set, want)
	}

	cur := map[string]string{"net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:01:02:03,ip=dhcp,type=veth"}
	spec = provider.GuestSpec{OSTemplate: spec.OSTemplate, NICs: []provider.NIC{{Bridge: "vmbr1"}}}
	o, err = specOptions(provider.KindContainer, spec, cur)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.set["net0"], "name=eth0,bridge=vmbr1,hwaddr=BC:24:11:01:02:03,ip=dhcp,type=veth"; got != want {
		t.Errorf("net0 = %q, want %q", got, want)
	}
	if _, ok := o.set["ostemplate"]; ok {
		t.Error("ostemplate sent on re-configuration")
	}
}

func TestSpec_Rejects(t *testing.T) {
	ct := provider.KindContainer
	vm := provider.KindVM
	cases := []struct {
		name string
		kind provider.GuestKind
		spec provider.GuestSpec
		cur  map[string]string
	}{
		{"bad tag", vm, provider.GuestSpec{Tags: []string{"a;b"}}, nil},
		{"OS template for a VM", vm, provider.GuestSpec{OSTemplate: "local:vztmpl/x.tar.zst"}, nil},
		{"negative cores", vm, provider.GuestSpec{Cores: -1}, nil},
		{"disk without storage", vm, provider.GuestSpec{DiskGiB: 8}, nil},
		{"no bridge", vm, provider.GuestSpec{NICs: []provider.NIC{{}}}, nil},
		{"vlan range", vm, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0", VLAN: 5000}}}, nil},
		{"bad mac", vm, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0", MAC: "zz"}}}, nil},
		{"bad ip", vm, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0", IP: "10.0.0.5"}}}, nil},
		{"gw family", vm, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0", IP: "10.0.0.5/24", Gateway: "::1"}}}, nil},
		{"gw without ip", vm, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0", Gateway: "10.0.0.1"}}}, nil},
		{"bad model", vm, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0", Model: "tulip"}}}, nil},
		{"multi-line key", vm, provider.GuestSpec{SSHKeys: []string{"a\nb"}}, nil},
		{"ct without template", ct, provider.GuestSpec{Name: "x"}, nil},
		{"ct ciuser", ct, provider.GuestSpec{CIUser: "ops"}, map[string]string{}},
		{"ct keys later", ct, provider.GuestSpec{SSHKeys: []string{"ssh-ed25519 A"}}, map[string]string{}},
		{"ct model", ct, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0", Model: "virtio"}}}, map[string]string{}},
		{"none with settings", vm, provider.GuestSpec{NICs: []provider.NIC{{None: true, Bridge: "vmbr0"}, {Bridge: "vmbr0"}}}, map[string]string{}},
		{"none last", vm, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0"}, {None: true}}}, map[string]string{}},
		{"keep ip with an ip", vm, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0", KeepIP: true, IP: "10.0.0.5/24"}}}, map[string]string{}},
		{"keep ip with a gateway", ct, provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0", KeepIP: true, Gateway: "10.0.0.1"}}}, map[string]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := specOptions(c.kind, c.spec, c.cur)
			var se *specError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a spec error", err)
			}
			if !errors.Is(rejectSpec("op", err), provider.ErrRejected) {
				t.Error("not mapped to ErrRejected")
			}
		})
	}
}

func TestNetworkCIDR(t *testing.T) {
	cases := []struct{ cidr, addr, mask, want string }{
		{"10.0.0.2/24", "10.0.0.2", "24", "10.0.0.2/24"},
		{"", "10.0.0.2", "255.255.255.0", "10.0.0.2/24"},
		{"", "10.0.0.2", "16", "10.0.0.2/16"},
		{"", "", "", ""},
	}
	for _, c := range cases {
		if got := networkCIDR(c.cidr, c.addr, c.mask); got != c.want {
			t.Errorf("networkCIDR(%q, %q, %q) = %q, want %q", c.cidr, c.addr, c.mask, got, c.want)
		}
	}
}

func TestUPID(t *testing.T) {
	upid := "UPID:pve2:0000ABCD:00001234:65A1B2C3:qmstart:100:root@pam!moxxie:"
	if got := taskOf(upid, "pve1"); got.Node != "pve2" || got.ID != upid {
		t.Errorf("taskOf = %+v", got)
	}
	if got := upidField(upid, 5); got != "qmstart" {
		t.Errorf("type = %q", got)
	}
	if got := taskOf("", "pve1"); got.Node != "pve1" || got.ID != "" {
		t.Errorf("taskOf empty = %+v", got)
	}
}

func TestSnapshotName(t *testing.T) {
	for name, ok := range map[string]bool{"pre_upgrade-1": true, "a": false, "1abc": false, "with space": false, "": false} {
		if validSnapshotName(name) != ok {
			t.Errorf("validSnapshotName(%q) = %t", name, !ok)
		}
	}
}

func TestLooseNumbers(t *testing.T) {
	var v struct {
		A pveInt   `json:"a"`
		B pveUint  `json:"b"`
		C pveFloat `json:"c"`
		D pveBool  `json:"d"`
		E pveBool  `json:"e"`
		F pveInt   `json:"f"`
	}
	if err := jsonUnmarshal(`{"a":"42","b":18446744073709551615,"c":"0.5","d":1,"e":"","f":null}`, &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 42 || v.B != 18446744073709551615 || v.C != 0.5 || !v.D || v.E || v.F != 0 {
		t.Errorf("decoded %+v", v)
	}
	if err := jsonUnmarshal(`{"a":"x"}`, &v); err == nil {
		t.Error("a non-number decoded")
	}
}

func TestChanges_TagsInAnyOrder(t *testing.T) {
	o, err := specOptions(provider.KindVM, provider.GuestSpec{Tags: []string{"web", "prod"}, Cores: 2}, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	ch := o.changes(map[string]string{"tags": "prod;web", "cores": "1"})
	if _, ok := ch["tags"]; ok || ch["cores"] != 2 {
		t.Errorf("changes = %v, want cores only", ch)
	}
}
