package main

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

func evictWith(t *testing.T, s adminStore, worker string, force bool) (evictReport, error) {
	t.Helper()
	return evictDeps(t, testDeps(s, nil), worker, force)
}

// evictDeps runs evict -worker worker (with -force if force) on d, and
// decodes its JSON report.
func evictDeps(t *testing.T, d deps, worker string, force bool) (evictReport, error) {
	t.Helper()
	o := testOptions()
	o.worker, o.force = worker, force
	var out bytes.Buffer
	err := evict(context.Background(), &out, d, o)
	var r evictReport
	if out.Len() > 0 {
		decode(t, out.Bytes(), &r)
	}
	return r, err
}

func TestEvict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := lease.NewMemoryStore()
		create(t, s,
			lease.Lease{Key: "a", Owner: "dead", Counter: 4, Checkpoint: checkpoint.At("7", 0)},
			lease.Lease{Key: "b", Owner: "dead", Counter: 9, Checkpoint: checkpoint.ShardEnd},
			lease.Lease{Key: "c", Owner: "live", Counter: 1, Checkpoint: checkpoint.TrimHorizon})
		stop := liveWorker(s, "live", time.Second)
		defer stop()

		start := time.Now()
		r, err := evictWith(t, s, "live", false)
		require.ErrorContains(t, err, `worker "live" is alive: it renewed c`)
		require.Less(t, time.Since(start), 2*time.Second, "refused as soon as a counter moved")
		require.Equal(t, resultRefused, r.Items[0].Result)
		require.Equal(t, "live", storedLease(t, s, "c").Owner)

		start = time.Now()
		r, err = evictWith(t, s, "dead", false)
		require.NoError(t, err)
		require.Equal(t, 2*time.Second, time.Since(start), "watched the whole -watch")
		require.Len(t, r.Items, 2)
		for _, key := range []string{"a", "b"} {
			l := storedLease(t, s, key)
			require.Empty(t, l.Owner, key)
		}
		require.Equal(t, checkpoint.At("7", 0), storedLease(t, s, "a").Checkpoint, "the checkpoint stays")

		_, err = evictWith(t, s, "dead", false)
		require.ErrorContains(t, err, `worker "dead" owns no lease in lease table "billing"`)

		// Forced: no watch; a live worker loses its lease.
		start = time.Now()
		r, err = evictWith(t, s, "live", true)
		require.NoError(t, err)
		require.Zero(t, time.Since(start))
		require.Equal(t, resultDone, r.Items[0].Result)
		require.Empty(t, storedLease(t, s, "c").Owner)
	})
}

// A release refused because the lease changed since read fails that lease
// and the command.
func TestEvictConflict(t *testing.T) {
	s := &renewingStore{MemoryStore: lease.NewMemoryStore()}
	create(t, s, lease.Lease{Key: "a", Owner: "w", Checkpoint: checkpoint.TrimHorizon})
	r, err := evictWith(t, s, "w", true)
	require.ErrorContains(t, err, "1 lease not released")
	require.Equal(t, resultFailed, r.Items[0].Result)
	require.Equal(t, "w", storedLease(t, s, "a").Owner)
}

// renewingStore renews a lease just before releasing it.
type renewingStore struct{ *lease.MemoryStore }

func (s *renewingStore) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if _, err := s.Renew(ctx, l); err != nil {
		return lease.Lease{}, err
	}
	return s.MemoryStore.Release(ctx, l)
}

// Evicting a dead worker in the middle of a hand-off: a lease it was
// handing over is released to its new owner; a lease being handed over to
// it is left with its holder.
func TestEvictDuringHandOffs(t *testing.T) {
	s := lease.NewMemoryStore()
	create(t, s,
		lease.Lease{Key: "from-dead", Owner: "new", CheckpointOwner: "dead", Counter: 4, Checkpoint: checkpoint.At("7", 0)},
		lease.Lease{Key: "to-dead", Owner: "dead", CheckpointOwner: "holder", Counter: 2, Checkpoint: checkpoint.At("9", 0)})
	r, err := evictWith(t, s, "dead", true)
	require.NoError(t, err)
	require.Len(t, r.Items, 2)
	got := map[string]string{}
	for _, it := range r.Items {
		got[it.Shard] = it.Result
	}
	require.Equal(t, map[string]string{"from-dead": resultDone, "to-dead": resultSkipped}, got)

	l := storedLease(t, s, "from-dead")
	require.Equal(t, "new", l.Owner, "the hand-off is completed: the new owner holds it")
	require.Empty(t, l.CheckpointOwner)
	require.Equal(t, checkpoint.At("7", 0), l.Checkpoint)
	l = storedLease(t, s, "to-dead")
	require.Equal(t, "dead", l.Owner, "untouched")
	require.Equal(t, "holder", l.CheckpointOwner)
}
