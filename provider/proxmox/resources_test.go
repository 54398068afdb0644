package proxmox

import (
	"encoding/json"
	"reflect"
	"testing"
)

// refDecode is what decodeResources must agree with.
func refDecode(b []byte) ([]resource, error) {
	var out struct {
		Data []resource `json:"data"`
	}
	err := json.Unmarshal(b, &out)
	return out.Data, err
}

var resourceSeeds = []string{
	`{"data":[{"id":"qemu/100","type":"qemu","node":"pve1","vmid":100,"name":"web","status":"running","maxmem":2147483648,"mem":1073741824,"cpu":0.03,"maxcpu":2,"tags":"a;b","template":0,"diskread":1,"netin":2,"uptime":99}]}`,
	`{"data":[{"id":"node/pve1","type":"node","node":"pve1","status":"online","maxcpu":16,"cpu":0.5,"level":"","cgroup-mode":2}]}`,
	`{"data":[{"id":"storage/pve1/local","type":"storage","node":"pve1","storage":"local","plugintype":"dir","content":"iso,backup","shared":0,"disk":5,"maxdisk":10}]}`,
	`{"data":[{"vmid":"101","template":"1","maxcpu":"4","mem":"12","shared":true,"cpu":"0.25","uptime":null}]}`,
	`{"data":[{"name":"w\u00e9b \"quoted\"","tags":null,"Type":"lxc","VMID":7}], "other": {"x": [1, {"y": null}]}}`,
	`{"data":[null, {}]}`,
	`{"data":null}`,
	`null`,
	` { "data" : [ { "vmid" : 1e2 } ] } `,
	`{"data":[{"vmid":1.6,"maxcpu":-3,"mem":-1}]}`,
	`{"data":[{"name":5}]}`,
	`{"data":[{"vmid":{}}]}`,
	`{"data":[{"vmid":"abc"}]}`,
	`{"data":[}`,
	`{"data":[{"name":"x"}]} trailing`,
	`{"data":[{"name":"a\nb"}]}`,
	"{\"data\":[{\"name\":\"\xff\xfe\"}]}",
	// A repeated key: the last value counts, and null reads as zero.
	`{"data":[{"cpu":"1","cpu":null,"name":"a","name":null}]}`,
	// Escapes are checked also in strings that are skipped.
	`{"other":[{"x":"\0"}],"data":[]}`,
	`{"data":[{"id":"\u00zz"}]}`,
	`{"data":[{"id":"\u00e9\/\b"}]}`,
}

func TestDecodeResources_MatchesEncodingJSON(t *testing.T) {
	for _, s := range resourceSeeds {
		compareDecoders(t, []byte(s))
	}
}

func compareDecoders(t *testing.T, b []byte) {
	t.Helper()
	want, wantErr := refDecode(b)
	got, gotErr := decodeResources(b)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q: encoding/json error %v, decodeResources error %v", b, wantErr, gotErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%q:\n got  %+v\n want %+v", b, got, want)
	}
}

func FuzzDecodeResources(f *testing.F) {
	for _, s := range resourceSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { compareDecoders(t, b) })
}

func BenchmarkDecodeResources(b *testing.B) {
	body := benchResources(10000)
	b.SetBytes(int64(len(body)))
	b.Run("decodeResources", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeResources(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			if _, err := refDecode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchResources(n int) []byte {
	type res map[string]any
	var data []res
	for i := range n {
		data = append(data, res{
			"id": "qemu/" + string(rune('0'+i%10)), "type": "qemu", "node": "pve1", "vmid": 100 + i, "name": "guest-name",
			"status": "running", "maxmem": 2147483648, "mem": 1073741824, "cpu": 0.0312, "maxcpu": 2, "disk": 0,
			"maxdisk": 34359738368, "diskread": 123456, "diskwrite": 654321, "netin": 1234, "netout": 4321,
			"uptime": 86400, "tags": "prod;web", "template": 0, "hastate": "started",
		})
	}
	b, _ := json.Marshal(map[string]any{"data": data})
	return b
}
