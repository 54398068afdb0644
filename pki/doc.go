// Package pki is Moxxie's small cluster certificate authority: it creates
// the CA and the certificates of servers, clients and agents, reads the role
// a certificate carries, and builds the TLS configurations of the HTTPS API
// and of the raft transport.
//
// Keys are ECDSA P-256. Every certificate carries its role twice, as the
// Subject OrganizationalUnit "moxxie-<role>" and as the URI SAN
// "moxxie://role/<role>"; RoleOf requires the two to agree when both are
// present. Server certificates may be used for both ends of a connection
// (ServerAuth and ClientAuth); client and agent certificates only for the
// client end. A server certificate may also name the site of the
// federation its server belongs to, as the URI SAN "moxxie://site/<site>"
// (SiteOf): the servers of all sites share the CA, and the site is what
// binds a server's requests to another site to its own.
//
// Key pairs are reloadable without a restart: a Reloader serves the current
// pair to every handshake and swaps in the files' new contents on Reload.
// The CA bundle is read once, when a configuration is built.
package pki
