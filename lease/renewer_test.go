package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

var errNetwork = errors.New("connection reset")

func TestRenewerKeepsLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		keys := createLeases(t, s, 3, "")
		var ev events
		r := runManager(t, s, ev.config(Config{WorkerID: "w"}))
		time.Sleep(time.Minute)
		require.Equal(t, keys, heldKeys(r.Manager))
		for _, key := range keys {
			renewals := 0
			for _, c := range s.callsFor(key) {
				if c == "Renew" {
					renewals++
				}
			}
			// One renewal per RenewInterval from the take (at 0s or 5s) to
			// 60s: 18 ticks, the first one or two skipped after a take at 5s.
			require.InDelta(t, 17, renewals, 1, "lease %s: %v", key, s.callsFor(key))
			l, _ := r.Lease(key)
			require.Equal(t, stored(t, s, key), l)
		}
		require.Equal(t, []string{"+shard-0", "+shard-1", "+shard-2"}, sortedCopy(ev.get()))
	})
}

// A renewal refused because another worker took the lease drops it at once
// and reports it.
func TestRenewalRefusedDropsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 1, "")
		var lostAt timeBox
		start := time.Now()
		r := runManager(t, s, Config{WorkerID: "w", OnLost: func(Lease) { lostAt.set(time.Now()) }})
		require.Len(t, r.Held(), 1)

		time.Sleep(time.Second)
		_, err := s.Take(context.Background(), stored(t, s, "shard-0"), "thief")
		require.NoError(t, err)
		time.Sleep(3 * time.Second)
		require.Empty(t, r.Held())
		require.Equal(t, defaultRenew, lostAt.get().Sub(start), "lost at the first renewal after the steal")
		err = r.Checkpoint(context.Background(), "shard-0", checkpoint.At("1", 0))
		require.ErrorIs(t, err, ErrLeaseLost)
		require.ErrorIs(t, err, checkpoint.ErrLeaseLost)
	})
}

// blockingStore makes every call after block() hang until unblock(), or
// until its context is done if honourContext; the blocked calls then fail.
type blockingStore struct {
	*hookStore
	honourContext bool
	mu            sync.Mutex
	blocked       chan struct{}
}

func (b *blockingStore) block() {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan struct{})
	b.blocked = ch
	b.setBefore(func(ctx context.Context, _ string, _ Lease) error {
		if !b.honourContext {
			<-ch
			return errNetwork
		}
		select {
		case <-ch:
			return errNetwork
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

func (b *blockingStore) unblock() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.blocked)
	b.setBefore(nil)
}

// While the store hangs, the lease is dropped 90% of FailoverTime after the
// start of its last successful renewal, not when a hanging call returns:
// whether the calls end at their deadline (RenewInterval) or, the worst
// case, ignore their contexts.
func TestRenewalDropsAtDeadlineWhileStoreHangs(t *testing.T) {
	for _, honour := range []bool{true, false} {
		t.Run(fmt.Sprintf("honourContext=%v", honour), func(t *testing.T) {
			testDropWhileStoreHangs(t, honour)
		})
	}
}

func testDropWhileStoreHangs(t *testing.T, honourContext bool) {
	synctest.Test(t, func(t *testing.T) {
		s := &blockingStore{hookStore: newHookStore(), honourContext: honourContext}
		createLeases(t, s, 1, "")
		var lostAt timeBox
		start := time.Now()
		r := runManager(t, s, Config{WorkerID: "w", OnLost: func(Lease) { lostAt.set(time.Now()) }})
		require.Len(t, r.Held(), 1) // taken at 0s: lastRenewed = 0s

		time.Sleep(4 * time.Second) // renewed at 3.33s
		s.block()                   // the renewal at 6.67s hangs
		time.Sleep(20 * time.Second)
		require.Empty(t, r.Held())
		require.Equal(t, defaultRenew+defaultDrop, lostAt.get().Sub(start))
		require.ErrorIs(t, r.Checkpoint(context.Background(), "shard-0", checkpoint.At("1", 0)), ErrLeaseLost)

		s.unblock()
		require.NoError(t, r.stop())
	})
}

// A transient failure is retried at the next interval; the lease is kept
// if a retry succeeds before the deadline.
func TestRenewalTransientFailureRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 1, "")
		var failed atomic.Int32
		s.setBefore(func(_ context.Context, op string, _ Lease) error {
			if op == "Renew" && failed.Add(1) == 1 {
				return errNetwork
			}
			return nil
		})
		var ev events
		r := runManager(t, s, ev.config(Config{WorkerID: "w"}))
		time.Sleep(time.Minute)
		require.Len(t, r.Held(), 1)
		require.Equal(t, []string{"+shard-0"}, ev.get())
	})
}

// Renewals that keep failing drop the lease at the deadline, 9s after the
// take; the taker, whose scans work, takes the orphan back on its next scan.
func TestRenewalFailuresDropAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 1, "")
		s.setBefore(func(_ context.Context, op string, _ Lease) error {
			if op == "Renew" {
				return errNetwork
			}
			return nil
		})
		var ev events
		start := time.Now()
		var lostAt timeBox
		cfg := ev.config(Config{WorkerID: "w"})
		onLost := cfg.OnLost
		cfg.OnLost = func(l Lease) { lostAt.set(time.Now()); onLost(l) }
		r := runManager(t, s, cfg)
		time.Sleep(defaultDrop + time.Millisecond)
		require.Empty(t, r.Held())
		require.Equal(t, defaultDrop, lostAt.get().Sub(start))
		time.Sleep(defaultTaker)
		require.Len(t, r.Held(), 1, "the orphan is taken back at the next scan (10s)")
		require.Equal(t, []string{"+shard-0", "-shard-0", "+shard-0"}, ev.get())
	})
}

// Different leases renew in parallel, at most writeParallelism at a time.
func TestRenewalsRunInParallel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 100, "")
		var inFlight, most atomic.Int32
		s.setBefore(func(_ context.Context, op string, _ Lease) error {
			if op != "Renew" {
				return nil
			}
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond) // a DynamoDB write
			return nil
		})
		r := runManager(t, s, Config{WorkerID: "w"})
		time.Sleep(30 * time.Second)
		require.Len(t, r.Held(), 100)
		require.Equal(t, int32(writeParallelism), most.Load())
	})
}

func sortedCopy(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// timeBox holds a time written by a callback and read by the test.
type timeBox struct {
	mu sync.Mutex
	t  time.Time
}

func (b *timeBox) set(t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.t = t
}

func (b *timeBox) get() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.t
}

// The bound on writes in flight holds for the Manager as a whole: renewal
// rounds that overlap (slow writes) and the taker's writes share it.
func TestWritesInFlightStayBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 100, "")
		var inFlight, most atomic.Int32
		slow := atomic.Bool{}
		s.setBefore(func(ctx context.Context, op string, _ Lease) error {
			if op == "List" || op == "UpdateCheckpoint" {
				return nil
			}
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			d := 20 * time.Millisecond
			if slow.Load() {
				d = time.Hour // until the write's deadline
			}
			select {
			case <-time.After(d):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		r := runManager(t, s, Config{WorkerID: "w"})
		time.Sleep(10 * time.Second)
		require.Len(t, r.Held(), 100)
		slow.Store(true) // renewal rounds now overlap
		time.Sleep(20 * time.Second)
		require.LessOrEqual(t, most.Load(), int32(writeParallelism))
	})
}
