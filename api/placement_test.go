package api

import (
	"errors"
	"testing"
)

func TestPickNode(t *testing.T) {
	loads := []nodeLoad{
		{name: "pve1", online: true, maxCPU: 8, maxMiB: 16384, usedMiB: 12288},
		{name: "pve2", online: true, maxCPU: 16, maxMiB: 32768, usedMiB: 8192},
		{name: "pve3", online: false, maxCPU: 64, maxMiB: 262144},
		{name: "pve4", online: true, maxCPU: 4, maxMiB: 65536, usedMiB: 0},
	}
	cases := []struct {
		name       string
		want       string
		cores, mem int
		node       string
		status     int
		field      string
	}{
		{name: "most free memory that fits", cores: 2, mem: 2048, node: "pve4"},
		{name: "cores rule out the emptiest", cores: 8, mem: 2048, node: "pve2"},
		{name: "offline nodes never chosen", cores: 32, mem: 1024, status: 409, field: "node"},
		{name: "nothing fits", cores: 1, mem: 70000, status: 409, field: "node"},
		{name: "requested node", want: "pve1", cores: 1, mem: 4096, node: "pve1"},
		{name: "requested node full", want: "pve1", cores: 1, mem: 4097, status: 409, field: "node"},
		{name: "requested node too small", want: "pve4", cores: 8, mem: 1, status: 400, field: "cores"},
		{name: "requested node offline", want: "pve3", cores: 1, mem: 1, status: 409, field: "node"},
		{name: "requested node unknown", want: "pve9", cores: 1, mem: 1, status: 400, field: "node"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickNode(loads, tc.want, tc.cores, tc.mem)
			if tc.status == 0 {
				if err != nil || got != tc.node {
					t.Fatalf("pickNode = %q, %v; want %q", got, err, tc.node)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != tc.status || ae.field != tc.field {
				t.Fatalf("pickNode error %v, want %d naming %s", err, tc.status, tc.field)
			}
		})
	}
}
