// Package fsm holds Moxxie's replicated state: the numbered message types
// written to the raft log, the go-memdb schema, the deterministic Apply and
// the versioned Snapshot/Restore format.
//
// Apply never reads the clock, randomness, the network or the disk: the
// leader stamps time, IDs and the caller into each command (WriteMeta).
package fsm

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/moxxie/moxxie/binenc"
)

// MessageType identifies a command in the raft log. The numbers are stored in
// the log and in snapshots, so types are only ever appended, never renumbered
// or reused.
type MessageType uint8

// Message types. Append new types at the end with the next free number.
const (
	SettingUpsertType        MessageType = 1
	SettingDeleteType        MessageType = 2
	ACLBootstrapType         MessageType = 3
	TokenCreateType          MessageType = 4
	TokenRevokeType          MessageType = 5
	IdempotencyReapType      MessageType = 6
	BatchType                MessageType = 7
	VRFCreateType            MessageType = 8
	VRFDeleteType            MessageType = 9
	PrefixCreateType         MessageType = 10
	PrefixUpdateType         MessageType = 11
	PrefixDeleteType         MessageType = 12
	PrefixAllocateType       MessageType = 13
	IPRangeCreateType        MessageType = 14
	IPRangeDeleteType        MessageType = 15
	AddressAllocateType      MessageType = 16
	AddressUpdateType        MessageType = 17
	AddressReleaseType       MessageType = 18
	PoolCreateType           MessageType = 19
	PoolDeleteType           MessageType = 20
	IDAllocateType           MessageType = 21
	IDReleaseType            MessageType = 22
	ZoneCreateType           MessageType = 23
	ZoneDeleteType           MessageType = 24
	QuarantineDrainType      MessageType = 25
	InventorySyncType        MessageType = 26
	InventoryStaleType       MessageType = 27
	OperationCreateType      MessageType = 28
	OperationUpdateType      MessageType = 29
	AuditRecordType          MessageType = 30
	AuditCheckpointType      MessageType = 31
	AuditTruncateType        MessageType = 32
	SecretPutType            MessageType = 33
	SecretDeleteType         MessageType = 34
	SecretKeyWrapType        MessageType = 35
	TenantCreateType         MessageType = 36
	TenantUpdateType         MessageType = 37
	TenantDeleteType         MessageType = 38
	ProjectCreateType        MessageType = 39
	ProjectUpdateType        MessageType = 40
	ProjectDeleteType        MessageType = 41
	MeterTickType            MessageType = 42
	RateCardPutType          MessageType = 43
	RateCardDeleteType       MessageType = 44
	CapacityPolicyPutType    MessageType = 45
	CapacityPolicyDeleteType MessageType = 46
	SDNZonePutType           MessageType = 47
	SDNZoneDeleteType        MessageType = 48
	SDNVnetPutType           MessageType = 49
	SDNVnetDeleteType        MessageType = 50
	SDNSubnetPutType         MessageType = 51
	SDNSubnetDeleteType      MessageType = 52
	SDNAllowPutType          MessageType = 53
	SDNAllowDeleteType       MessageType = 54
	SDNHostPutType           MessageType = 55
	SDNHostDeleteType        MessageType = 56
	SDNApplyType             MessageType = 57
	SDNReportType            MessageType = 58
	SDNRolloutAbortType      MessageType = 59
	StoragePolicyPutType     MessageType = 60
	StoragePolicyDeleteType  MessageType = 61
	PolicyTickType           MessageType = 62
	RunItemUpdateType        MessageType = 63
	PruneRecordType          MessageType = 64
	RecordProtectType        MessageType = 65
	StorageSyncType          MessageType = 66
	PoolSettingsPutType      MessageType = 67
	DRPlanPutType            MessageType = 68
	DRPlanDeleteType         MessageType = 69
	DRReplicaSyncType        MessageType = 70
	DRRunStartType           MessageType = 71
	DRItemUpdateType         MessageType = 72
	DRFenceType              MessageType = 73
	DRFailoverEndType        MessageType = 74
	// RetentionPruneType carries IgnoreUnknownTypeFlag: a server of an
	// older version skips it and keeps the history it would delete, until
	// a later prune after its upgrade.
	RetentionPruneType MessageType = 75 | IgnoreUnknownTypeFlag
	// DRIsolationType carries IgnoreUnknownTypeFlag: a server of an
	// older version skips it and behaves as its version did, which never
	// fenced a site by itself.
	DRIsolationType MessageType = 76 | IgnoreUnknownTypeFlag
	// RestoreMarkType carries IgnoreUnknownTypeFlag: a server of an
	// older version skips it, and its SOA serials stay where a restored
	// state put them until the next change of a zone, prefix or address.
	RestoreMarkType MessageType = 77 | IgnoreUnknownTypeFlag
	PoolUpdateType  MessageType = 78
	IDUpdateType    MessageType = 79
	ZoneUpdateType  MessageType = 80
	// DNSSerialMarkType carries IgnoreUnknownTypeFlag: a server of an
	// older version skips it, and its serials take the index of any
	// address change, as they did; a leader writes it when its state has
	// none (node's markDNSSerials).
	DNSSerialMarkType MessageType = 81 | IgnoreUnknownTypeFlag
	// DRRunRetryType has no IgnoreUnknownTypeFlag: a server that skipped
	// it would keep the failover failed that the others run again.
	DRRunRetryType MessageType = 82
	// LineageCheckType carries IgnoreUnknownTypeFlag: a server of an
	// older version skips the check, as it did without one.
	LineageCheckType MessageType = 83 | IgnoreUnknownTypeFlag
)

