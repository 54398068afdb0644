//go:build !linux

package dns

// startFastUDP is available on Linux only: elsewhere CoreDNS serves UDP.
func startFastUDP(*Moxxie, string, int, int) (*fastUDP, error) { return nil, nil }
