package schema

import (
	"bufio"
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	s := Load()
	if got := s.Version(); got != "9.1.3" {
		t.Errorf("Version() = %q, want 9.1.3", got)
	}
	if Load() != s {
		t.Error("Load() parsed the extract twice")
	}
	eps := s.Endpoints()
	if !sort.SliceIsSorted(eps, func(i, j int) bool {
		if eps[i].Path != eps[j].Path {
			return eps[i].Path < eps[j].Path
		}
		return eps[i].Method < eps[j].Method
	}) {
		t.Error("Endpoints() is not sorted by path, then method")
	}
	for _, e := range eps {
		if e.Parameters == nil || e.Returns == nil {
			t.Errorf("%s %s: nil Parameters or Returns", e.Method, e.Path)
		}
		for _, name := range e.PathParams() {
			// Not necessarily required: vzdump's node is optional.
			if _, ok := e.Parameters.Properties[name]; !ok {
				t.Errorf("%s %s: path parameter %s is not a parameter", e.Method, e.Path, name)
			}
		}
	}
}

// TestExtractMatchesRoutes checks that the embedded extract holds exactly
// the routes in routes.txt, so a forgotten go generate shows up here.
func TestExtractMatchesRoutes(t *testing.T) {
	f, err := os.Open("routes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if fields := strings.Fields(line); len(fields) > 0 {
			want = append(want, strings.Join(fields, " "))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range Load().Endpoints() {
		got = append(got, e.Method+" "+e.Path)
	}
	sort.Strings(want)
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("extract routes differ from routes.txt (run go generate ./pvesim/schema)\n got: %q\nwant: %q", got, want)
	}
}

// TestPatternsCompile checks that RE2 can express every pattern in the
// extract, so none of them goes unchecked.
func TestPatternsCompile(t *testing.T) {
	var walk func(where string, p *Prop)
	walk = func(where string, p *Prop) {
		if p == nil {
			return
		}
		if p.Pattern != "" && p.re == nil {
			t.Errorf("%s: pattern %q does not compile", where, p.Pattern)
		}
		for k, q := range p.Properties {
			walk(where+"."+k, q)
		}
		for k, q := range p.FormatKeys {
			walk(where+"{"+k+"}", q)
		}
		walk(where+"[]", p.Items)
	}
	for _, e := range Load().Endpoints() {
		walk(e.Method+" "+e.Path+" params", e.Parameters)
		walk(e.Method+" "+e.Path+" returns", e.Returns)
	}
}

func TestLookup(t *testing.T) {
	s := Load()
	tests := []struct {
		method, path string
		want         string // template, "" for no match
		params       map[string]string
	}{
		{"GET", "/version", "/version", map[string]string{}},
		{"GET", "/version/", "/version", map[string]string{}},
		{"get", "/nodes", "/nodes", map[string]string{}},
		{"POST", "/nodes/pve1/qemu/100/status/start", "/nodes/{node}/qemu/{vmid}/status/start",
			map[string]string{"node": "pve1", "vmid": "100"}},
		{"GET", "/nodes/pve1/qemu/100/config", "/nodes/{node}/qemu/{vmid}/config",
			map[string]string{"node": "pve1", "vmid": "100"}},
		{"PUT", "/nodes/pve1/qemu/100/config", "/nodes/{node}/qemu/{vmid}/config",
			map[string]string{"node": "pve1", "vmid": "100"}},
		{"DELETE", "/nodes/pve1/lxc/200/snapshot/before", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}",
			map[string]string{"node": "pve1", "vmid": "200", "snapname": "before"}},
		{"GET", "/nodes/pve2/tasks/UPID:pve2:000A1B2C:0012D687:67A0B1C2:qmstart:100:root@pam:/log",
			"/nodes/{node}/tasks/{upid}/log",
			map[string]string{"node": "pve2", "upid": "UPID:pve2:000A1B2C:0012D687:67A0B1C2:qmstart:100:root@pam:"}},
		{"PUT", "/cluster/sdn", "/cluster/sdn", map[string]string{}},
		{"GET", "/cluster/sdn/zones/z1", "/cluster/sdn/zones/{zone}", map[string]string{"zone": "z1"}},
		{"GET", "/storage/local-lvm", "/storage/{storage}", map[string]string{"storage": "local-lvm"}},
		// Wrong method, unknown path, empty parameter.
		{"GET", "/cluster/sdn", "", nil},
		{"DELETE", "/nodes/pve1/qemu", "", nil},
		{"GET", "/nodes/pve1/qemu/100", "", nil},
		{"GET", "/nodes//status", "", nil},
		{"GET", "/api2/json/version", "", nil},
		{"GET", "", "", nil},
		{"GET", "/", "", nil},
	}
	for _, tt := range tests {
		e, params, ok := s.Lookup(tt.method, tt.path)
		if tt.want == "" {
			if ok {
				t.Errorf("Lookup(%s %q) = %s %s, want no match", tt.method, tt.path, e.Method, e.Path)
			}
			continue
		}
		if !ok {
			t.Errorf("Lookup(%s %q): no match, want %s", tt.method, tt.path, tt.want)
			continue
		}
		if e.Path != tt.want || e.Method != strings.ToUpper(tt.method) {
			t.Errorf("Lookup(%s %q) = %s %s, want %s", tt.method, tt.path, e.Method, e.Path, tt.want)
		}
		if !reflect.DeepEqual(params, tt.params) {
			t.Errorf("Lookup(%s %q) params = %v, want %v", tt.method, tt.path, params, tt.params)
		}
	}
}

