package fsm

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/quota"
)

// Metering: usage accrues per tenant and project into hourly buckets, and
// into daily rollups of the same numbers for long reports. The leader
// proposes a MeterTickRequest every minute with its clock; Apply accrues
// the rates recorded at the previous tick over [Since, Now) and records
// the rates of the state as it is now for the next tick. Since is part of
// the state, so every interval is accrued exactly once whichever server
// leads: a new leader's first tick covers the time from the old leader's
// last one, and a tick whose Now is not past Since (a leader with a clock
// behind) accrues nothing. A change between two ticks is metered from the
// next tick on, so accuracy is the tick interval.
//
// Rates partition usage: a guest or address of a project is metered on
// (tenant, project) only, one of no project on (tenant, ""); a tenant's
// total is the sum of its rows.

// Table names of metering.
const (
	tableMeterClock   = "meter_clock"
	tableMeterRates   = "meter_rates"
	tableMeterBuckets = "meter_buckets"
	tableRateCards    = "rate_cards"
)

// meterClockID is the ID of the one meter clock row.
const meterClockID = "meter"

// MeterClock is how far usage has been metered, in unix milliseconds of
// leader time.
type MeterClock struct {
	ID    string `json:"-" codec:"ID"`
	Since int64  `json:"since"`
}

// MeterRates are the rates of one tenant and project, recorded at the
// last tick and accrued at the next.
type MeterRates struct {
	// Scope is "tenant/project", the project empty for none.
	Scope   string      `json:"scope"`
	Tenant  string      `json:"tenant"`
	Project string      `json:"project,omitempty"`
	Rates   quota.Rates `json:"rates"`
}

// MeterBucket is the usage of one tenant and project over one hour or one
// UTC day.
type MeterBucket struct {
	// Key orders buckets by span, start, tenant and project; TenantKey by
	// tenant, span, start and project.
	Key       string `json:"-" codec:"Key"`
	TenantKey string `json:"-" codec:"TenantKey"`
	quota.Bucket
}

// bucketKeys returns the keys of a bucket. Tenant and project names
// cannot hold '/', and starts are zero-padded, so the keys sort in the
// order of their parts.
func bucketKeys(tenant, project string, span, start int64) (key, tenantKey string) {
	s := "h"
	if span == quota.DayMillis {
		s = "d"
	}
	return fmt.Sprintf("%s/%016d/%s/%s", s, start, tenant, project), fmt.Sprintf("%s/%s/%016d/%s", tenant, s, start, project)
}

// MeterTickRequest accrues usage up to Now.
type MeterTickRequest struct {
	WriteMeta
}

// Type returns MeterTickType.
func (*MeterTickRequest) Type() MessageType { return MeterTickType }

// MeterTickResult says what a tick metered.
type MeterTickResult struct {
	// From and To are the interval accrued (unix ms); equal when nothing was.
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Scopes is the number of tenant and project rows metered.
	Scopes int `json:"scopes"`
}

