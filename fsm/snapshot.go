package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/audit"
	"github.com/moxxie/moxxie/sdn"
)

// SnapshotVersion is the version of the FSM snapshot stream written by
// Persist. Restore accepts every version up to it.
const SnapshotVersion = 1

var snapshotMagic = [8]byte{'M', 'O', 'X', 'X', 'F', 'S', 'M', 0}

// recordType tags each object in a snapshot stream. Like message types they
// are only ever appended.
type recordType uint8

const (
	recIndex         recordType = 1
	recSetting       recordType = 2
	recToken         recordType = 3
	recACL           recordType = 4
	recIdempotency   recordType = 5
	recVRF           recordType = 6
	recPrefix        recordType = 7
	recIPRange       recordType = 8
	recAddress       recordType = 9
	recPool          recordType = 10
	recIDAlloc       recordType = 11
	recZone          recordType = 12
	recSpace         recordType = 13
	recRun           recordType = 14
	recHold          recordType = 15
	recIPAMClock     recordType = 16
	recInvNode       recordType = 17
	recInvGuest      recordType = 18
	recInvStorage    recordType = 19
	recInvState      recordType = 20
	recOperation     recordType = 21
	recAudit         recordType = 22
	recAuditCP       recordType = 23
	recSecret        recordType = 24
	recSecretKey     recordType = 25
	recTenant        recordType = 26
	recProject       recordType = 27
	recUsage         recordType = 28
	recMeterClock    recordType = 29
	recMeterRates    recordType = 30
	recMeterBucket   recordType = 31
	recRateCard      recordType = 32
	recCapPolicy     recordType = 33
	recCapSample     recordType = 34
	recSDNZone       recordType = 35
	recSDNVnet       recordType = 36
	recSDNSubnet     recordType = 37
	recSDNAllow      recordType = 38
	recSDNHost       recordType = 39
	recSDNPlan       recordType = 40
	recSDNRollout    recordType = 41
	recStoragePolicy recordType = 42
	recRunItem       recordType = 43
	recPolicySnap    recordType = 44
	recBackup        recordType = 45
	recVolume        recordType = 46
	recPoolSettings  recordType = 47
	recStorageSample recordType = 48
	recDRPlan        recordType = 49
	recDRItem        recordType = 50
	recDRConflict    recordType = 51
	recEnd           recordType = 255
)

// maxRecordSize bounds one record so a corrupt length cannot make Restore
// allocate without limit.
const maxRecordSize = 64 << 20

type tableRecord struct {
	table string
	rec   recordType
	new   func() any
}

// snapshotTables lists what a snapshot holds, in the order it is written.
var snapshotTables = []tableRecord{
	{tableIndex, recIndex, func() any { return new(IndexEntry) }},
	{tableSettings, recSetting, func() any { return new(Setting) }},
	{tableTokens, recToken, func() any { return new(Token) }},
	{tableACL, recACL, func() any { return new(ACLState) }},
	{tableIdempotency, recIdempotency, func() any { return new(IdempotencyRecord) }},
	{tableVRFs, recVRF, func() any { return new(VRF) }},
	{tablePrefixes, recPrefix, func() any { return new(Prefix) }},
	{tableIPRanges, recIPRange, func() any { return new(IPRange) }},
	{tableAddresses, recAddress, func() any { return new(Address) }},
	{tablePools, recPool, func() any { return new(Pool) }},
	{tableIDAllocs, recIDAlloc, func() any { return new(IDAllocation) }},
	{tableZones, recZone, func() any { return new(Zone) }},
	{tableSpaces, recSpace, func() any { return new(spaceUsage) }},
	{tableRuns, recRun, func() any { return new(storedRun) }},
	{tableHolds, recHold, func() any { return new(storedHold) }},
	{tableIPAMClock, recIPAMClock, func() any { return new(ipamClock) }},
	{tableInvNodes, recInvNode, func() any { return new(InvNode) }},
	{tableInvGuests, recInvGuest, func() any { return new(InvGuest) }},
	{tableInvStorage, recInvStorage, func() any { return new(InvStorage) }},
	{tableInvState, recInvState, func() any { return new(InvState) }},
	{tableOperations, recOperation, func() any { return new(Operation) }},
	// The audit table stores blocks of entries; a snapshot holds one
	// record per entry (see auditRestorer).
	{tableAudit, recAudit, func() any { return new(audit.Entry) }},
	{tableAuditCheckpoints, recAuditCP, func() any { return new(audit.Checkpoint) }},
	{tableSecretKeys, recSecretKey, func() any { return new(SecretKey) }},
	{tableSecrets, recSecret, func() any { return new(Secret) }},
	{tableTenants, recTenant, func() any { return new(Tenant) }},
	{tableProjects, recProject, func() any { return new(Project) }},
	{tableUsage, recUsage, func() any { return new(Usage) }},
	{tableMeterClock, recMeterClock, func() any { return new(MeterClock) }},
	{tableMeterRates, recMeterRates, func() any { return new(MeterRates) }},
	{tableMeterBuckets, recMeterBucket, func() any { return new(MeterBucket) }},
	{tableRateCards, recRateCard, func() any { return new(RateCard) }},
	{tableCapacityPolicies, recCapPolicy, func() any { return new(CapacityPolicy) }},
	{tableCapacitySamples, recCapSample, func() any { return new(CapacitySample) }},
	{tableSDNZones, recSDNZone, func() any { return new(SDNZone) }},
	{tableSDNVnets, recSDNVnet, func() any { return new(SDNVnet) }},
	{tableSDNSubnets, recSDNSubnet, func() any { return new(SDNSubnet) }},
	{tableSDNAllows, recSDNAllow, func() any { return new(SDNAllow) }},
	// A host and its rollout state are one record.
	{tableSDNHosts, recSDNHost, func() any { return new(sdnHostRow) }},
	{tableSDNPlans, recSDNPlan, func() any { return new(sdn.Plan) }},
	{tableSDNRollouts, recSDNRollout, func() any { return new(SDNRollout) }},
	{tableStoragePolicies, recStoragePolicy, func() any { return new(StoragePolicy) }},
	{tableRunItems, recRunItem, func() any { return new(RunItem) }},
	{tablePolicySnapshots, recPolicySnap, func() any { return new(PolicySnapshot) }},
	{tableBackups, recBackup, func() any { return new(Backup) }},
	{tableVolumes, recVolume, func() any { return new(Volume) }},
	{tablePoolSettings, recPoolSettings, func() any { return new(PoolSettings) }},
	{tableStorageSamples, recStorageSample, func() any { return new(StorageSample) }},
	{tableDRPlans, recDRPlan, func() any { return new(DRPlan) }},
	{tableDRItems, recDRItem, func() any { return new(DRItem) }},
	{tableDRConflicts, recDRConflict, func() any { return new(DRConflict) }},
}