// TestLookupEveryEndpoint checks that every template is found from a
// concrete path built from it.
func TestLookupEveryEndpoint(t *testing.T) {
	s := Load()
	for _, want := range s.Endpoints() {
		path := want.Path
		for _, name := range want.PathParams() {
			path = strings.Replace(path, "{"+name+"}", "x"+name, 1)
		}
		got, params, ok := s.Lookup(want.Method, path)
		if !ok || got != want {
			t.Errorf("Lookup(%s %s) = %v, want %s", want.Method, path, got, want.Path)
			continue
		}
		for _, name := range want.PathParams() {
			if params[name] != "x"+name {
				t.Errorf("Lookup(%s %s) %s = %q", want.Method, path, name, params[name])
			}
		}
	}
}

func endpoint(t *testing.T, method, path string) *Endpoint {
	t.Helper()
	for _, e := range Load().Endpoints() {
		if e.Method == method && e.Path == path {
			return e
		}
	}
	t.Fatalf("no endpoint %s %s", method, path)
	return nil
}

// v builds request parameters from name, value pairs.
func v(kv ...string) map[string][]string {
	m := make(map[string][]string)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = append(m[kv[i]], kv[i+1])
	}
	return m
}

func TestValidate(t *testing.T) {
	const (
		qemuCreate = "/nodes/{node}/qemu"
		qemuConfig = "/nodes/{node}/qemu/{vmid}/config"
		qemuStart  = "/nodes/{node}/qemu/{vmid}/status/start"
		lxcCreate  = "/nodes/{node}/lxc"
	)
	tests := []struct {
		name         string
		method, path string
		params       map[string][]string
		want         map[string]string // nil: valid
	}{
		{"valid start", "POST", qemuStart, v("node", "pve1", "vmid", "100"), nil},
		{"valid start with options", "POST", qemuStart,
			v("node", "pve1", "vmid", "100", "skiplock", "1", "timeout", "30", "migration_type", "secure"), nil},
		{"missing node", "POST", qemuStart, v("vmid", "100"),
			map[string]string{"node": "property is missing and it is not optional"}},
		{"missing both", "POST", qemuStart, v(),
			map[string]string{
				"node": "property is missing and it is not optional",
				"vmid": "property is missing and it is not optional",
			}},
		{"empty value list counts as missing", "POST", qemuStart, map[string][]string{"node": {"pve1"}, "vmid": {}},
			map[string]string{"vmid": "property is missing and it is not optional"}},
		{"integer type", "POST", qemuStart, v("node", "pve1", "vmid", "abc"),
			map[string]string{"vmid": "type check ('integer') failed - got 'abc'"}},
		{"integer type, fraction", "POST", qemuStart, v("node", "pve1", "vmid", "100", "timeout", "1.5"),
			map[string]string{"timeout": "type check ('integer') failed - got '1.5'"}},
		{"vmid minimum", "POST", qemuStart, v("node", "pve1", "vmid", "99"),
			map[string]string{"vmid": "invalid format - value does not look like a valid VM ID\n"}},
		{"timeout minimum", "POST", "/nodes/{node}/qemu/{vmid}/status/stop", v("node", "pve1", "vmid", "100", "timeout", "-1"),
			map[string]string{"timeout": "value must have a minimum value of 0"}},
		{"cores minimum", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "cores", "0"),
			map[string]string{"cores": "value must have a minimum value of 1"}},
		{"tty maximum", "PUT", "/nodes/{node}/lxc/{vmid}/config", v("node", "pve1", "vmid", "100", "tty", "7"),
			map[string]string{"tty": "value must have a maximum value of 6"}},
		{"number type", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "cpulimit", "lots"),
			map[string]string{"cpulimit": "type check ('number') failed - got 'lots'"}},
		{"number forms", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "cpulimit", "1.5"), nil},
		{"number forms, leading dot", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "cpulimit", ".5"), nil},
		{"booleans", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "onboot", "1", "acpi", "0"), nil},
		{"boolean words are not booleans", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "onboot", "true", "acpi", "OFF"),
			map[string]string{
				"onboot": "type check ('boolean') failed - got 'true'",
				"acpi":   "type check ('boolean') failed - got 'OFF'",
			}},
		{"boolean words in a property string", "PUT", qemuConfig,
			v("node", "pve1", "vmid", "100", "agent", "enabled=true,fstrim_cloned_disks=on", "net0", "virtio,bridge=vmbr0,firewall=yes,link_down=OFF"), nil},
		{"bad boolean in a property string", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "agent", "enabled=True,freeze-fs-on-backup=maybe"),
			map[string]string{"agent": "invalid format - format error\nagent.freeze-fs: type check ('boolean') failed - got 'maybe'\n"}},
		{"empty value is not given", "POST", qemuStart, v("node", "pve1", "vmid", ""),
			map[string]string{"vmid": "property is missing and it is not optional"}},
		{"empty value of an optional parameter", "POST", qemuStart, v("node", "pve1", "vmid", "100", "timeout", ""), nil},
		{"empty value of an unknown parameter", "POST", qemuStart, v("node", "pve1", "vmid", "100", "bogus", ""),
			map[string]string{"bogus": "property is not defined in schema and the schema does not allow additional properties"}},
		{"empty value drops earlier values", "POST", qemuStart, v("node", "pve1", "vmid", "abc", "vmid", ""),
			map[string]string{"vmid": "property is missing and it is not optional"}},
		{"boolean type", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "onboot", "maybe"),
			map[string]string{"onboot": "type check ('boolean') failed - got 'maybe'"}},
		{"enum", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "ostype", "plan9"),
			map[string]string{"ostype": "value 'plan9' does not have a value in the enumeration 'other, wxp, w2k, w2k3, w2k8, wvista, win7, win8, win10, win11, l24, l26, solaris'"}},
		{"unknown parameter", "POST", qemuStart, v("node", "pve1", "vmid", "100", "bogus", "1"),
			map[string]string{"bogus": "property is not defined in schema and the schema does not allow additional properties"}},
		{"node format", "POST", qemuStart, v("node", "pve_1", "vmid", "100"),
			map[string]string{"node": "invalid format - value does not look like a valid node name\n"}},
		{"maxLength", "POST", "/access/ticket", v("username", strings.Repeat("u", 65), "password", "x"),
			map[string]string{"username": "value may only be 64 characters long"}},
		{"minLength", "POST", lxcCreate, v("node", "pve1", "vmid", "200", "ostemplate", "local:vztmpl/debian.tar.zst", "password", "abc"),
			map[string]string{"password": "value must be at least 5 characters long"}},
		{"requires", "POST", "/access/ticket", v("username", "root@pam", "password", "x", "path", "/vms"),
			map[string]string{"privs": "missing property required by 'path'"}},
		{"requires met", "POST", "/access/ticket", v("username", "root@pam", "password", "x", "path", "/vms", "privs", "VM.Audit"), nil},
		{"pattern", "POST", qemuStart, v("node", "pve1", "vmid", "100", "nets-host-mtu", "net0=1500,eth1=9000"),
			map[string]string{"nets-host-mtu": "value does not match the regex pattern"}},
		{"pattern ok", "POST", qemuStart, v("node", "pve1", "vmid", "100", "nets-host-mtu", "net0=1500,net1=9000"), nil},
		{"pattern with Perl syntax", "POST", qemuCreate, v("node", "pve1", "vmid", "100", "vmgenid", "1"), nil},
		{"storage id", "POST", qemuCreate, v("node", "pve1", "vmid", "100", "storage", "x"),
			map[string]string{"storage": "invalid format - storage ID 'x' cannot be shorter than 2 characters\n"}},
		{"storage id chars", "POST", qemuCreate, v("node", "pve1", "vmid", "100", "storage", "local lvm"),
			map[string]string{"storage": "invalid format - storage ID 'local lvm' contains illegal characters\n"}},
		{"configid list", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "delete", "net1,ide2;unused0"), nil},
		{"configid list bad item", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "delete", "net1,0bad"),
			map[string]string{"delete": "invalid format - invalid configuration ID '0bad'\n"}},
		{"tag list", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "tags", "prod;web,db"), nil},
		{"tag list bad", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "tags", "prod;we!b"),
			map[string]string{"tags": "invalid format - invalid characters in tag\n"}},
		{"vmid list", "POST", "/nodes/{node}/vzdump", v("node", "pve1", "vmid", "100,101 102"), nil},
		{"vmid list bad", "POST", "/nodes/{node}/vzdump", v("node", "pve1", "vmid", "100,12"),
			map[string]string{"vmid": "invalid format - value does not look like a valid VM ID\n"}},
		{"repeated values of a list format", "POST", "/nodes/{node}/vzdump", v("node", "pve1", "vmid", "100", "vmid", "101,102"), nil},
		{"repeated values of a list format, bad item", "POST", "/nodes/{node}/vzdump", v("node", "pve1", "vmid", "100", "vmid", "1"),
			map[string]string{"vmid": "invalid format - value does not look like a valid VM ID\n"}},
		{"repeated scalar", "POST", qemuStart, v("node", "pve1", "vmid", "100", "vmid", "101"),
			map[string]string{"vmid": "type check ('integer') failed - got ARRAY"}},
		{"repeated string", "POST", qemuStart, v("node", "pve1", "vmid", "100", "force-cpu", "a", "force-cpu", "b"),
			map[string]string{"force-cpu": "type check ('string') failed - got ARRAY"}},
		{"array parameter", "POST", "/nodes/{node}/vzdump", v("node", "pve1", "all", "1", "exclude-path", "/tmp", "exclude-path", "/var/cache"), nil},
		{"indexed property", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "net0", "virtio,bridge=vmbr0", "net31", "e1000,bridge=vmbr1"), nil},
		{"indexed property out of range", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "net32", "virtio,bridge=vmbr0"),
			map[string]string{"net32": "property is not defined in schema and the schema does not allow additional properties"}},
		{"indexed property leading zero", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "scsi01", "local-lvm:1"),
			map[string]string{"scsi01": "property is not defined in schema and the schema does not allow additional properties"}},
		{"indexed template name is not a property", "PUT", qemuConfig, v("node", "pve1", "vmid", "100", "net[n]", "virtio"),
			map[string]string{"net[n]": "property is not defined in schema and the schema does not allow additional properties"}},
		{"property string with key alias", "POST", qemuCreate,
			v("node", "pve1", "vmid", "100", "net0", "virtio=BC:24:11:2E:4F:01,bridge=vmbr0,firewall=1,tag=10"), nil},
		{"property string default key", "POST", qemuCreate,
			v("node", "pve1", "vmid", "100", "scsi0", "local-lvm:32,iothread=on,discard=on", "ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.1"), nil},
		{"property string bad enum", "POST", qemuCreate, v("node", "pve1", "vmid", "100", "net0", "model=rtl9000,bridge=vmbr0"),
			map[string]string{"net0": "invalid format - format error\nnet0.model: value 'rtl9000' does not have a value in the enumeration 'e1000, e1000-82540em, e1000-82544gc, e1000-82545em, e1000e, i82551, i82557b, i82559er, ne2k_isa, ne2k_pci, pcnet, rtl8139, virtio, vmxnet3'\n"}},
		{"property string unknown key", "POST", qemuCreate, v("node", "pve1", "vmid", "100", "net0", "virtio,colour=blue"),
			map[string]string{"net0": "invalid format - invalid key in comma-separated list property: colour\n"}},
		{"property string missing key", "POST", qemuCreate, v("node", "pve1", "vmid", "100", "net0", "bridge=vmbr0"),
			map[string]string{"net0": "invalid format - format error\nnet0.model: property is missing and it is not optional\n"}},
		{"property string duplicate key", "POST", qemuCreate, v("node", "pve1", "vmid", "100", "net0", "virtio,bridge=a,bridge=b"),
			map[string]string{"net0": "invalid format - duplicate key in comma-separated list property: bridge\n"}},
		{"property string nested type", "POST", qemuCreate, v("node", "pve1", "vmid", "100", "net0", "virtio,mtu=big"),
			map[string]string{"net0": "invalid format - format error\nnet0.mtu: type check ('integer') failed - got 'big'\n"}},
		{"property string nested format", "POST", qemuCreate, v("node", "pve1", "vmid", "100", "net0", "virtio=FF:FF:FF:FF:FF:FF"),
			map[string]string{"net0": "invalid format - format error\nnet0.macaddr: invalid format - value does not look like a valid unicast MAC address\n\n"}},
		{"lxc net", "POST", lxcCreate, v("node", "pve1", "vmid", "200", "ostemplate", "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
			"net0", "name=eth0,bridge=vmbr0,ip=dhcp,firewall=1", "rootfs", "local-lvm:8", "features", "nesting=1", "unprivileged", "1"), nil},
		{"sdn zone", "POST", "/cluster/sdn/zones", v("zone", "z1", "type", "simple"), nil},
		{"sdn zone type enum", "POST", "/cluster/sdn/zones", v("zone", "z1", "type", "bogus"),
			map[string]string{"type": "value 'bogus' does not have a value in the enumeration 'evpn, faucet, qinq, simple, vlan, vxlan'"}},
		{"task upid", "GET", "/nodes/{node}/tasks/{upid}/status", v("node", "pve1", "upid", "UPID:pve1:00001234:00005678:65000000:qmstart:100:root@pam:"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := endpoint(t, tt.method, tt.path)
			got := e.Validate(tt.params)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate(%v)\n got: %q\nwant: %q", tt.params, got, tt.want)
			}
		})
	}
}