// IgnoreUnknownTypeFlag marks a message type that an older server which does
// not know it may skip instead of halting.
const IgnoreUnknownTypeFlag MessageType = 128

// String names the message type for logs and metrics.
func (t MessageType) String() string {
	if c, ok := commands[t]; ok {
		return c.name
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// Command is implemented by every command struct: the leader-stamped metadata
// that Apply relies on instead of the clock.
type Command interface {
	// Type returns the command's message type.
	Type() MessageType
	// Meta returns the leader-stamped metadata of the command.
	Meta() *WriteMeta
}

// WriteMeta is stamped into every command by the leader before it is
// proposed.
type WriteMeta struct {
	// Now is the leader's clock in Unix nanoseconds when it proposed the command.
	Now int64
	// Actor identifies the caller (token accessor ID) for audit and for
	// scoping idempotency keys.
	Actor string
	// RequestID is the X-Request-ID of the API request that caused the write.
	RequestID string
	// IdempotencyKey, when set, makes the command apply at most once: a
	// replay returns the first result.
	IdempotencyKey string
	// RequestHash fingerprints the request that carried the idempotency key,
	// so reusing a key for a different request is refused.
	RequestHash string
	// Audit, when set, makes Apply append an audit entry for the command
	// with its result (see audit.go). The API sets it on client writes;
	// commands the servers propose themselves leave it nil.
	Audit *AuditInfo `codec:",omitempty"`
	// TraceParent is the W3C traceparent of the leader's raft apply span
	// when the write was traced, so that every server's FSM apply of the
	// command joins the request's trace. Apply never reads it.
	TraceParent string `codec:",omitempty"`
}

// Meta returns m itself; it lets command structs satisfy Command by embedding
// WriteMeta.
func (m *WriteMeta) Meta() *WriteMeta { return m }

var msgpackHandle = newMsgpackHandle()

// newMsgpackHandle returns the msgpack settings of the log and snapshots.
func newMsgpackHandle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.Canonical = true
	h.RawToString = true
	h.WriteExt = true
	return h
}

// Encode serialises a command as one type byte followed by msgpack, or,
// for the commands written most often (see binaryMarker), by a layout
// encoded by hand.
func Encode(cmd Command) ([]byte, error) {
	if c, ok := cmd.(binaryCommand); ok {
		return encodeBinary(c), nil
	}
	var buf bytes.Buffer
	buf.WriteByte(uint8(cmd.Type()))
	if m, ok := cmd.(laterRules); ok && m.rulesLevel() > 1 {
		buf.Write([]byte{binaryMarker, markedMsgpackLevel, byte(m.rulesLevel())})
	} else if m, ok := cmd.(ruleMarked); ok && m.needsRules() {
		buf.Write([]byte{binaryMarker, markedMsgpack})
	}
	if err := codec.NewEncoder(&buf, msgpackHandle).Encode(cmd); err != nil {
		return nil, fmt.Errorf("fsm: encode %s: %w", cmd.Type(), err)
	}
	return buf.Bytes(), nil
}

// Decode parses a log entry produced by Encode into a fresh command value.
func Decode(buf []byte) (Command, error) { return decode(buf, nil) }

// decode is Decode with the strings the binary form marks as shared read
// through strs (nil: none).
func decode(buf []byte, strs *binenc.Interner) (Command, error) {
	if len(buf) == 0 {
		return nil, ErrEmptyEntry
	}
	t := MessageType(buf[0])
	c, ok := commands[t]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownType, uint8(t))
	}
	cmd := c.new()
	if _, ok := cmd.(ruleMarked); ok && len(buf) > 2 && buf[1] == binaryMarker && buf[2] == markedMsgpack {
		if err := decodeMsgpack(buf[3:], cmd); err != nil {
			return nil, fmt.Errorf("fsm: decode %s: %w", t, err)
		}
		return cmd, nil
	}
	if _, ok := cmd.(ruleMarked); ok && len(buf) > 3 && buf[1] == binaryMarker && buf[2] == markedMsgpackLevel {
		if buf[3] > rulesLevel {
			return nil, fmt.Errorf("fsm: decode %s: %w: it needs rules of level %d, and this server knows those up to %d: upgrade it", t, errBinaryCommand, buf[3], rulesLevel)
		}
		if err := decodeMsgpack(buf[4:], cmd); err != nil {
			return nil, fmt.Errorf("fsm: decode %s: %w", t, err)
		}
		return cmd, nil
	}
	if len(buf) > 1 && buf[1] == binaryMarker {
		bc, ok := cmd.(binaryCommand)
		if !ok {
			return nil, fmt.Errorf("fsm: decode %s: %w: the type has no binary form", t, errBinaryCommand)
		}
		if err := decodeBinary(buf[1:], bc, strs); err != nil {
			return nil, fmt.Errorf("fsm: decode %s: %w", t, err)
		}
		return cmd, nil
	}
	if err := decodeMsgpack(buf[1:], cmd); err != nil {
		return nil, fmt.Errorf("fsm: decode %s: %w", t, err)
	}
	return cmd, nil
}

