package fsm

import "github.com/hashicorp/go-memdb"

// SettingUpsertRequest sets a cluster setting. With CASIndex non-nil the
// write succeeds only if the setting's ModifyIndex equals it (0: the setting
// must not exist).
type SettingUpsertRequest struct {
	WriteMeta
	Key      string
	Value    string
	CASIndex *uint64
}

// Type returns SettingUpsertType.
func (*SettingUpsertRequest) Type() MessageType { return SettingUpsertType }

// SettingDeleteRequest deletes a cluster setting.
type SettingDeleteRequest struct {
	WriteMeta
	Key string
}

// Type returns SettingDeleteType.
func (*SettingDeleteRequest) Type() MessageType { return SettingDeleteType }

// ACLBootstrapRequest installs the first admin token. It succeeds once per
// cluster.
type ACLBootstrapRequest struct {
	WriteMeta
	Token Token
}

// Type returns ACLBootstrapType.
func (*ACLBootstrapRequest) Type() MessageType { return ACLBootstrapType }

// TokenCreateRequest stores a new API token; the leader generates its
// accessor ID and secret and stamps only the secret's hash.
type TokenCreateRequest struct {
	WriteMeta
	Token Token
}

// Type returns TokenCreateType.
func (*TokenCreateRequest) Type() MessageType { return TokenCreateType }

// TokenRevokeRequest deletes an API token.
type TokenRevokeRequest struct {
	WriteMeta
	AccessorID string
}

// Type returns TokenRevokeType.
func (*TokenRevokeRequest) Type() MessageType { return TokenRevokeType }

// IdempotencyReapRequest deletes idempotency records created before Before
// (leader time, Unix nanoseconds).
type IdempotencyReapRequest struct {
	WriteMeta
	Before int64
}

// Type returns IdempotencyReapType.
func (*IdempotencyReapRequest) Type() MessageType { return IdempotencyReapType }

// RestoreMarkRequest follows a snapshot restore. A restored state carries
// the indexes of the snapshot, lower than the log's, and SOA serials are
// the index of the DNS tables: applied, it moves that index to its own, so
// that serials go on rising from where they were before the restore.
type RestoreMarkRequest struct {
	WriteMeta
	// SnapshotIndex is the index the restored snapshot was taken at, for
	// the log.
	SnapshotIndex uint64
}

// Type returns RestoreMarkType.
func (*RestoreMarkRequest) Type() MessageType { return RestoreMarkType }

func applyRestoreMark(txn *memdb.Txn, index uint64, _ Command) (any, error) {
	return nil, touchTable(txn, tableZones, index)
}

// DNSSerialMarkRequest starts SOA serials that move with the changes DNS
// shows (DNSData.Index): applied, it records its index as the last change
// of DNS names, and from then on every change of a named address does. A
// state without the mark (one that the leader has not marked yet, such
// as one of an earlier version) serves the index of any change of zones,
// prefixes or addresses, as earlier versions did; either way every
// server serves the same serial at the same state.
type DNSSerialMarkRequest struct {
	WriteMeta
}

// Type returns DNSSerialMarkType.
func (*DNSSerialMarkRequest) Type() MessageType { return DNSSerialMarkType }

func applyDNSSerialMark(txn *memdb.Txn, index uint64, _ Command) (any, error) {
	if err := touchTable(txn, indexDNSSerialMark, index); err != nil {
		return nil, err
	}
	return nil, touchTable(txn, indexDNSNames, index)
}

// BatchRequest carries several encoded commands in one log entry, so that
// concurrent writes share one disk sync. Each entry applies in its own
// transaction: a rejected entry does not affect the others.
type BatchRequest struct {
	WriteMeta
	Entries [][]byte
}

// Type returns BatchType.
func (*BatchRequest) Type() MessageType { return BatchType }