func TestParamsFromJSON(t *testing.T) {
	var body map[string]any
	if err := json.Unmarshal([]byte(`{"vmid":100,"onboot":true,"acpi":false,"cpulimit":1.5,"name":"web",
		"delete":["net1","ide2"],"description":null,"tags":[],"big":12345678901}`), &body); err != nil {
		t.Fatal(err)
	}
	got := ParamsFromJSON(body)
	want := map[string][]string{
		"vmid":        {"100"},
		"onboot":      {"1"},
		"acpi":        {"0"},
		"cpulimit":    {"1.5"},
		"name":        {"web"},
		"delete":      {"net1", "ide2"},
		"description": {""},
		"tags":        {""},
		"big":         {"12345678901"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParamsFromJSON\n got: %q\nwant: %q", got, want)
	}
	e := endpoint(t, "PUT", "/nodes/{node}/qemu/{vmid}/config")
	got["node"] = []string{"pve1"}
	delete(got, "big")
	if errs := e.Validate(got); errs != nil {
		t.Errorf("Validate(ParamsFromJSON(...)) = %q", errs)
	}
}

func TestCheckFormat(t *testing.T) {
	tests := []struct {
		format, value, want string
	}{
		{"pve-vmid", "100", ""},
		{"pve-vmid", "999999999", ""},
		{"pve-vmid", "1000000000", "value does not look like a valid VM ID\n"},
		{"pve-vmid", "0100", "value does not look like a valid VM ID\n"},
		{"pve-node", "pve-1", ""},
		{"pve-node", "-pve", "value does not look like a valid node name\n"},
		{"pve-configid", "net0", ""},
		{"pve-configid", "n", "invalid configuration ID 'n'\n"},
		{"pve-vmid-list", "", ""},
		{"pve-vmid-list", "100;101,102 103", ""},
		{"pve-vmid-list", "100\x00101", ""},
		{"pve-vmid-list", "100\x00\x00101", "value does not look like a valid VM ID\n"},
		{"pve-node-list", "pve1,pve2", ""},
		{"pve-storage-id", "local-zfs", ""},
		{"pve-storage-id", "local-", "storage ID 'local-' contains illegal characters\n"},
		{"pve-tag-list", "a+b.c_d-e", ""},
		{"pve-bridge-id", "vmbr0", ""},
		{"pve-bridge-id", "vm br0", "invalid bridge ID 'vm br0'\n"},
		{"mac-addr", "bc:24:11:00:00:01", ""},
		{"mac-addr", "01:00:5e:00:00:01", "value does not look like a valid unicast MAC address\n"},
		{"dns-name", "pve.example.com", ""},
		{"dns-name", "pve..example", "value does not look like a valid DNS name\n"},
		{"urlencoded", "a%20b", ""},
		{"urlencoded", "a b", "invalid urlencoded string: a b\n"},
		{"pve-startup-order", "order=1,up=30,down=60", ""},
		{"pve-startup-order", "2", ""},
		{"pve-startup-order", "first", "unable to parse startup options\n"},
		{"pve-task-status-type-list", "ok,Error", ""},
		{"pve-task-status-type-list", "ok,fine", "invalid status 'fine'\n"},
		{"pve-sdn-zone-id", "zone1", ""},
		{"pve-sdn-zone-id", "Bad_Zone", "zone ID 'Bad_Zone' contains illegal characters\n"},
		{"pve-sdn-vnet-id", "vnet12345", "vnet ID 'vnet12345' can't be more length than 8 characters\n"},
		{"pve-vmid-opt", "", ""},
		{"pve-vmid-opt", "12", "value does not look like a valid VM ID\n"},
		{"pve-poolid", "any thing", ""},
		{"no-such-format-list", "x,y", ""},
	}
	for _, tt := range tests {
		if got := checkFormat(tt.format, tt.value); got != tt.want {
			t.Errorf("checkFormat(%q, %q) = %q, want %q", tt.format, tt.value, got, tt.want)
		}
	}
}

func TestCheckReturns(t *testing.T) {
	decode := func(s string) any {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		method, path string
		data         string
		want         []string
	}{
		{"GET", "/version", `{"version":"9.1.3","release":"9.1","repoid":"abcdef12"}`, nil},
		{"GET", "/version", `{"version":"9.1.3","release":"9.1"}`,
			[]string{"data.repoid: property is missing and it is not optional"}},
		{"GET", "/version", `{"version":"9.1.3","release":"9.1","repoid":null}`,
			[]string{"data.repoid: property is missing and it is not optional"}},
		{"GET", "/version", `{"version":9.1,"release":"9.1","repoid":"x"}`,
			[]string{"data.version: type check ('string') failed - got number 9.1"}},
		{"GET", "/version", `[]`, []string{"data: type check ('object') failed - got array of 0"}},
		{"GET", "/version", `null`, []string{"data: property is missing and it is not optional"}},
		{"GET", "/cluster/nextid", `100`, nil},
		{"GET", "/cluster/nextid", `"100"`, nil},
		{"GET", "/cluster/nextid", `"1e2"`, []string{`data: type check ('integer') failed - got string "1e2"`}},
		{"GET", "/cluster/nextid", `true`, []string{`data: type check ('integer') failed - got boolean true`}},
		{"GET", "/cluster/nextid", `100.5`, []string{"data: type check ('integer') failed - got number 100.5"}},
		{"GET", "/nodes/{node}/qemu", `[{"vmid":100,"status":"running","template":0,"cpu":0.25,"name":"web"},{"vmid":101,"status":"stopped","template":true}]`, nil},
		{"GET", "/nodes/{node}/qemu", `[{"vmid":100,"status":"running","template":2}]`,
			[]string{"data[0].template: type check ('boolean') failed - got number 2"}},
		{"GET", "/nodes/{node}/qemu", `[{"status":"running"}]`,
			[]string{"data[0].vmid: property is missing and it is not optional"}},
		{"GET", "/nodes/{node}/qemu", `[{"vmid":100,"status":"paused"}]`,
			[]string{"data[0].status: value 'paused' is not in the enumeration of the schema"}},
		{"GET", "/nodes/{node}/qemu", `{}`, []string{"data: type check ('array') failed - got object []"}},
		{"GET", "/nodes/{node}/qemu/{vmid}/config", `{"digest":"abc","cores":2,"net0":"virtio=BC:24:11:00:00:01,bridge=vmbr0","scsi0":"local-lvm:vm-100-disk-0,size=32G"}`, nil},
		{"GET", "/nodes/{node}/qemu/{vmid}/config", `{"digest":"abc","net0":1}`,
			[]string{"data.net0: type check ('string') failed - got number 1"}},
		{"GET", "/nodes/{node}/qemu/{vmid}/config", `{"digest":"abc","whatever":1}`, nil},
		{"GET", "/nodes/{node}/lxc/{vmid}/config", `{"digest":"abc","lxc":[["lxc.apparmor.profile","unconfined"]]}`, nil},
		{"GET", "/nodes/{node}/lxc/{vmid}/config", `{"digest":"abc","lxc":[[1]]}`,
			[]string{"data.lxc[0][0]: type check ('string') failed - got number 1"}},
		{"PUT", "/nodes/{node}/qemu/{vmid}/config", `null`, nil},
		{"PUT", "/nodes/{node}/qemu/{vmid}/config", `"x"`, []string{`data: type check ('null') failed - got string "x"`}},
		{"POST", "/nodes/{node}/qemu/{vmid}/config", `null`, nil},
		{"GET", "/cluster/sdn/zones/{zone}", `{"zone":"z1","type":"simple","mtu":1500}`, nil},
		{"GET", "/cluster/sdn/zones/{zone}", `{"zone":"z1","type":"simple","mtu":"1500"}`, nil},
		{"GET", "/cluster/sdn/zones/{zone}", `{"zone":"z1","type":"simple","mtu":"big"}`,
			[]string{`data.mtu: type check ('integer') failed - got string "big"`}},
		{"GET", "/nodes/{node}/qemu", `[{"vmid":100,"status":"running","template":"1","cpu":"0.5"}]`, nil},
		{"GET", "/nodes/{node}/qemu", `[{"vmid":100,"status":"running","template":"yes"}]`,
			[]string{`data[0].template: type check ('boolean') failed - got string "yes"`}},
		{"GET", "/storage/{storage}", `{"storage":"local","type":"dir"}`, nil},
		{"GET", "/nodes/{node}/tasks/{upid}/log", `[{"n":1,"t":"starting"}]`, nil},
	}
	for _, tt := range tests {
		e := endpoint(t, tt.method, tt.path)
		got := e.CheckReturns(decode(tt.data))
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %s CheckReturns(%s)\n got: %q\nwant: %q", tt.method, tt.path, tt.data, got, tt.want)
		}
	}
}

