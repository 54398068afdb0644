package pki

import "errors"

// Errors returned by the package. They are wrapped with the details of what
// was wrong; test for them with errors.Is.
var (
	// ErrNoRole means a certificate carries no Moxxie role.
	ErrNoRole = errors.New("certificate carries no moxxie role")
	// ErrUnknownRole means a role name is not one of RoleServer, RoleClient
	// or RoleAgent.
	ErrUnknownRole = errors.New("unknown role")
	// ErrRoleMismatch means a peer presented a certificate of another role
	// than the one required, or a certificate whose two role markers differ.
	ErrRoleMismatch = errors.New("certificate role mismatch")
	// ErrBadSite means a certificate names more than one site, or a site
	// name that is not valid, or names one in a certificate of a role
	// other than server.
	ErrBadSite = errors.New("bad certificate site")
	// ErrNoPeerCertificate means the peer presented no certificate where one
	// is required.
	ErrNoPeerCertificate = errors.New("peer presented no certificate")
	// ErrNoCertificate means a PEM file holds no certificate.
	ErrNoCertificate = errors.New("no certificate in file")
	// ErrKeyFileMode means a private key file is open to other users than
	// its owner: its mode has group or other permission bits.
	ErrKeyFileMode = errors.New("private key file is accessible to other users")
)
