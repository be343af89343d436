package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/lease"
)

func TestParseTarget(t *testing.T) {
	at := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	good := map[string]resetTarget{
		"trim-horizon":                        {kind: toTrimHorizon},
		"latest":                              {kind: toLatest},
		"timestamp=2026-11-30T03:00:00Z":      {kind: toTimestamp, at: at},
		"timestamp=2026-11-30T04:00:00+01:00": {kind: toTimestamp, at: at.In(time.FixedZone("", 3600))},
		"sequence=123":                        {kind: toSequence, pos: checkpoint.At("123", 0)},
		"sequence=123/4":                      {kind: toSequence, pos: checkpoint.At("123", 4)},
	}
	for in, want := range good {
		got, err := parseTarget(in)
		require.NoError(t, err, in)
		require.Equal(t, want.kind, got.kind, in)
		require.True(t, want.at.Equal(got.at), in)
		require.Equal(t, want.pos, got.pos, in)
	}
	for _, in := range []string{"", "TRIM_HORIZON", "trim_horizon", "latest=1", "timestamp=", "timestamp=now", "sequence=",
		"sequence=LATEST", "sequence=SHARD_END", "sequence=12a", "sequence=1/", "sequence=-1", "shard-end"} {
		_, err := parseTarget(in)
		require.Error(t, err, "%q", in)
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"trim-horizon", "latest", "timestamp=2026-11-30T03:00:00Z", "sequence=1/2", "sequence=", "="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		target, err := parseTarget(s)
		if err != nil {
			return
		}
		switch target.kind {
		case toSequence:
			if err := target.pos.Validate(); err != nil || target.pos.IsSentinel() {
				t.Fatalf("%q: parsed to an invalid position %v", s, target.pos)
			}
		case toTimestamp:
			if target.at.IsZero() && !strings.Contains(s, "0001-01-01") {
				t.Fatalf("%q: zero time", s)
			}
		}
	})
}

func resetOptions(shard string, force bool) *options {
	o := testOptions()
	o.shard, o.force = shard, force
	o.all = shard == ""
	return o
}

func resetWith(t *testing.T, d deps, o *options, to string) (resetReport, error) {
	t.Helper()
	target, err := parseTarget(to)
	require.NoError(t, err)
	o.to = to
	var out bytes.Buffer
	err = reset(context.Background(), &out, d, o, target)
	var r resetReport
	if out.Len() > 0 {
		decode(t, out.Bytes(), &r)
	}
	return r, err
}

func TestResetRefusesLiveHolderUnlessForced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := lease.NewMemoryStore()
		k := newStream(1)
		held := lease.Lease{Key: "shardId-000000000000", Owner: "w1", Checkpoint: checkpoint.At("500", 0)}
		create(t, s, held)
		stop := liveWorker(s, "w1", time.Second)
		defer stop()

		r, err := resetWith(t, testDeps(s, k), resetOptions(held.Key, false), "trim-horizon")
		require.ErrorContains(t, err, "refused 1 lease; nothing written")
		require.Equal(t, resultRefused, r.Items[0].Result)
		require.Contains(t, r.Items[0].Reason, `held by live worker "w1"`)
		require.Equal(t, checkpoint.At("500", 0), storedLease(t, s, held.Key).Checkpoint)
		require.Equal(t, "w1", storedLease(t, s, held.Key).Owner)

		r, err = resetWith(t, testDeps(s, k), resetOptions(held.Key, true), "trim-horizon")
		require.NoError(t, err)
		require.Equal(t, resultDone, r.Items[0].Result)
		got := storedLease(t, s, held.Key)
		require.Equal(t, checkpoint.TrimHorizon, got.Checkpoint)
		require.Empty(t, got.Owner, "left unowned, so that the holder's next renewal fails")
	})
}

func TestResetExpiredLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := lease.NewMemoryStore()
		create(t, s, lease.Lease{Key: "shardId-000000000000", Owner: "dead", Counter: 7, Checkpoint: checkpoint.At("500", 0)})
		start := time.Now()
		r, err := resetWith(t, testDeps(s, newStream(1)), resetOptions("shardId-000000000000", false), "latest")
		require.NoError(t, err)
		require.Equal(t, 2*time.Second, time.Since(start), "watched the whole -watch")
		require.Equal(t, stateExpired, r.Items[0].State)
		require.Equal(t, int64(8), *r.Items[0].NewCounter)
		require.Equal(t, checkpoint.Latest, storedLease(t, s, "shardId-000000000000").Checkpoint)
	})
}

func TestResetFinishedShard(t *testing.T) {
	s := lease.NewMemoryStore()
	k := newStream(1)
	create(t, s,
		lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.ShardEnd, ChildShardIDs: []string{"shardId-000000000001", "shardId-000000000002"}},
		lease.Lease{Key: "shardId-000000000001", Checkpoint: checkpoint.At("9", 0)},
		lease.Lease{Key: "shardId-000000000002", Checkpoint: checkpoint.Latest})

	r, err := resetWith(t, testDeps(s, k), resetOptions("shardId-000000000000", false), "trim-horizon")
	require.ErrorContains(t, err, "refused")
	require.Contains(t, r.Items[0].Reason, "its children shardId-000000000001, shardId-000000000002 may already have been processed")
	require.Equal(t, checkpoint.ShardEnd, storedLease(t, s, "shardId-000000000000").Checkpoint)

	// -all moves the unfinished ones and skips the finished one, even forced.
	r, err = resetWith(t, testDeps(s, k), resetOptions("", true), "trim-horizon")
	require.NoError(t, err)
	results := map[string]string{}
	for _, it := range r.Items {
		results[it.Shard] = it.Result
	}
	require.Equal(t, map[string]string{"shardId-000000000000": resultSkipped, "shardId-000000000001": resultDone, "shardId-000000000002": resultDone}, results)
	require.Equal(t, checkpoint.ShardEnd, storedLease(t, s, "shardId-000000000000").Checkpoint)

	r, err = resetWith(t, testDeps(s, k), resetOptions("shardId-000000000000", true), "trim-horizon")
	require.NoError(t, err)
	require.Equal(t, resultDone, r.Items[0].Result)
	got := storedLease(t, s, "shardId-000000000000")
	require.Equal(t, checkpoint.TrimHorizon, got.Checkpoint)
	require.Equal(t, []string{"shardId-000000000001", "shardId-000000000002"}, got.ChildShardIDs, "children kept")
}

