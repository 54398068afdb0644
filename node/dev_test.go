package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLastLogLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, log, want string }{
		{"the error line", "time=x level=INFO msg=starting\nError: config: node_id: required\n\n", "config: node_id: required"},
		{"a log line", "time=x level=INFO msg=starting\n", "time=x level=INFO msg=starting"},
		{"empty", "", "it wrote nothing"},
		{"long", strings.Repeat("x", 600), strings.Repeat("x", 500) + "..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, tc.name)
			if err := os.WriteFile(file, []byte(tc.log), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := lastLogLine(file); got != tc.want {
				t.Errorf("lastLogLine = %q, want %q", got, tc.want)
			}
		})
	}
	if got := lastLogLine(filepath.Join(dir, "missing")); !strings.Contains(got, "no such file") {
		t.Errorf("lastLogLine of a missing file = %q", got)
	}
}
