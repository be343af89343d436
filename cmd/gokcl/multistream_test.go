package main

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// multiTable is a multi-stream application's table on an account of
// streams: orders (2 shards, deleted and created again since the table's
// first orders leases), audit (1 shard), and the leases of a stream
// deleted since ("gone").
type multiTable struct {
	account          *kcltest.Account
	store            *lease.MemoryStore
	orders, oldOrder lease.StreamID
	audit, gone      lease.StreamID
	ordersSeq        string // the last record of orders' shard 0
}

func idOf(s *kcltest.Stream) lease.StreamID {
	return lease.StreamID{Account: s.AccountID(), Name: s.Name(), CreationEpoch: s.CreatedAt().Unix()}
}

func msLease(id lease.StreamID, shard, owner string, cp checkpoint.Position) lease.Lease {
	return lease.Lease{Key: id.LeaseKey(shard), StreamID: id, ShardID: shard, Owner: owner, Checkpoint: cp}
}

func newMultiTable(t *testing.T) *multiTable {
	t.Helper()
	m := &multiTable{account: kcltest.NewAccount(), store: lease.NewMemoryStore()}
	old, err := m.account.CreateStream("orders", 1)
	require.NoError(t, err)
	m.oldOrder = idOf(old)
	require.NoError(t, m.account.DeleteStream("orders"))
	orders, err := m.account.CreateStream("orders", 2)
	require.NoError(t, err)
	m.orders = idOf(orders)
	audit, err := m.account.CreateStream("audit", 1)
	require.NoError(t, err)
	m.audit = idOf(audit)
	gone, err := m.account.CreateStream("gone", 1)
	require.NoError(t, err)
	m.gone = idOf(gone)
	require.NoError(t, m.account.DeleteStream("gone"))

	res, err := orders.Put("k", "0", []byte("a"))
	require.NoError(t, err)
	m.ordersSeq = res.SequenceNumber
	create(t, m.store,
		msLease(m.orders, "shardId-000000000000", "w1", checkpoint.At(m.ordersSeq, 0)),
		msLease(m.oldOrder, "shardId-000000000000", "w2", checkpoint.At("49000000000000000000000000000000000000000000000000000001", 0)),
		msLease(m.audit, "shardId-000000000000", "", checkpoint.TrimHorizon),
		msLease(m.gone, "shardId-000000000000", "", checkpoint.Latest),
	)
	return m
}

func (m *multiTable) deps() deps { return testDeps(m.store, m.account) }

func statusJSON(t *testing.T, d deps, o *options) (statusReport, error) {
	t.Helper()
	var out bytes.Buffer
	err := status(context.Background(), &out, d, o)
	var r statusReport
	if err == nil {
		decode(t, out.Bytes(), &r)
	}
	return r, err
}

// TestStatusMultiStreamTable: every stream's leases, with their streams;
// the current streams' shards without a lease and their lags; a deleted
// stream's and a re-created one's leases shown as a former stream's.
func TestStatusMultiStreamTable(t *testing.T) {
	m := newMultiTable(t)
	o := testOptions()
	o.stream, o.allStreams, o.watch = "", true, 0
	r, err := statusJSON(t, m.deps(), o)
	require.NoError(t, err)

	states := map[string]string{}
	for _, s := range r.Streams {
		states[s.Stream] = s.State
	}
	require.Equal(t, map[string]string{
		m.orders.String(): streamCurrent, m.oldOrder.String(): streamRecreated,
		m.audit.String(): streamCurrent, m.gone.String(): streamDeleted,
	}, states)

	type key struct{ stream, shard string }
	rows := map[key]statusRow{}
	for _, row := range r.Leases {
		rows[key{row.Stream, row.Shard}] = row
	}
	require.Len(t, rows, 5, "4 leases, and orders' shard 1 without one")
	cur := rows[key{m.orders.String(), "shardId-000000000000"}]
	require.Equal(t, "w1", cur.Owner)
	require.NotNil(t, cur.LagMS, cur.LagNote)
	require.Equal(t, m.orders.String(), cur.StreamName, "two streams named orders: shown by identifier")
	require.Equal(t, stateNoLease, rows[key{m.orders.String(), "shardId-000000000001"}].State)
	former := rows[key{m.oldOrder.String(), "shardId-000000000000"}]
	require.Nil(t, former.LagMS)
	require.Contains(t, former.LagNote, "deleted and created again")
	require.Contains(t, rows[key{m.gone.String(), "shardId-000000000000"}].LagNote, "no longer exists")
	require.Equal(t, "audit", rows[key{m.audit.String(), "shardId-000000000000"}].StreamName)
	require.NotNil(t, rows[key{m.audit.String(), "shardId-000000000000"}].LagMS)

	// One stream by name: both identities of that name.
	o.stream, o.allStreams = "audit", false
	r, err = statusJSON(t, m.deps(), o)
	require.NoError(t, err)
	require.Len(t, r.Leases, 1)
	require.Len(t, r.Streams, 1)
	o.stream = "orders"
	r, err = statusJSON(t, m.deps(), o)
	require.NoError(t, err)
	require.Len(t, r.Streams, 2)
	o.stream = "missing"
	_, err = statusJSON(t, m.deps(), o)
	require.ErrorContains(t, err, `multi-stream lease table with no lease of stream "missing"`)

	// The table output: a STREAM column and the table of streams.
	o.stream, o.output = "audit", "table"
	var out bytes.Buffer
	require.NoError(t, status(context.Background(), &out, m.deps(), o))
	require.Contains(t, out.String(), "STREAM  SHARD")
	require.Contains(t, out.String(), m.audit.String())
}