type fsmSnapshot struct {
	txn *memdb.Txn
}

// Persist writes the snapshot: a header, then one record type byte, a
// length and a msgpack body per object, then an end record. Objects are
// written in index order, so equal states give byte-identical snapshots.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := WriteSnapshot(sink, s.txn); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release is a no-op: the memdb snapshot needs no cleanup.
func (s *fsmSnapshot) Release() {}

// WriteSnapshot writes the state visible in txn to w in the snapshot format.
func WriteSnapshot(w io.Writer, txn *memdb.Txn) error {
	bw := bufio.NewWriter(w)
	var hdr [12]byte
	copy(hdr[:8], snapshotMagic[:])
	binary.BigEndian.PutUint32(hdr[8:], SnapshotVersion)
	if _, err := bw.Write(hdr[:]); err != nil {
		return err
	}
	for _, t := range snapshotTables {
		it, err := txn.Get(t.table, "id")
		if err != nil {
			return err
		}
		write := func(obj any) error {
			if r, ok := obj.(*IdempotencyRecord); ok {
				obj = r.stored()
			}
			body, err := encodeMsgpack(obj)
			if err != nil {
				return fmt.Errorf("fsm: snapshot %s: %w", t.table, err)
			}
			return writeRecord(bw, t.rec, body)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if b, ok := raw.(*auditBlock); ok {
				for i := range b.Entries {
					if err := write(&b.Entries[i]); err != nil {
						return err
					}
				}
			} else if err := write(raw); err != nil {
				return err
			}
		}
	}
	if err := writeRecord(bw, recEnd, nil); err != nil {
		return err
	}
	return bw.Flush()
}

// recordHandle decodes snapshot records strictly: a field the record's
// type does not have means a damaged record type or a snapshot from a
// newer server, and is refused rather than dropped.
var recordHandle = func() *codec.MsgpackHandle {
	h := newMsgpackHandle()
	h.ErrorIfNoField = true
	return h
}()

// decodeRecord decodes a record body that must hold exactly one value: a
// body with bytes left over means damaged framing.
func decodeRecord(body []byte, obj any) error {
	d := codec.NewDecoderBytes(body, recordHandle)
	if err := d.Decode(obj); err != nil {
		return err
	}
	if n := d.NumBytesRead(); n != len(body) {
		return fmt.Errorf("%d bytes left after the value", len(body)-n)
	}
	return nil
}

