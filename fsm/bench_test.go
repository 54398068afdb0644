package fsm

import (
	"fmt"
	"testing"
)

func BenchmarkApplySettingUpsert(b *testing.B) {
	// 1024 keys, so the store has a realistic size and upserts modify.
	entries := make([][]byte, 1024)
	for i := range entries {
		entries[i] = mustEncode(b, &SettingUpsertRequest{
			WriteMeta: WriteMeta{Now: int64(i), Actor: "bench", RequestID: "req"},
			Key:       fmt.Sprintf("settings/key-%04d", i),
			Value:     "a value of some length, like a URL or a duration",
		})
	}
	f := New()
	b.ReportAllocs()
	var index uint64
	for b.Loop() {
		index++
		r := f.Apply(logEntry(index, entries[index%uint64(len(entries))])).(*Result)
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
}

func BenchmarkApplyBatch64(b *testing.B) {
	batches := make([][]byte, 16)
	for n := range batches {
		entries := make([][]byte, 64)
		for i := range entries {
			entries[i] = mustEncode(b, &SettingUpsertRequest{
				WriteMeta: WriteMeta{Now: int64(i), Actor: "bench", RequestID: "req"},
				Key:       fmt.Sprintf("settings/key-%02d-%02d", n, i),
				Value:     "a value of some length, like a URL or a duration",
			})
		}
		batches[n] = mustEncode(b, &BatchRequest{Entries: entries})
	}
	f := New()
	b.ReportAllocs()
	var index uint64
	for b.Loop() {
		index++
		rs := f.Apply(logEntry(index, batches[index%uint64(len(batches))])).([]*Result)
		if len(rs) != 64 || rs[63].Err != nil {
			b.Fatalf("results: %d", len(rs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/command")
}

func BenchmarkEncode(b *testing.B) {
	cmds := []Command{
		&SettingUpsertRequest{
			WriteMeta: WriteMeta{Now: 1, Actor: "bench", RequestID: "req-123", IdempotencyKey: "key", RequestHash: "hash"},
			Key:       "settings/key", Value: "a value of some length, like a URL or a duration", CASIndex: u64(42),
		},
		&TokenCreateRequest{Token: Token{AccessorID: "0b6f3a52-4c1e-4d3a-9a7c-1d2e3f4a5b6c", SecretHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Role: "admin"}},
	}
	for _, c := range cmds {
		b.Run(c.Type().String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