// markedMsgpack follows binaryMarker in a msgpack command that asks for
// rules of a later version (ruleMarked). A server of an earlier version
// reads the marker as a binary form its type does not have and halts on
// the entry, as on any entry it cannot read, instead of applying the
// command by its older rules and so ending up in another state than the
// servers that know them.
const markedMsgpack = 0xFE

// ruleMarked is implemented by msgpack commands that can carry a mark
// asking Apply for rules added later (such as NameRules).
type ruleMarked interface {
	// needsRules reports whether the command carries a mark that can
	// change its outcome.
	needsRules() bool
}

// markedMsgpackLevel follows binaryMarker in a msgpack command that asks
// for rules of a level above the first (laterRules); the level follows
// it. A server that knows ruleMarked commands reads the marked ones after
// markedMsgpack: a rule added to a type that already had a mark would be
// dropped by the version before (msgpack skips fields it does not know),
// which would then apply the command by its older rules. That version
// reads this byte as a binary form the type does not have and halts; a
// later one halts on a level above its own.
const markedMsgpackLevel = 0xFD

// rulesLevel is the level of the newest rules this version knows. A rule
// added to a command type that already has a mark (ruleMarked) gets the
// next level, and the type's rulesLevel method returns it for commands
// that carry that rule.
const rulesLevel = 2

// laterRules is implemented by ruleMarked commands with rules of a level
// above the first.
type laterRules interface {
	// rulesLevel returns the level of the newest rule the command carries
	// (0 or 1: none above the first).
	rulesLevel() int
}

func encodeMsgpack(v any) ([]byte, error) {
	var buf bytes.Buffer
	err := codec.NewEncoder(&buf, msgpackHandle).Encode(v)
	return buf.Bytes(), err
}

func decodeMsgpack(buf []byte, v any) error {
	return codec.NewDecoderBytes(buf, msgpackHandle).Decode(v)
}
