package lease

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

// kinds returns "kind/reason shard" for each lease event recorded.
func (r *recordingHook) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.leaseEvents {
		out = append(out, e.Kind.String()+"/"+e.Reason.String()+" "+e.Shard)
	}
	return out
}

func (r *recordingHook) copies() ([]LeaseEvent, []Renewal, []CheckpointWrite, []TakerCycle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.leaseEvents), slices.Clone(r.renewals), slices.Clone(r.checkpoints), slices.Clone(r.cycles)
}

func hooked(worker string, h Hook) Config {
	return Config{WorkerID: worker, Stream: "orders", Hooks: []Hook{h}}
}

// A lease's life on two workers, as their hooks hear it: taken, renewed,
// checkpointed (at once, deferred, at the shard's end), released, stolen,
// lost, and released at the end of Run; and every taker cycle. The store
// has neither hand-offs nor worker rows (as the KCL 2.x's table), so a
// newcomer probes first and steals.
func TestHooksHearALeasesLife(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := struct{ Store }{NewMemoryStore()}
		createLeases(t, s, 3, "")
		h1 := &recordingHook{}
		r1 := runManager(t, s, hooked("w1", h1))
		time.Sleep(time.Minute) // the probe takes one, the full plan the rest
		require.Len(t, r1.Held(), 3)
		require.ElementsMatch(t, []string{"taken/unowned shard-0", "taken/unowned shard-1", "taken/unowned shard-2"}, h1.kinds())

		ctx := context.Background()
		require.NoError(t, r1.Checkpoint(ctx, "shard-0", checkpoint.At("10", 0)))
		require.NoError(t, r1.Defer("shard-0", checkpoint.At("20", 0)))
		time.Sleep(defaultRenew + time.Millisecond) // the next renewal carries it
		require.NoError(t, r1.FinishShard(ctx, "shard-2", nil))
		require.NoError(t, r1.Release(ctx, "shard-2"))

		events, renewals, cps, cycles := h1.copies()
		require.Equal(t, LeaseEvent{Stream: "orders", Worker: "w1", Shard: "shard-2", Kind: LeaseReleased, Reason: ReasonRequested,
			Counter: stored(t, s, "shard-2").Counter}, events[len(events)-1])
		var kinds []string
		for _, c := range cps {
			require.NoError(t, c.Err)
			require.Equal(t, "orders", c.Stream)
			kinds = append(kinds, c.Kind.String()+" "+c.Shard+" "+c.Position.String())
		}
		require.Equal(t, []string{"now shard-0 10", "deferred shard-0 20", "shard_end shard-2 SHARD_END"}, kinds)
		require.NotEmpty(t, renewals)
		withCheckpoint := 0
		for _, r := range renewals {
			require.NoError(t, r.Err)
			require.Equal(t, "w1", r.Worker)
			if r.WithCheckpoint {
				withCheckpoint++
			}
		}
		require.Equal(t, 1, withCheckpoint)
		require.GreaterOrEqual(t, len(cycles), 10, "a cycle every 5s")
		first, last := cycles[0], cycles[len(cycles)-1]
		require.Equal(t, TakerCycle{Stream: "orders", Worker: "w1", Leases: 3, Unfinished: 3, Available: 3, Workers: 1,
			Planned: 1, Taken: 1, Probe: true}, first, "the first cycle is a probe")
		require.Equal(t, TakerCycle{Stream: "orders", Worker: "w1", Leases: 3, Unfinished: 3, Held: 3, Workers: 1}, last)

		// A newcomer steals one of the two unfinished leases; w1 loses it
		// at its next renewal.
		h2 := &recordingHook{}
		runManager(t, s, hooked("w2", h2))
		time.Sleep(time.Minute)
		require.Len(t, r1.Held(), 1)
		events2, _, _, _ := h2.copies()
		require.Len(t, events2, 1)
		stolen := events2[0]
		require.Equal(t, LeaseStolen, stolen.Kind)
		require.Equal(t, ReasonBalance, stolen.Reason)
		require.Equal(t, "w1", stolen.PreviousOwner)
		lost := h1.kinds()[len(h1.kinds())-1]
		require.Equal(t, "lost/refused "+stolen.Shard, lost)
		events, _, _, _ = h1.copies()
		require.ErrorIs(t, events[len(events)-1].Err, ErrLeaseLost)

		kept := r1.Held()[0].Key
		require.NoError(t, r1.stop())
		require.Equal(t, "released/shutdown "+kept, h1.kinds()[len(h1.kinds())-1])
	})
}

