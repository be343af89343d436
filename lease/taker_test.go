package lease

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

// takenAt returns when each lease was first taken by owner, from the
// store's history.
func takenAt(s *simStore, owner string) map[string]time.Time {
	_, _, history := s.snapshot()
	out := make(map[string]time.Time)
	for _, c := range history {
		if _, ok := out[c.key]; !ok && c.to == owner {
			out[c.key] = c.at
		}
	}
	return out
}

func TestFinishedLeasesNeverTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		ctx := context.Background()
		createLeases(t, s, 4, "")
		for i := range 6 {
			require.NoError(t, s.Create(ctx, Lease{Key: fmt.Sprintf("done-%d", i), Checkpoint: checkpoint.ShardEnd}))
			require.NoError(t, s.Create(ctx, Lease{Key: fmt.Sprintf("ghost-done-%d", i), Owner: "ghost", Checkpoint: checkpoint.ShardEnd}))
		}
		a := runManager(t, s, Config{WorkerID: "a"})
		b := runManager(t, s, Config{WorkerID: "b"})
		time.Sleep(time.Minute)
		require.Len(t, a.Held(), 2, "finished leases count in no load")
		require.Len(t, b.Held(), 2)
		for _, l := range append(a.Held(), b.Held()...) {
			require.False(t, l.Finished(), l.Key)
		}
	})
}

// A worker's own finished leases count in no load, and are never stolen.
func TestFinishedLeasesNeverStolen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		keys := createLeases(t, s, 4, "")
		a := runManager(t, s, Config{WorkerID: "a"})
		time.Sleep(time.Minute)
		require.Len(t, a.Held(), 4)
		require.NoError(t, a.FinishShard(context.Background(), keys[0], nil))
		require.NoError(t, a.FinishShard(context.Background(), keys[1], nil))

		b := runManager(t, s, Config{WorkerID: "b"})
		time.Sleep(time.Minute)
		require.Len(t, b.Held(), 1)
		require.Len(t, a.Held(), 3, "two finished, one unfinished")
		for _, l := range b.Held() {
			require.False(t, l.Finished())
		}
		for _, key := range keys[:2] {
			require.Equal(t, "a", stored(t, s, key).Owner)
		}
	})
}

func TestMaxLeasesForWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		createLeases(t, s, 10, "")
		a := runManager(t, s, Config{WorkerID: "a", MaxLeasesForWorker: 3})
		time.Sleep(time.Minute)
		require.Len(t, a.Held(), 3)

		// Another worker takes what a cannot, though a's quota is 5: the
		// leases a's cap leaves in its interval linger, and b takes them.
		b := runManager(t, s, Config{WorkerID: "b"})
		time.Sleep(time.Minute)
		require.Len(t, a.Held(), 3)
		require.Len(t, b.Held(), 7)
	})
}

func TestMaxLeasesToStealAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		createLeases(t, s, 20, "")
		runManager(t, s, Config{WorkerID: "a"})
		time.Sleep(time.Minute)

		joined := time.Now()
		b := runManager(t, s, Config{WorkerID: "b", MaxLeasesToStealAtOnce: 2})
		time.Sleep(2 * time.Minute)
		require.Len(t, b.Held(), 10)

		// b, a newcomer, steals nothing in its first cycle, then asks for at
		// most 2 per cycle.
		perCycle := make(map[time.Duration]int)
		for _, at := range takenAt(s, "b") {
			perCycle[at.Sub(joined)]++
		}
		require.Equal(t, map[time.Duration]int{
			defaultTaker: 2, 2 * defaultTaker: 2, 3 * defaultTaker: 2, 4 * defaultTaker: 2, 5 * defaultTaker: 2,
		}, perCycle)
	})
}

// A lease whose owner stopped renewing it is taken FailoverTime after this
// worker first saw its counter, not a taker interval later: the taker wakes
// up when a watched lease would expire.
func TestExpiredLeaseTakenAtExpiry(t *testing.T) {
	for _, interval := range []time.Duration{defaultTaker, 30 * time.Second} {
		t.Run(interval.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimStore()
				createLeases(t, s, 1, "")
				require.NoError(t, s.Create(context.Background(), Lease{Key: "ghost-0", Owner: "ghost", Checkpoint: checkpoint.Latest}))
				start := time.Now()
				runManager(t, s, Config{WorkerID: "w", TakerInterval: interval})
				time.Sleep(time.Minute)
				at := takenAt(s, "w")
				require.Equal(t, DefaultFailoverTime, at["ghost-0"].Sub(start))
			})
		})
	}
}