func applyMeterTick(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*MeterTickRequest)
	now := req.Now / 1e6
	raw, err := txn.First(tableMeterClock, "id", meterClockID)
	if err != nil {
		return nil, err
	}
	var clock *MeterClock
	if raw != nil {
		clock = raw.(*MeterClock)
		if now <= clock.Since {
			return &MeterTickResult{From: clock.Since, To: clock.Since}, nil
		}
	}
	// The first tick of an hour samples the nodes' allocation for the
	// capacity forecast and, after accruing, drops hourly buckets past
	// their retention.
	newHour := clock == nil || now/quota.HourMillis > clock.Since/quota.HourMillis
	if newHour {
		if err := sampleCapacity(txn, index, now-now%quota.HourMillis); err != nil {
			return nil, err
		}
		if err := sampleStorage(txn, index, now-now%quota.HourMillis); err != nil {
			return nil, err
		}
	}
	out := &MeterTickResult{From: now, To: now}
	if clock != nil {
		out.From = clock.Since
		it, err := txn.Get(tableMeterRates, "id")
		if err != nil {
			return nil, err
		}
		var rows []*MeterRates
		for raw := it.Next(); raw != nil; raw = it.Next() {
			rows = append(rows, raw.(*MeterRates))
		}
		for _, r := range rows {
			var werr error
			quota.Accrue(clock.Since, now, r.Rates, func(hour int64, q quota.Quantities) {
				if werr == nil {
					werr = addToBuckets(txn, index, r.Tenant, r.Project, hour, q)
				}
			})
			if werr != nil {
				return nil, werr
			}
		}
		out.Scopes = len(rows)
	}
	if err := insert(txn, tableMeterClock, index, &MeterClock{ID: meterClockID, Since: now}); err != nil {
		return nil, err
	}
	if err := recordRates(txn, index); err != nil {
		return nil, err
	}
	if newHour {
		if err := dropHourlyBuckets(txn, index, now-hourlyRetention); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// hourlyRetention is how long hourly buckets are kept (ms): longer than
// the longest hourly report. Daily rollups are kept for good.
const hourlyRetention = 100 * quota.DayMillis

// dropHourlyBuckets deletes the hourly buckets that start before cutoff.
func dropHourlyBuckets(txn *memdb.Txn, index uint64, cutoff int64) error {
	it, err := txn.LowerBound(tableMeterBuckets, "id", "h/")
	if err != nil {
		return err
	}
	var old []any
	for raw := it.Next(); raw != nil; raw = it.Next() {
		b := raw.(*MeterBucket)
		if b.Span != quota.HourMillis || b.Start >= cutoff {
			break
		}
		old = append(old, b)
	}
	for _, b := range old {
		if err := remove(txn, tableMeterBuckets, index, b); err != nil {
			return err
		}
	}
	return nil
}

// addToBuckets adds q, accrued in the hour starting at hour, to the hourly
// bucket and the daily rollup of tenant and project.
func addToBuckets(txn *memdb.Txn, index uint64, tenant, project string, hour int64, q quota.Quantities) error {
	for _, span := range []int64{quota.HourMillis, quota.DayMillis} {
		start := hour - hour%span
		key, tkey := bucketKeys(tenant, project, span, start)
		b := &MeterBucket{Key: key, TenantKey: tkey, Bucket: quota.Bucket{Tenant: tenant, Project: project, Start: start, Span: span}}
		raw, err := txn.First(tableMeterBuckets, "id", key)
		if err != nil {
			return err
		}
		if raw != nil {
			b.Q = raw.(*MeterBucket).Q
		}
		b.Q = b.Q.Add(q)
		if err := insert(txn, tableMeterBuckets, index, b); err != nil {
			return err
		}
	}
	return nil
}

// currentRates computes what every tenant and project holds now: guests
// from the inventory, addresses from the usage counters.
func currentRates(txn *memdb.Txn) (map[string]*MeterRates, error) {
	out := map[string]*MeterRates{}
	row := func(tenant, project string) *MeterRates {
		scope := tenant + "/" + project
		r := out[scope]
		if r == nil {
			r = &MeterRates{Scope: scope, Tenant: tenant, Project: project}
			out[scope] = r
		}
		return r
	}
	it, err := txn.Get(tableInvGuests, "id")
	if err != nil {
		return nil, err
	}
	const gib = 1 << 30
	for raw := it.Next(); raw != nil; raw = it.Next() {
		g := raw.(*InvGuest)
		if g.Tenant == "" || g.Template || g.Gone {
			continue
		}
		r := row(g.Tenant, g.Project)
		cpu, mem := quota.VCPUStopped, quota.MemoryStopped
		if g.Status == "running" {
			cpu, mem = quota.VCPURunning, quota.MemoryRunning
		}
		r.Rates[meterIndex(cpu)] += int64(g.MaxCPU)
		r.Rates[meterIndex(mem)] += int64(g.MaxMem >> 20)
		r.Rates[meterIndex(quota.Disk)] += int64((g.MaxDisk + gib - 1) / gib)
	}
	uit, err := txn.Get(tableUsage, "id")
	if err != nil {
		return nil, err
	}
	inProjects := map[string]int64{}
	totals := map[string]int64{}
	for raw := uit.Next(); raw != nil; raw = uit.Next() {
		u := raw.(*Usage)
		if u.Project != "" {
			if u.Addresses != 0 {
				row(u.Tenant, u.Project).Rates[meterIndex(quota.Addresses)] += u.Addresses
			}
			inProjects[u.Tenant] += u.Addresses
		} else {
			totals[u.Tenant] = u.Addresses
		}
	}
	for tenant, n := range totals {
		if n -= inProjects[tenant]; n != 0 {
			row(tenant, "").Rates[meterIndex(quota.Addresses)] += n
		}
	}
	for scope, r := range out {
		if r.Rates == (quota.Rates{}) {
			delete(out, scope)
		}
	}
	return out, nil
}

func meterIndex(m quota.Meter) int { return slices.Index(quota.Meters, m) }

// recordRates replaces the recorded rates with the current ones, writing
// only the rows that changed.
func recordRates(txn *memdb.Txn, index uint64) error {
	now, err := currentRates(txn)
	if err != nil {
		return err
	}
	it, err := txn.Get(tableMeterRates, "id")
	if err != nil {
		return err
	}
	var stale []any
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*MeterRates)
		if cur, ok := now[r.Scope]; !ok {
			stale = append(stale, r)
		} else if cur.Rates == r.Rates {
			delete(now, r.Scope)
		}
	}
	for _, r := range stale {
		if err := remove(txn, tableMeterRates, index, r); err != nil {
			return err
		}
	}
	for _, scope := range slices.Sorted(maps.Keys(now)) {
		if err := insert(txn, tableMeterRates, index, now[scope]); err != nil {
			return err
		}
	}
	return nil
}

