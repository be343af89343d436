package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// requireGolden compares got with testdata/name, or rewrites it with -update.
func requireGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	require.Equal(t, string(want), string(got), "output differs from %s (go test -update rewrites it)", path)
}

// requireGoldenFormats checks both formats of a report against
// testdata/name.table and testdata/name.json.
func requireGoldenFormats(t *testing.T, name string, write func(w *bytes.Buffer, format string) error) {
	t.Helper()
	for _, format := range []string{"table", "json"} {
		var b bytes.Buffer
		require.NoError(t, write(&b, format))
		requireGolden(t, name+"."+format, b.Bytes())
	}
}

var (
	seqA = "49590338271490256608559692538361571095921575989136588898"
	seqB = "49590338271490256608559692540925702759324208523137515618"
	t0   = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
)

// goldenObservation is a watch of 5 s over a table with one lease of each
// kind.
func goldenObservation() *observation {
	leases := []lease.Lease{
		{Key: "shardId-000000000000", Checkpoint: checkpoint.ShardEnd, Counter: 120, ChildShardIDs: []string{"shardId-000000000002", "shardId-000000000003"}},
		{Key: "shardId-000000000001", Owner: "worker-a", Counter: 412, Checkpoint: checkpoint.At(seqA, 3)},
		{Key: "shardId-000000000002", Owner: "worker-b", Counter: 77, Checkpoint: checkpoint.At(seqB, 0), ParentShardIDs: []string{"shardId-000000000000"}},
		{Key: "shardId-000000000003", Owner: "worker-a", Counter: 9, Checkpoint: checkpoint.TrimHorizon, ParentShardIDs: []string{"shardId-000000000000"}},
		{Key: "shardId-000000000004", Counter: 3, Checkpoint: checkpoint.AtTimestamp},
		{Key: "shardId-000000000005", Malformed: errors.New(`lease: malformed lease row: lease shardId-000000000005: attribute leaseCounter: missing`)},
	}
	return &observation{
		leases:  leases,
		first:   byKey(leases),
		changed: map[string]time.Time{"shardId-000000000001": t0.Add(-2 * time.Second), "shardId-000000000003": t0.Add(-1500 * time.Millisecond)},
		from:    t0.Add(-5 * time.Second),
		to:      t0,
	}
}

func TestGoldenStatus(t *testing.T) {
	shards := []shardInfo{
		{id: "shardId-000000000000", closed: true},
		{id: "shardId-000000000001"},
		{id: "shardId-000000000002", parents: []string{"shardId-000000000000"}},
		{id: "shardId-000000000003", parents: []string{"shardId-000000000000"}},
		{id: "shardId-000000000004"},
		{id: "shardId-000000000006", parents: []string{"shardId-000000000001", "shardId-000000000004"}},
	}
	lags := map[string]*lag{
		"shardId-000000000001": {millis: 1250, ok: true},
		"shardId-000000000002": {why: "GetRecords: ProvisionedThroughputExceededException: Rate exceeded for shard shardId-000000000002"},
		"shardId-000000000003": {millis: 3_723_000, ok: true},
		"shardId-000000000004": {why: "AT_TIMESTAMP: the application's timestamp is not in the lease table"},
	}
	obs := goldenObservation()
	r := buildStatus("billing", `stream "orders"`, obs, true, []statusGroup{{leases: obs.leases, shards: shards, lags: lags}})
	requireGoldenFormats(t, "status", func(w *bytes.Buffer, format string) error { return r.write(w, format) })
}

func TestGoldenWorkers(t *testing.T) {
	r := buildWorkers("billing", goldenObservation(), true, t0)
	requireGoldenFormats(t, "workers", func(w *bytes.Buffer, format string) error { return r.write(w, format) })
}