func TestErrorBody(t *testing.T) {
	got := string(ErrorBody(map[string]string{
		"vmid": "type check ('integer') failed - got 'abc'",
		"node": "property is missing and it is not optional",
	}))
	want := `{"data":null,"errors":{"node":"property is missing and it is not optional","vmid":"type check ('integer') failed - got 'abc'"},"message":"Parameter verification failed.\n"}`
	if got != want {
		t.Errorf("ErrorBody\n got: %s\nwant: %s", got, want)
	}
}

// FuzzValidate feeds arbitrary parameters to every endpoint's Validate and
// arbitrary paths to Lookup; neither may panic, and an error map must
// render as a body that decodes again.
func FuzzValidate(f *testing.F) {
	f.Add(uint8(0), "vmid", "100", "net0", "virtio,bridge=vmbr0", "GET", "/nodes/pve1/qemu")
	f.Add(uint8(7), "delete", "net0,net1", "tags", "a;b", "POST", "/nodes/pve1/qemu/100/status/start")
	f.Add(uint8(20), "scsi0", "local-lvm:32,iothread=1", "ipconfig0", "ip=dhcp", "PUT", "/nodes/pve1/qemu/100/config")
	f.Add(uint8(33), "net1", "=,=,virtio=,e1000=x=y", "timeout", "1e99999", "DELETE", "/nodes//lxc/100")
	f.Add(uint8(41), "exclude-path", "/tmp", "vmid", "100\x00\x00", "GET", "/nodes/pve1/tasks/UPID:a:b/log")
	f.Add(uint8(50), "vmid", "", "vmid", "101", "PUT", "/cluster/sdn")
	eps := Load().Endpoints()
	f.Fuzz(func(t *testing.T, i uint8, k1, v1, k2, v2, method, path string) {
		e := eps[int(i)%len(eps)]
		params := map[string][]string{k1: {v1}}
		params[k2] = append(params[k2], v2)
		for _, name := range e.PathParams() {
			if _, ok := params[name]; !ok {
				params[name] = []string{v1}
			}
		}
		if errs := e.Validate(params); errs != nil {
			var body struct {
				Errors map[string]string `json:"errors"`
			}
			if err := json.Unmarshal(ErrorBody(errs), &body); err != nil {
				t.Fatalf("ErrorBody does not decode: %v", err)
			}
		}
		var data any = v1
		if json.Valid([]byte(v2)) {
			_ = json.Unmarshal([]byte(v2), &data)
		}
		e.CheckReturns(data)
		Load().Lookup(method, path)
	})
}
