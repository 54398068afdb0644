package node

import "strings"

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// trimLine drops hclog's timestamp and level prefix, which slog adds itself.
func trimLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.Index(s, "]"); i >= 0 && strings.HasPrefix(strings.TrimSpace(s[i+1:]), "") {
		if j := strings.Index(s, "["); j >= 0 && j < i {
			return strings.TrimSpace(s[i+1:])
		}
	}
	return s
}