// A lease whose owner renews it is never taken as expired.
func TestLiveLeaseNotExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		createLeases(t, s, 1, "")
		a := runManager(t, s, Config{WorkerID: "a"})
		// One lease, two workers: a's quota is 1, b's 0, so b may only take
		// the lease if a stops renewing it.
		b := runManager(t, s, Config{WorkerID: "b"})
		time.Sleep(time.Minute)
		require.Len(t, a.Held(), 1)
		require.Empty(t, b.Held())
		require.Empty(t, takenAt(s, "b"))
	})
}

// Leases owned by this WorkerID but not held (left by a previous process
// with the same ID) are taken without waiting for them to expire.
func TestOrphansTakenAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		createLeases(t, s, 5, "w")
		start := time.Now()
		r := runManager(t, s, Config{WorkerID: "w"})
		time.Sleep(defaultTaker + time.Second)
		require.Len(t, r.Held(), 5)
		for key, at := range takenAt(s, "w") {
			require.LessOrEqual(t, at.Sub(start), defaultTaker, key)
		}
	})
}

func TestStopTaking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		createLeases(t, s, 2, "")
		r := runManager(t, s, Config{WorkerID: "w"})
		time.Sleep(time.Minute)
		require.Len(t, r.Held(), 2)
		r.StopTaking()
		r.StopTaking()
		require.NoError(t, s.Create(context.Background(), Lease{Key: "new", Checkpoint: checkpoint.Latest}))
		before := stored(t, s, "shard-0").Counter
		time.Sleep(time.Minute)
		require.Len(t, r.Held(), 2)
		require.Empty(t, stored(t, s, "new").Owner)
		require.Greater(t, stored(t, s, "shard-0").Counter, before+10, "still renewing")
		require.Len(t, r.Leases(), 3, "still scanning")
	})
}

// benchTable fills a MemoryStore with leases owned by workers, round robin,
// and returns a Manager for the first worker holding its share.
func benchTable(b *testing.B, leases, workers int) *Manager {
	s := NewMemoryStore()
	ctx := context.Background()
	m, err := NewManager(s, Config{WorkerID: "w00"})
	require.NoError(b, err)
	for i := range leases {
		l := Lease{Key: fmt.Sprintf("shardId-%012d", i), Owner: fmt.Sprintf("w%02d", i%workers), Counter: 7, Checkpoint: checkpoint.At("49590338271490256608559692538361571095921575989136588898", 0)}
		require.NoError(b, s.Create(ctx, l))
		if l.Owner == "w00" {
			m.held[l.Key] = newHeldLease(l, time.Now())
		}
	}
	return m
}

// One taker cycle of a worker in a balanced fleet of 50 on 2,000 leases: a
// scan (MemoryStore.List, which copies and sorts the table), the
// observations, the plan (nothing to take), and the next wake-up.
func BenchmarkTakerCycle(b *testing.B) {
	m := benchTable(b, 2000, 50)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m.takerCycle(ctx)
	}
}

// The same cycle without the store: classifying 2,000 leases already read,
// and planning.
func BenchmarkClassifyAndPlan(b *testing.B) {
	m := benchTable(b, 2000, 50)
	leases, err := m.store.List(context.Background())
	require.NoError(b, err)
	held, waiting := m.heldStates()
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		m.scanMu.Lock()
		v := m.classify(leases, held, waiting, now)
		m.scanMu.Unlock()
		p := planAcquisitions(v, limits{}, shuffleLeases)
		if len(p.take)+len(p.steal) != 0 {
			b.Fatal("a balanced fleet planned moves")
		}
	}
}

// TestAcceptFilters: leases Accept refuses are neither taken nor counted:
// two workers split the accepted leases evenly, whatever the others; a
// worker that refuses a lease another holds leaves it there.
func TestAcceptFilters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		ctx := context.Background()
		createLeases(t, s, 4, "")
		for i := range 6 {
			require.NoError(t, s.Create(ctx, Lease{Key: fmt.Sprintf("other-%d", i), Checkpoint: checkpoint.TrimHorizon}))
		}
		accept := func(l Lease) bool { return len(l.Key) < 6 || l.Key[:6] != "other-" }
		a := runManager(t, s, Config{WorkerID: "a", Accept: accept})
		b := runManager(t, s, Config{WorkerID: "b", Accept: accept})
		time.Sleep(time.Minute)
		require.Len(t, a.Held(), 2, "the refused leases count in no load")
		require.Len(t, b.Held(), 2)
		for _, l := range append(a.Held(), b.Held()...) {
			require.True(t, accept(l), l.Key)
		}

		// A worker accepting everything takes the others, and no one steals
		// from it what they refuse.
		c := runManager(t, s, Config{WorkerID: "c"})
		time.Sleep(time.Minute)
		require.Len(t, c.Held(), 6)
		for _, l := range c.Held() {
			require.False(t, accept(l), l.Key)
		}
		require.Len(t, a.Held(), 2)
		require.Len(t, b.Held(), 2)
	})
}