// TestStatusTableModes: -all-streams needs a multi-stream table; a table
// mixing both kinds of lease is refused.
func TestStatusTableModes(t *testing.T) {
	s := lease.NewMemoryStore()
	create(t, s, lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon})
	o := testOptions()
	o.stream, o.allStreams, o.watch = "", true, 0
	_, err := statusJSON(t, testDeps(s, newStream(1)), o)
	require.ErrorContains(t, err, "is a single-stream lease table: name its stream with -stream")

	id := lease.StreamID{Account: "123456789012", Name: "orders", CreationEpoch: 1700000000}
	create(t, s, msLease(id, "shardId-000000000000", "", checkpoint.TrimHorizon))
	_, err = statusJSON(t, testDeps(s, newStream(1)), o)
	require.ErrorContains(t, err, "holds multi-stream leases and single-stream ones")
}

// TestResetMultiStream: a reset in a multi-stream table names the stream,
// and moves that stream's lease only: not another stream's lease of the
// same shard id, nor a former stream's of the same name.
func TestResetMultiStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMultiTable(t)
		o := resetOptions("shardId-000000000000", true)
		o.stream = ""
		_, err := resetWith(t, m.deps(), o, "trim-horizon")
		require.ErrorContains(t, err, "multi-stream lease table: name the stream with -stream")

		o = resetOptions("shardId-000000000000", true)
		r, err := resetWith(t, m.deps(), o, "trim-horizon")
		require.NoError(t, err)
		require.Len(t, r.Items, 1)
		require.Equal(t, m.orders.String(), r.Items[0].Stream)
		require.Equal(t, resultDone, r.Items[0].Result)
		require.Equal(t, checkpoint.TrimHorizon, storedLease(t, m.store, m.orders.LeaseKey("shardId-000000000000")).Checkpoint)
		require.NotEqual(t, checkpoint.TrimHorizon, storedLease(t, m.store, m.oldOrder.LeaseKey("shardId-000000000000")).Checkpoint)
		require.Equal(t, checkpoint.Latest, storedLease(t, m.store, m.gone.LeaseKey("shardId-000000000000")).Checkpoint)

		// A sequence number is checked against the stream's own shard.
		o = resetOptions("shardId-000000000000", true)
		r, err = resetWith(t, m.deps(), o, "sequence="+m.ordersSeq)
		require.NoError(t, err)
		require.Equal(t, resultDone, r.Items[0].Result)
		require.Equal(t, checkpoint.At(m.ordersSeq, 0), storedLease(t, m.store, m.orders.LeaseKey("shardId-000000000000")).Checkpoint)

		// A deleted stream's leases (the only ones of that name) may be moved.
		o = resetOptions("shardId-000000000000", true)
		o.stream = "gone"
		r, err = resetWith(t, m.deps(), o, "trim-horizon")
		require.NoError(t, err)
		require.Equal(t, m.gone.String(), r.Items[0].Stream)
		require.Equal(t, checkpoint.TrimHorizon, storedLease(t, m.store, m.gone.LeaseKey("shardId-000000000000")).Checkpoint)
	})
}

// TestResetMultiStreamAmbiguous: two streams of one name, neither existing
// now: refused, naming both.
func TestResetMultiStreamAmbiguous(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMultiTable(t)
		require.NoError(t, m.account.DeleteStream("orders"))
		_, err := resetWith(t, m.deps(), resetOptions("shardId-000000000000", true), "trim-horizon")
		require.ErrorContains(t, err, "several streams of that name, none of which exists now")
		require.ErrorContains(t, err, m.oldOrder.String())
	})
}