func writeRecord(w io.Writer, t recordType, body []byte) error {
	var h [5]byte
	h[0] = byte(t)
	binary.BigEndian.PutUint32(h[1:], uint32(len(body)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// readSnapshot parses a whole snapshot stream into a new memdb. It returns
// the highest table index seen as the store's latest index.
func readSnapshot(r io.Reader) (*memdb.MemDB, uint64, error) {
	br := bufio.NewReader(r)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	if [8]byte(hdr[:8]) != snapshotMagic {
		return nil, 0, fmt.Errorf("%w: not a Moxxie state snapshot", ErrBadSnapshot)
	}
	if v := binary.BigEndian.Uint32(hdr[8:]); v == 0 || v > SnapshotVersion {
		return nil, 0, fmt.Errorf("%w: version %d, this server reads up to %d", ErrBadSnapshot, v, SnapshotVersion)
	}
	byRec := map[recordType]tableRecord{}
	for _, t := range snapshotTables {
		byRec[t.rec] = t
	}
	db := newMemDB()
	txn := db.Txn(true)
	defer txn.Abort()
	var latest uint64
	var blocks auditRestorer
	for {
		var h [5]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return nil, 0, fmt.Errorf("%w: truncated: %v", ErrBadSnapshot, err)
		}
		rt, n := recordType(h[0]), binary.BigEndian.Uint32(h[1:])
		if rt == recEnd {
			if n != 0 {
				return nil, 0, fmt.Errorf("%w: end record of %d bytes", ErrBadSnapshot, n)
			}
			break
		}
		if n > maxRecordSize {
			return nil, 0, fmt.Errorf("%w: record of %d bytes", ErrBadSnapshot, n)
		}
		body, err := readBody(br, n)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: truncated record: %v", ErrBadSnapshot, err)
		}
		t, ok := byRec[rt]
		if !ok {
			return nil, 0, fmt.Errorf("%w: unknown record type %d", ErrBadSnapshot, rt)
		}
		obj := t.new()
		if err := decodeRecord(body, obj); err != nil {
			return nil, 0, fmt.Errorf("%w: %s record: %v", ErrBadSnapshot, t.table, err)
		}
		if ie, ok := obj.(*IndexEntry); ok && ie.Index > latest {
			latest = ie.Index
		}
		if e, ok := obj.(*audit.Entry); ok {
			if err := blocks.restore(txn, e); err != nil {
				return nil, 0, fmt.Errorf("%w: %s record: %v", ErrBadSnapshot, t.table, err)
			}
			continue
		}
		if err := txn.Insert(t.table, obj); err != nil {
			return nil, 0, fmt.Errorf("%w: %s record: %v", ErrBadSnapshot, t.table, err)
		}
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("%w: trailing data after end record", ErrBadSnapshot)
	}
	if err := rebuildIdemEntries(txn); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	txn.Commit()
	return db, latest, nil
}

// auditRestorer groups the audit entries of a snapshot into blocks again:
// consecutive entries recorded at the same raft index share a block, as
// they did when they were applied in one batch.
type auditRestorer struct {
	block *auditBlock
}

func (r *auditRestorer) restore(txn *memdb.Txn, e *audit.Entry) error {
	if b := r.block; b != nil {
		last := b.last()
		if e.Seq <= last.Seq {
			return fmt.Errorf("audit entry %d after entry %d", e.Seq, last.Seq)
		}
		if e.Seq == last.Seq+1 && e.Index == last.Index {
			b.Entries = append(b.Entries, *e)
			return nil
		}
	}
	r.block = &auditBlock{First: e.Seq, Entries: []audit.Entry{*e}}
	return txn.Insert(tableAudit, r.block)
}

// readBody reads a record body of n bytes. A large n is not trusted before
// the data is there: a corrupt length in a short stream must not allocate
// up to maxRecordSize.
func readBody(r io.Reader, n uint32) ([]byte, error) {
	if n <= 1<<20 {
		body := make([]byte, n)
		_, err := io.ReadFull(r, body)
		return body, err
	}
	body, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err == nil && len(body) != int(n) {
		err = io.ErrUnexpectedEOF
	}
	return body, err
}

// TableCounts returns the number of objects per table in a snapshot stream,
// validating the whole stream on the way.
func TableCounts(r io.Reader) (map[string]int, error) {
	db, _, err := readSnapshot(r)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	txn := db.Txn(false)
	for _, t := range snapshotTables {
		it, err := txn.Get(t.table, "id")
		if err != nil {
			return nil, err
		}
		n := 0
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if b, ok := raw.(*auditBlock); ok {
				n += len(b.Entries)
			} else {
				n++
			}
		}
		out[t.table] = n
	}
	return out, nil
}

// Dump writes the store's current state in snapshot format; two stores that
// applied the same log dump identical bytes.
func (s *Store) Dump(w io.Writer) error {
	return WriteSnapshot(w, s.db.Txn(false))
}

// DumpIndexed is Dump that also returns the highest table index in the
// dumped state, read in the same transaction.
func (s *Store) DumpIndexed(w io.Writer) (uint64, error) {
	txn := s.db.Txn(false)
	var max uint64
	it, err := txn.Get(tableIndex, "id")
	if err != nil {
		return 0, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if i := raw.(*IndexEntry).Index; i > max {
			max = i
		}
	}
	return max, WriteSnapshot(w, txn)
}