// RateCardPutRequest creates or replaces a rate card. The cards of a
// currency must not overlap in time.
type RateCardPutRequest struct {
	WriteMeta
	Card RateCard
}

// RateCardDeleteRequest deletes a rate card.
type RateCardDeleteRequest struct {
	WriteMeta
	ID string
}

// Type returns RateCardPutType.
func (*RateCardPutRequest) Type() MessageType { return RateCardPutType }

// Type returns RateCardDeleteType.
func (*RateCardDeleteRequest) Type() MessageType { return RateCardDeleteType }

// RateCard is a stored rate card.
type RateCard struct {
	quota.RateCard
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
	UpdatedAt   Timestamp `json:"updated_at"`
}

// Validate checks the card on its own.
func (r *RateCardPutRequest) Validate() error {
	if !ValidName(r.Card.ID) {
		return fieldErrf("id", ErrInvalid, "rate card id %q must be 1-63 lower-case letters, digits, '-', '_' or '.'", r.Card.ID)
	}
	if err := r.Card.RateCard.Validate(); err != nil {
		return fieldErrf("rate_card", ErrInvalid, "%v", err)
	}
	return nil
}

func applyRateCardPut(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*RateCardPutRequest)
	cards, err := rateCards(txn)
	if err != nil {
		return nil, err
	}
	card := req.Card
	card.CreateIndex = index
	all := []quota.RateCard{card.RateCard}
	for _, old := range cards {
		if old.ID == card.ID {
			card.CreateIndex = old.CreateIndex
			continue
		}
		all = append(all, old.RateCard)
	}
	if err := quota.ValidateCards(all); err != nil {
		return nil, fieldErrf("rate_card", ErrConflict, "%v", err)
	}
	card.ModifyIndex, card.UpdatedAt = index, Timestamp(req.Now)
	if err := insert(txn, tableRateCards, index, &card); err != nil {
		return nil, err
	}
	return &card, nil
}

func applyRateCardDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	return removeByID[RateCard](txn, index, tableRateCards, "rate card", c.(*RateCardDeleteRequest).ID)
}

func rateCards(txn *memdb.Txn) ([]*RateCard, error) {
	it, err := txn.Get(tableRateCards, "id")
	if err != nil {
		return nil, err
	}
	var out []*RateCard
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*RateCard))
	}
	return out, nil
}

// meteringTables returns the metering part of the memdb schema.
func meteringTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableMeterClock: {Name: tableMeterClock, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}},
		tableMeterRates: {Name: tableMeterRates, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Scope"}},
		}},
		tableMeterBuckets: {Name: tableMeterBuckets, Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
			"tenant": {Name: "tenant", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "TenantKey"}},
		}},
		tableRateCards: {Name: tableRateCards, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}},
	}
}

// MeterRatesNow lists the rates recorded at the last tick, by scope.
func (s *Store) MeterRatesNow(ws memdb.WatchSet) (uint64, []*MeterRates, error) {
	return list[*MeterRates](s, ws, tableMeterRates, "id")
}

// RateCards lists the rate cards by ID.
func (s *Store) RateCards(ws memdb.WatchSet) (uint64, []*RateCard, error) {
	return list[*RateCard](s, ws, tableRateCards, "id")
}

// RateCard returns one rate card, or nil.
func (s *Store) RateCard(ws memdb.WatchSet, id string) (uint64, *RateCard, error) {
	return getByID[*RateCard](s, ws, tableRateCards, id)
}

// MeterBuckets calls fn with the buckets of span (quota.HourMillis or
// quota.DayMillis) starting in [from, to), of one tenant when tenant is
// set, in key order. It returns the index of the buckets table and how
// far usage was metered (unix ms, 0 before the first tick), read in the
// same transaction as the buckets.
func (s *Store) MeterBuckets(tenant string, span, from, to int64, fn func(*quota.Bucket)) (uint64, int64, error) {
	txn := s.db.Txn(false)
	idx := s.tableIndex(txn, tableMeterBuckets)
	var until int64
	if raw, err := txn.First(tableMeterClock, "id", meterClockID); err != nil {
		return idx, 0, err
	} else if raw != nil {
		until = raw.(*MeterClock).Since
	}
	index, lo := "id", ""
	if tenant != "" {
		index = "tenant"
		_, lo = bucketKeys(tenant, "", span, from)
	} else {
		lo, _ = bucketKeys("", "", span, from)
	}
	it, err := txn.LowerBound(tableMeterBuckets, index, lo)
	if err != nil {
		return idx, until, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		b := raw.(*MeterBucket)
		if b.Span != span || b.Start >= to || (tenant != "" && b.Tenant != tenant) {
			break
		}
		fn(&b.Bucket)
	}
	return idx, until, nil
}
