package dns

import (
	"slices"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

func TestParse(t *testing.T) {
	tests := []struct {
		input   string
		name    string
		fall    []string
		wantErr bool
	}{
		{"moxxie src", "src", nil, false},
		{"moxxie src {\n fallthrough\n}", "src", []string{"."}, false},
		{"moxxie src {\n fallthrough moxxie.test 10.in-addr.arpa\n}", "src", []string{"moxxie.test.", "10.in-addr.arpa."}, false},
		{"moxxie", "", nil, true},
		{"moxxie a b", "", nil, true},
		{"moxxie src {\n ttl 30\n}", "", nil, true},
		{"moxxie src\nmoxxie other", "", nil, true},
	}
	for _, tt := range tests {
		name, f, err := parse(caddy.NewTestController("dns", tt.input))
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v, want error %v", tt.input, err, tt.wantErr)
			continue
		}
		if err == nil && (name != tt.name || !slices.Equal(f.Zones, tt.fall)) {
			t.Errorf("%q: name %q fallthrough %v, want %q %v", tt.input, name, f.Zones, tt.name, tt.fall)
		}
	}
}

func TestSetupNeedsRegisteredSource(t *testing.T) {
	if err := setup(caddy.NewTestController("dns", "moxxie nobody-registered-this")); err == nil {
		t.Error("setup with an unregistered source succeeded")
	}
	if err := RegisterSource("setup-test", NewStaticSource(nil)); err != nil {
		t.Fatal(err)
	}
	defer UnregisterSource("setup-test")
	if err := RegisterSource("setup-test", NewStaticSource(nil)); err == nil {
		t.Error("registering a name twice succeeded")
	}
	c := caddy.NewTestController("dns", "moxxie setup-test")
	if err := setup(c); err != nil {
		t.Fatal(err)
	}
	if h := handlerOf("setup-test"); h == nil {
		t.Error("setup did not record its handler")
	}
	if plugins := dnsserver.GetConfig(c).Plugin; len(plugins) != 1 {
		t.Errorf("setup added %d plugins, want 1", len(plugins))
	}
}

func TestDirectiveBeforeForward(t *testing.T) {
	d := dnsserver.Directives
	i, f := slices.Index(d, pluginName), slices.Index(d, "forward")
	if i < 0 || f < 0 || i != f-1 {
		t.Errorf("moxxie at %d, forward at %d in %v: want moxxie right before forward", i, f, d)
	}
	if e := slices.Index(d, "errors"); e > i {
		t.Errorf("errors at %d runs after moxxie at %d", e, i)
	}
	if got := withDirective(d); !slices.Equal(got, d) {
		t.Error("withDirective inserted moxxie twice")
	}
	if got := withDirective([]string{"errors"}); !slices.Equal(got, []string{"errors", "moxxie"}) {
		t.Errorf("without forward: %v, want moxxie last", got)
	}
}

func TestCorefile(t *testing.T) {
	got := Corefile("moxxie-1", "127.0.0.1", 5353, ServerConfig{
		Forward:     []string{"10.0.0.2", "10.0.0.3:53"},
		Fallthrough: []string{"moxxie.test."},
	})
	errs := "\terrors {\n\t\tconsolidate 1m \".*\" error show_first\n\t}\n"
	want := ".:5353 {\n\tbind 127.0.0.1\n" + errs + "\tmoxxie moxxie-1 {\n\t\tfallthrough moxxie.test.\n\t}\n\tforward . 10.0.0.2 10.0.0.3:53\n}\n"
	if got != want {
		t.Errorf("Corefile:\n%s\nwant:\n%s", got, want)
	}
	got = Corefile("moxxie-2", "", 53, ServerConfig{})
	want = ".:53 {\n" + errs + "\tmoxxie moxxie-2\n}\n"
	if got != want {
		t.Errorf("minimal Corefile:\n%s\nwant:\n%s", got, want)
	}
}
