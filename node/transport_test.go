package node

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/moxxie/moxxie/pki"
)

// TestTransport_OnlyServerCertificatesSpeakRaft dials the raft port with
// certificates of every role: only a server certificate of the cluster CA
// gets an answer.
func TestTransport_OnlyServerCertificatesSpeakRaft(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	dir := t.TempDir()
	for _, tc := range []struct {
		role pki.Role
		ok   bool
	}{
		{pki.RoleServer, true},
		{pki.RoleClient, false},
		{pki.RoleAgent, false},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			tl := TestTLS(t, dir, "peer-"+string(tc.role), tc.role)
			pair, err := tls.LoadX509KeyPair(tl.CertFile, tl.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", s.RaftAddress(), &tls.Config{
				Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, //nolint:gosec // test peer
			})
			if err == nil {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err = c.Write([]byte{connRPC}); err == nil {
					err = json.NewEncoder(c).Encode(rpcRequest{Op: "info"})
				}
				var info peerInfo
				if err == nil {
					err = json.NewDecoder(c).Decode(&info)
				}
			}
			if tc.ok && err != nil {
				t.Fatalf("server certificate refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("%s certificate was answered on the raft port", tc.role)
			}
		})
	}
	// No certificate at all.
	c, err := tls.Dial("tcp", s.RaftAddress(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // test peer
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = c.Write([]byte{connRPC})
		var b [1]byte
		_, err = c.Read(b[:])
		c.Close()
	}
	if err == nil {
		t.Fatal("a peer without a certificate was answered")
	}
}