// TestEvictMultiStream: a worker's leases of every stream, each with its
// stream.
func TestEvictMultiStream(t *testing.T) {
	m := newMultiTable(t)
	create(t, m.store, msLease(m.audit, "shardId-000000000001", "w1", checkpoint.TrimHorizon))
	r, err := evictDeps(t, m.deps(), "w1", true)
	require.NoError(t, err)
	require.Len(t, r.Items, 2)
	streams := map[string]string{}
	for _, it := range r.Items {
		require.Equal(t, resultDone, it.Result)
		streams[it.Stream] = it.Shard
	}
	require.Equal(t, map[string]string{m.orders.String(): "shardId-000000000000", m.audit.String(): "shardId-000000000001"}, streams)
	require.Empty(t, storedLease(t, m.store, m.orders.LeaseKey("shardId-000000000000")).Owner)
}

// TestEvictMultiStreamHandOff: a lease being handed over to the evicted
// worker is skipped, and named by its stream and shard like the others.
func TestEvictMultiStreamHandOff(t *testing.T) {
	m := newMultiTable(t)
	to := msLease(m.audit, "shardId-000000000001", "w1", checkpoint.TrimHorizon)
	to.CheckpointOwner = "holder"
	create(t, m.store, to)
	r, err := evictDeps(t, m.deps(), "w1", true)
	require.NoError(t, err)
	require.Len(t, r.Items, 2)
	results := map[[2]string]string{}
	for _, it := range r.Items {
		results[[2]string{it.Stream, it.Shard}] = it.Result
	}
	require.Equal(t, map[[2]string]string{
		{m.orders.String(), "shardId-000000000000"}: resultDone,
		{m.audit.String(), "shardId-000000000001"}:  resultSkipped,
	}, results)
}

// TestImportRefusesMultiStreamTable: import writes single-stream leases.
func TestImportRefusesMultiStreamTable(t *testing.T) {
	m := newMultiTable(t)
	leases, err := m.store.List(context.Background())
	require.NoError(t, err)
	require.ErrorContains(t, checkSingleStream(leases, "lease table \"billing\""), "is a multi-stream lease table")
}

// TestGoldenStatusMultiStream: the report of a multi-stream table, in both
// formats.
func TestGoldenStatusMultiStream(t *testing.T) {
	orders := lease.StreamID{Account: "123456789012", Name: "orders", CreationEpoch: 1796000000}
	oldOrders := lease.StreamID{Account: "123456789012", Name: "orders", CreationEpoch: 1795000000}
	audit := lease.StreamID{Account: "210987654321", Name: "audit", CreationEpoch: 1796000000123}
	leases := []lease.Lease{
		msLease(audit, "shardId-000000000000", "worker-b", checkpoint.At(seqB, 0)),
		msLease(oldOrders, "shardId-000000000000", "worker-a", checkpoint.At(seqA, 1)),
		msLease(orders, "shardId-000000000000", "worker-a", checkpoint.At(seqA, 3)),
	}
	for i := range leases {
		leases[i].Counter = int64(10 * (i + 1))
	}
	obs := &observation{leases: leases, first: byKey(leases), changed: map[string]time.Time{leases[0].Key: t0, leases[2].Key: t0},
		from: t0.Add(-5 * time.Second), to: t0}
	groups := []statusGroup{
		{multi: true, stream: tableStream{id: audit, state: streamCurrent}, leases: leases[:1],
			shards: []shardInfo{{id: "shardId-000000000000"}}, lags: map[string]*lag{leases[0].Key: {millis: 0, ok: true}}},
		{multi: true, stream: tableStream{id: oldOrders, state: streamRecreated,
			note: "the stream was deleted and created again (at 2026-11-30T03:00:00Z): these leases are the former stream's"}, leases: leases[1:2]},
		{multi: true, stream: tableStream{id: orders, state: streamCurrent}, leases: leases[2:],
			shards: []shardInfo{{id: "shardId-000000000000"}, {id: "shardId-000000000001"}}, lags: map[string]*lag{leases[2].Key: {millis: 1250, ok: true}}},
	}
	r := buildStatus("tenants", "all streams", obs, true, groups)
	requireGoldenFormats(t, "status-multistream", func(w *bytes.Buffer, format string) error { return r.write(w, format) })
}
