package main

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// The unit tests below run the commands on the in-memory lease store and
// the in-memory stream, inside synctest bubbles: watching for seconds costs
// no time.

const testStream = "orders"

// newStream is an in-memory stream named testStream.
func newStream(shards int) *kcltest.Stream {
	return kcltest.NewStream(shards, kcltest.WithName(testStream))
}

// put writes a record and returns its sequence number.
func put(t *testing.T, k *kcltest.Stream, explicitHashKey string, data []byte) string {
	t.Helper()
	res, err := k.Put("k", explicitHashKey, data)
	require.NoError(t, err)
	return res.SequenceNumber
}

func testDeps(store adminStore, k shardReader) deps {
	return deps{kinesis: k, store: store, tableLabel: `lease table "billing"`, streamLabel: `stream "orders"`, region: kcltest.Region}
}

func testOptions() *options {
	return &options{app: "billing", table: "billing", stream: testStream, output: "json", failover: 3 * time.Second, watch: 2 * time.Second}
}

func create(t *testing.T, s lease.Store, leases ...lease.Lease) {
	t.Helper()
	for _, l := range leases {
		require.NoError(t, s.Create(context.Background(), l))
	}
}

func storedLease(t *testing.T, s lease.Store, key string) lease.Lease {
	t.Helper()
	ls, err := s.List(context.Background())
	require.NoError(t, err)
	l, ok := byKey(ls)[key]
	require.True(t, ok, "no lease %s", key)
	return l
}

// liveWorker renews the worker's leases every interval, as a live worker
// does, until stopped.
func liveWorker(s lease.Store, worker string, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
			ls, _ := s.List(ctx)
			for _, l := range ls {
				if l.Owner == worker {
					_, _ = s.Renew(ctx, l)
				}
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

func TestWatchTellsLiveFromDead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := lease.NewMemoryStore()
		create(t, s,
			lease.Lease{Key: "a", Owner: "live", Checkpoint: checkpoint.TrimHorizon},
			lease.Lease{Key: "b", Owner: "dead", Checkpoint: checkpoint.TrimHorizon},
			lease.Lease{Key: "c", Checkpoint: checkpoint.TrimHorizon})
		stop := liveWorker(s, "live", time.Second)
		defer stop()
		start := time.Now()
		obs, err := watchTable(context.Background(), s, 5*time.Second, nil)
		require.NoError(t, err)
		require.True(t, obs.moved("a"))
		require.False(t, obs.moved("b"))
		require.False(t, obs.moved("c"))
		require.GreaterOrEqual(t, obs.watched(), 5*time.Second-time.Millisecond)
		require.Equal(t, 5*time.Second, time.Since(start), "the full window without an early end")
		l, ok := obs.lease("a")
		require.True(t, ok)
		require.Greater(t, l.Counter, int64(0), "the last read")

		// The early end: once the live worker's lease has moved.
		start = time.Now()
		obs, err = watchTable(context.Background(), s, 5*time.Second, func(o *observation) bool { return o.moved("a") })
		require.NoError(t, err)
		require.True(t, obs.moved("a"))
		require.LessOrEqual(t, time.Since(start), 2*time.Second, "within two polls, not the 5s window")
	})
}

func TestWatchZeroReadsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := lease.NewMemoryStore()
		create(t, s, lease.Lease{Key: "a", Owner: "w", Checkpoint: checkpoint.TrimHorizon})
		start := time.Now()
		obs, err := watchTable(context.Background(), s, 0, nil)
		require.NoError(t, err)
		require.Zero(t, time.Since(start))
		require.Zero(t, obs.watched())
		require.Equal(t, stateOwned, leaseState(obs.leases[0], obs, false))
	})
}

func TestStatusOnMemoryStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newStream(3)
		s := lease.NewMemoryStore()
		seq := ""
		for range 5 {
			seq = put(t, k, "1", []byte("x")) // shard 0
		}
		create(t, s,
			lease.Lease{Key: "shardId-000000000000", Owner: "w1", Checkpoint: checkpoint.At(seq, 0)},
			lease.Lease{Key: "shardId-000000000001", Owner: "w2", Checkpoint: checkpoint.TrimHorizon},
			lease.Lease{Key: "shardId-000000000009", Checkpoint: checkpoint.ShardEnd})
		stop := liveWorker(s, "w1", time.Second)
		defer stop()
		var out bytes.Buffer
		require.NoError(t, status(context.Background(), &out, testDeps(s, k), testOptions()))
		var r statusReport
		decode(t, out.Bytes(), &r)
		rows := map[string]statusRow{}
		for _, row := range r.Leases {
			rows[row.Shard] = row
		}
		require.Len(t, rows, 4, "three leases and the shard without one")
		require.Equal(t, stateHeld, rows["shardId-000000000000"].State)
		require.Equal(t, int64(0), *rows["shardId-000000000000"].LagMS, "at the newest record")
		require.Equal(t, stateExpired, rows["shardId-000000000001"].State)
		require.NotNil(t, rows["shardId-000000000001"].LagMS)
		require.Equal(t, stateFinished, rows["shardId-000000000009"].State)
		require.Nil(t, rows["shardId-000000000009"].LagMS)
		require.Empty(t, rows["shardId-000000000009"].LagNote, "finished: no lag, and nothing to say")
		require.Equal(t, stateNoLease, rows["shardId-000000000002"].State)
		require.Equal(t, []workerTotal{{Worker: "w1", Leases: 1, MaxLagMS: ptr(int64(0))}, {Worker: "w2", Leases: 1, Expired: 1, MaxLagMS: ptr(int64(0))}}, r.Workers)
	})
}