func TestResetMissingAndMalformed(t *testing.T) {
	s := lease.NewMemoryStore()
	_, err := resetWith(t, testDeps(s, newStream(1)), resetOptions("shardId-000000000000", false), "latest")
	require.ErrorContains(t, err, `no lease for shard shardId-000000000000 in lease table "billing"`)

	items := selectResets([]lease.Lease{{Key: "shardId-000000000000", Malformed: errors.New("attribute leaseCounter: missing")}}, "", true)
	require.Equal(t, resultRefused, items[0].Result)
	require.Contains(t, items[0].Reason, "repair it by hand: attribute leaseCounter: missing")
}

// racingStore renews a lease just before the first n resets of it, as a
// live holder would between the command's read and its write.
type racingStore struct {
	*lease.MemoryStore
	races  atomic.Int32
	resets atomic.Int32
}

func (s *racingStore) ResetCheckpoint(ctx context.Context, l lease.Lease, pos checkpoint.Position) (lease.Lease, error) {
	s.resets.Add(1)
	if s.races.Add(-1) >= 0 {
		ls, _ := s.List(ctx)
		if _, err := s.Renew(ctx, byKey(ls)[l.Key]); err != nil {
			return lease.Lease{}, err
		}
	}
	return s.MemoryStore.ResetCheckpoint(ctx, l, pos)
}

func TestResetConflict(t *testing.T) {
	k := newStream(1)
	key := "shardId-000000000000"

	// Unforced: the lease changed since read; not reset.
	s := &racingStore{MemoryStore: lease.NewMemoryStore()}
	s.races.Store(1)
	create(t, s, lease.Lease{Key: key, Checkpoint: checkpoint.At("500", 0)})
	r, err := resetWith(t, testDeps(s, k), resetOptions(key, false), "trim-horizon")
	require.ErrorContains(t, err, "1 lease not reset")
	require.Equal(t, resultFailed, r.Items[0].Result)
	require.Contains(t, r.Items[0].Reason, "changed since read")
	require.Equal(t, checkpoint.At("500", 0), storedLease(t, s, key).Checkpoint)

	// Forced: read again and retried, up to five writes.
	s = &racingStore{MemoryStore: lease.NewMemoryStore()}
	s.races.Store(3)
	create(t, s, lease.Lease{Key: key, Owner: "w1", Checkpoint: checkpoint.At("500", 0)})
	r, err = resetWith(t, testDeps(s, k), resetOptions(key, true), "trim-horizon")
	require.NoError(t, err)
	require.Equal(t, resultDone, r.Items[0].Result)
	require.Equal(t, int32(4), s.resets.Load())
	require.Equal(t, checkpoint.TrimHorizon, storedLease(t, s, key).Checkpoint)

	s = &racingStore{MemoryStore: lease.NewMemoryStore()}
	s.races.Store(100)
	create(t, s, lease.Lease{Key: key, Owner: "w1", Checkpoint: checkpoint.At("500", 0)})
	_, err = resetWith(t, testDeps(s, k), resetOptions(key, true), "trim-horizon")
	require.ErrorContains(t, err, "1 lease not reset")
	require.Equal(t, int32(5), s.resets.Load())
}

// positionAt: the checkpoint from which a worker resumes at the first
// record that arrived at or after the time, aggregates included.
func TestPositionAt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newStream(1)
		start := time.Now()
		put := func(data []byte) string { return put(t, k, "1", data) }
		r0 := put([]byte("0"))
		time.Sleep(10 * time.Second)
		r1 := put([]byte("1"))
		time.Sleep(90 * time.Second)
		var a deagg.Aggregator
		for i := range 5 {
			_, err := a.Add("k", "", []byte(fmt.Sprint(i)))
			require.NoError(t, err)
		}
		r2 := put(a.Flush().Data)
		time.Sleep(900 * time.Second)
		r3 := put([]byte("3"))

		cases := []struct {
			at   time.Duration
			want checkpoint.Position
		}{
			{-time.Second, checkpoint.TrimHorizon},
			{0, checkpoint.TrimHorizon}, // r0 arrived at the time
			{time.Millisecond, checkpoint.At(r0, 0)},
			{10 * time.Second, checkpoint.At(r0, 0)}, // r1 arrived at the time
			{50 * time.Second, checkpoint.At(r1, 0)},
			{500 * time.Second, checkpoint.At(r2, 4)}, // after the aggregate's last user record
			{2000 * time.Second, checkpoint.At(r3, 0)},
		}
		for _, tc := range cases {
			got, err := positionAt(context.Background(), k, streamRef{name: testStream}, "shardId-000000000000", start.Add(tc.at))
			require.NoError(t, err, tc.at)
			require.Equal(t, tc.want, got, "at start%+v", tc.at)
		}
		empty := newStream(2)
		got, err := positionAt(context.Background(), empty, streamRef{name: testStream}, "shardId-000000000001", start)
		require.NoError(t, err)
		require.Equal(t, checkpoint.TrimHorizon, got, "an empty shard")
	})
}