func TestHooksHearFailedRenewals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 1, "")
		s.setBefore(func(_ context.Context, op string, _ Lease) error {
			if op == "Renew" {
				return errNetwork
			}
			return nil
		})
		h := &recordingHook{}
		runManager(t, s, hooked("w", h))
		time.Sleep(defaultDrop + time.Millisecond)
		events, renewals, _, _ := h.copies()
		require.NotEmpty(t, renewals)
		for _, r := range renewals {
			require.ErrorIs(t, r.Err, errNetwork)
		}
		kinds := h.kinds()
		require.Equal(t, "taken/unowned shard-0", kinds[0])
		require.Equal(t, "lost/not_renewed shard-0", kinds[len(kinds)-1])
		require.NoError(t, events[len(events)-1].Err)
		failed := 0
		for _, e := range events {
			if e.Kind == LeaseRenewalFailed {
				require.Equal(t, ReasonError, e.Reason)
				require.ErrorIs(t, e.Err, errNetwork)
				failed++
			}
		}
		require.Equal(t, len(renewals), failed, "each failed renewal is a renewal_failed event")
	})
}

func TestHooksHearWhoseLeaseWasTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		ctx := context.Background()
		require.NoError(t, s.Create(ctx, Lease{Key: "shard-0", Owner: "w", Checkpoint: checkpoint.TrimHorizon}))
		require.NoError(t, s.Create(ctx, Lease{Key: "shard-1", Owner: "dead", Checkpoint: checkpoint.TrimHorizon}))
		h := &recordingHook{}
		runManager(t, s, hooked("w", h))
		time.Sleep(DefaultFailoverTime + defaultTaker)
		require.Equal(t, []string{"taken/orphan shard-0", "taken/expired shard-1"}, h.kinds())
		events, _, _, _ := h.copies()
		require.Equal(t, "w", events[0].PreviousOwner)
		require.Equal(t, "dead", events[1].PreviousOwner)
	})
}

func TestHooksHearFailedScans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 1, "")
		scanFails := errors.New("table unreachable")
		s.setBefore(func(_ context.Context, op string, _ Lease) error {
			if op == "List" {
				return scanFails
			}
			return nil
		})
		h := &recordingHook{}
		r := runManager(t, s, hooked("w", h))
		time.Sleep(time.Second)
		_, _, _, cycles := h.copies()
		require.NotEmpty(t, cycles)
		require.ErrorIs(t, cycles[0].Err, scanFails)
		require.Zero(t, cycles[0].Leases)
		require.True(t, r.LastScan().IsZero())
	})
}

func TestHeldLeasesAndLastScan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 2, "")
		start := time.Now()
		r := runManager(t, s, Config{WorkerID: "w"})
		require.Equal(t, start, r.LastScan())
		time.Sleep(time.Minute)
		held := r.HeldLeases()
		require.Len(t, held, 2)
		require.Equal(t, "shard-0", held[0].Lease.Key)
		for _, h := range held {
			require.Equal(t, h.Lease, stored(t, s, h.Lease.Key))
			require.Less(t, time.Since(h.LastRenewed), defaultRenew+time.Millisecond)
		}
		require.Less(t, time.Since(r.LastScan()), defaultTaker+time.Millisecond)
	})
}