// A lease whose shard is gone from the stream: its lag cannot be measured,
// and the note says why.
func TestStatusLeaseOfShardNotInStream(t *testing.T) {
	k := newStream(1)
	s := lease.NewMemoryStore()
	create(t, s, lease.Lease{Key: "shardId-000000000007", Checkpoint: checkpoint.TrimHorizon})
	var out bytes.Buffer
	o := testOptions()
	o.watch = 0
	require.NoError(t, status(context.Background(), &out, testDeps(s, k), o))
	var r statusReport
	decode(t, out.Bytes(), &r)
	require.Len(t, r.Leases, 2)
	require.Equal(t, "the shard is not in the stream", r.Leases[1].LagNote)
}

func TestStatusRefusesMultiStreamTable(t *testing.T) {
	k := newStream(1)
	s := lease.NewMemoryStore()
	create(t, s, lease.Lease{Key: "123456789012:orders:1700000000:shardId-000000000000", Checkpoint: checkpoint.TrimHorizon})
	o := testOptions()
	o.watch = 0
	err := status(context.Background(), &bytes.Buffer{}, testDeps(s, k), o)
	require.ErrorContains(t, err, `lease table "billing": lease key "123456789012:orders:1700000000:shardId-000000000000" is a multi-stream key`)
}

func TestShardOf(t *testing.T) {
	for _, key := range []string{"shardId-000000000000", "shardId-1", "a.b_c-d"} {
		got, err := shardOf(key)
		require.NoError(t, err, key)
		require.Equal(t, key, got)
	}
	for _, key := range []string{"", "a:b:c:d", "123456789012:orders:1700000000:shardId-000000000000", "shard id", "x/y", string(make([]byte, 129))} {
		_, err := shardOf(key)
		require.Error(t, err, "%q", key)
	}
}

func TestWorkersReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := lease.NewMemoryStore()
		create(t, s,
			lease.Lease{Key: "a", Owner: "w1", Checkpoint: checkpoint.TrimHorizon},
			lease.Lease{Key: "b", Owner: "w1", Checkpoint: checkpoint.TrimHorizon},
			lease.Lease{Key: "c", Owner: "w2", Checkpoint: checkpoint.TrimHorizon},
			lease.Lease{Key: "d", Owner: "w3", Checkpoint: checkpoint.ShardEnd})
		stop := liveWorker(s, "w1", 1500*time.Millisecond)
		defer stop()
		obs, err := watchTable(context.Background(), s, 3*time.Second, ownedLeasesMoved)
		require.NoError(t, err)
		r := buildWorkers("billing", obs, true, time.Now())
		require.Len(t, r.Workers, 2, "w3 holds only a finished lease")
		require.Equal(t, "w1", r.Workers[0].Worker)
		require.Equal(t, "live", r.Workers[0].State)
		require.Equal(t, 2, r.Workers[0].Renewed)
		require.NotNil(t, r.Workers[0].LastRenewalSeen)
		require.Equal(t, stateExpired, r.Workers[1].State)
		require.Nil(t, r.Workers[1].LastRenewalSeen)
	})
}

func decode(t *testing.T, data []byte, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(data, v), string(data))
}

// A lease being handed over is shown, and counted, for the worker still
// processing it, with the worker it goes to.
func TestReportsDuringAHandOff(t *testing.T) {
	l := lease.Lease{Key: "a", Owner: "new", CheckpointOwner: "old", Counter: 3, Checkpoint: checkpoint.TrimHorizon}
	obs := &observation{leases: []lease.Lease{l}, first: map[string]lease.Lease{"a": l}, changed: map[string]time.Time{}}
	st := buildStatus("billing", `stream "orders"`, obs, false, []statusGroup{{leases: obs.leases}})
	require.Equal(t, "old", st.Leases[0].Owner)
	require.Equal(t, "new", st.Leases[0].HandingTo)
	var out bytes.Buffer
	require.NoError(t, st.write(&out, "table"))
	require.Contains(t, out.String(), "old→new")
	w := buildWorkers("billing", obs, false, time.Now())
	require.Len(t, w.Workers, 1)
	require.Equal(t, "old", w.Workers[0].Worker)
}
