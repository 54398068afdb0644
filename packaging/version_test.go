package packaging

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDebVersion checks the Debian versions deb-version makes of git
// describe's answers, and that later commits sort after earlier ones.
func TestDebVersion(t *testing.T) {
	requireTools(t, "bash")
	cases := []struct{ describe, count, want string }{
		{"v1.2.3-0-gabc1234", "9", "1.2.3"},
		{"v1.2.3-5-gabc1234", "9", "1.2.3+git5.abc1234"},
		{"v1.2.3-0-gabc1234-dirty", "9", "1.2.3+dirty"},
		{"v1.3.0-rc.1-0-gabc1234", "9", "1.3.0~rc.1"},
		{"v1.3.0-rc.1-2-gabc1234-dirty", "9", "1.3.0~rc.1+git2.abc1234.dirty"},
		{"abc1234", "812", "0.0.0+git812.abc1234"},
		{"abc1234-dirty", "812", "0.0.0+git812.abc1234.dirty"},
	}
	for _, tc := range cases {
		out, err := exec.Command("./deb-version", tc.describe, tc.count).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("deb-version %s %s = %q, %v; want %q", tc.describe, tc.count, got, err, tc.want)
		}
	}
	for _, bad := range []string{"main", "v1.2_3-0-gabc1234", "1.2.3-0-gabc1234"} {
		if out, err := exec.Command("./deb-version", bad, "1").CombinedOutput(); err == nil {
			t.Errorf("deb-version %s: %q, want an error", bad, out)
		}
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		return
	}
	order := []string{"0.0.0+git9.f00", "0.0.0+git10.abc", "1.2.3~rc.1", "1.2.3~rc.1+git2.abc", "1.2.3", "1.2.3+dirty", "1.2.3+git1.abc", "1.2.3+git12.abc"}
	for i := 1; i < len(order); i++ {
		if err := exec.Command("dpkg", "--compare-versions", order[i-1], "lt", order[i]).Run(); err != nil {
			t.Errorf("%s does not sort before %s", order[i-1], order[i])
		}
	}
}