func TestGoldenReset(t *testing.T) {
	r := &resetReport{Table: "billing", To: "trim-horizon", Items: []resetItem{
		{Shard: "shardId-000000000000", Counter: 120, State: stateFinished, From: "SHARD_END", Result: resultSkipped,
			Reason: "finished (SHARD_END); to move it, name it with -shard and -force"},
		{Shard: "shardId-000000000001", Owner: "worker-a", Counter: 412, State: stateExpired, From: seqA + "/3", To: "TRIM_HORIZON",
			Result: resultDone, NewCounter: ptr(int64(413))},
		{Shard: "shardId-000000000004", Counter: 3, State: stateUnowned, From: "AT_TIMESTAMP", To: "TRIM_HORIZON", Result: resultFailed,
			Reason: "reset checkpoint of lease shardId-000000000004 in table \"billing\": expected owner \"\" counter 3, found owner \"worker-b\" counter 4: lease: changed since read"},
	}}
	requireGoldenFormats(t, "reset", func(w *bytes.Buffer, format string) error { return r.write(w, format) })

	refused := &resetReport{Table: "billing", To: "latest", Items: []resetItem{
		{Shard: "shardId-000000000001", Owner: "worker-a", Counter: 412, State: stateHeld, From: seqA + "/3", To: "LATEST", Result: resultRefused,
			Reason: `held by live worker "worker-a" (counter 412, then 413, within 3.4s); -force to reset it anyway`},
		{Shard: "shardId-000000000004", Counter: 3, State: stateUnowned, From: "AT_TIMESTAMP", To: "LATEST", Result: resultUnwritten},
	}}
	requireGoldenFormats(t, "reset-refused", func(w *bytes.Buffer, format string) error { return refused.write(w, format) })

	dry := &resetReport{Table: "billing", To: "sequence=" + seqB, DryRun: true, Force: true, Items: []resetItem{
		{Shard: "shardId-000000000002", Owner: "worker-b", Counter: 77, State: stateOwned, From: seqB, To: seqB},
	}}
	requireGoldenFormats(t, "reset-dry-run", func(w *bytes.Buffer, format string) error { return dry.write(w, format) })
}

func TestGoldenEvict(t *testing.T) {
	r := &evictReport{Table: "billing", Worker: "worker-b", Items: []evictItem{
		{Shard: "shardId-000000000002", Counter: 77, Checkpoint: seqB, Result: resultDone, NewCounter: ptr(int64(78))},
		{Shard: "shardId-000000000007", Counter: 5, Checkpoint: "TRIM_HORIZON", Result: resultFailed,
			Reason: "release lease shardId-000000000007 in table \"billing\": expected owner \"worker-b\" counter 5, found owner \"worker-a\" counter 6: checkpoint: lease lost"},
	}}
	requireGoldenFormats(t, "evict", func(w *bytes.Buffer, format string) error { return r.write(w, format) })
}

func TestGoldenImport(t *testing.T) {
	r := &importReport{Source: "billing-vmware", Table: "billing", Stream: `stream "orders"`, DryRun: true, CreateTable: true, Items: []importItem{
		{Shard: "shardId-000000000000", SourceCheckpoint: "SHARD_END", Checkpoint: "SHARD_END", Parents: []string{},
			Children: []string{"shardId-000000000002", "shardId-000000000003"}},
		{Shard: "shardId-000000000001", SourceCheckpoint: seqA, SourceOwner: "vm-worker-1", Checkpoint: seqA, Parents: []string{}},
		{Shard: "shardId-000000000002", SourceCheckpoint: seqB, Checkpoint: seqB + "/99", Parents: []string{"shardId-000000000000"},
			Reason: "a KPL aggregate of 100 user records: resumes after all of them, as vmware-go-kcl does"},
		{Shard: "shardId-000000000003", Parents: []string{"shardId-000000000000"}, Result: resultSkipped,
			Reason: "no checkpoint: not imported, so gokcl creates this lease itself (at its InitialPosition, or TRIM_HORIZON as the child of a finished shard)"},
	}}
	requireGoldenFormats(t, "import", func(w *bytes.Buffer, format string) error { return r.write(w, format) })
}

func TestGoldenFanout(t *testing.T) {
	arn := "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
	r := fanoutReport{Stream: arn, Consumers: []fanoutConsumer{
		{Name: "billing", Status: "ACTIVE", Created: t0, ARN: arn + "/consumer/billing:1796070006"},
		{Name: "audit", Status: "CREATING", Created: t0.Add(time.Hour), ARN: arn + "/consumer/audit:1796073606"},
	}}
	requireGoldenFormats(t, "fanout", func(w *bytes.Buffer, format string) error { return r.write(w, format) })
	empty := fanoutReport{Stream: arn, Consumers: []fanoutConsumer{}}
	requireGoldenFormats(t, "fanout-empty", func(w *bytes.Buffer, format string) error { return empty.write(w, format) })
}
