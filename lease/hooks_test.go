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
// checkpointed (at once, deferred, at the shard's end), released, handed off
// to a newcomer (asked for, handed off, taken over: no loss), and released
// at the end of Run; and every taker cycle.
func TestHooksHearALeasesLife(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 3, "")
		h1 := &recordingHook{}
		r1 := runManager(t, s, hooked("w1", h1))
		time.Sleep(time.Minute)
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
		first := cycles[0]
		require.Equal(t, TakerCycle{Stream: "orders", Worker: "w1", Leases: 3, Unfinished: 3, Available: 3, Workers: 1,
			Planned: 3, Taken: 3}, first, "a lone worker with a row takes all on its first scan")

		// A newcomer asks for one of the two unfinished leases; w1 (with no
		// OnHandOff) hands it over at its next renewal, and loses nothing.
		h2 := &recordingHook{}
		runManager(t, s, hooked("w2", h2))
		time.Sleep(time.Minute)
		require.Len(t, r1.Held(), 1)
		events2, _, _, cycles2 := h2.copies()
		require.Len(t, events2, 1)
		took := events2[0]
		require.Equal(t, LeaseTaken, took.Kind)
		require.Equal(t, ReasonHandOff, took.Reason)
		require.Equal(t, "w1", took.PreviousOwner)
		require.Empty(t, took.NewOwner)
		asked := 0
		for _, c := range cycles2 {
			asked += c.Asked
			require.Zero(t, c.Taken, "a hand-off is taken by the hand-off loop, not in a taker cycle")
		}
		require.Equal(t, 1, asked)

		// With no OnHandOff the Manager releases at once: the asked event
		// (from the event goroutine) and the handed-off one (from the
		// release's) come in either order, as HookLeaseEvent documents.
		kinds1 := h1.kinds()
		require.ElementsMatch(t, []string{"hand_off_asked/hand_off " + took.Shard, "handed_off/hand_off " + took.Shard},
			kinds1[len(kinds1)-2:], "no loss: a hand-off")
		events, _, _, _ = h1.copies()
		for _, e := range events[len(events)-2:] {
			require.Equal(t, "w2", e.NewOwner)
			require.NoError(t, e.Err)
		}

		kept := r1.Held()[0].Key
		require.NoError(t, r1.stop())
		require.Equal(t, "released/shutdown "+kept, h1.kinds()[len(h1.kinds())-1])
	})
}

// On a store without hand-offs, a newcomer steals: stolen on one worker,
// lost on the other.
func TestHooksHearASteal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := struct{ Store }{NewMemoryStore()}
		createLeases(t, s, 2, "")
		h1 := &recordingHook{}
		r1 := runManager(t, s, hooked("w1", h1))
		time.Sleep(time.Minute) // the probe takes one, the full plan the other
		require.Len(t, r1.Held(), 2)
		_, _, _, cycles := h1.copies()
		require.Equal(t, TakerCycle{Stream: "orders", Worker: "w1", Leases: 2, Unfinished: 2, Available: 2, Workers: 1,
			Planned: 1, Taken: 1, Probe: true}, cycles[0], "without worker rows, the first cycle is a probe")

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
		events, _, _, _ := h1.copies()
		require.ErrorIs(t, events[len(events)-1].Err, ErrLeaseLost)
	})
}

// A holder told of a hand-off (its hook hears of it just before OnHandOff)
// that releases the lease hands it off: handed_off, not released.
func TestHooksHearAHandOffReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		h := newHandOffs()
		h1 := &recordingHook{}
		createLeases(t, s, 2, "")
		cfg := hooked("a", h1)
		var heardFirst []bool // written by the event goroutine, read after the channel
		cfg.OnHandOff = func(l Lease) {
			kinds := h1.kinds()
			heardFirst = append(heardFirst, kinds[len(kinds)-1] == "hand_off_asked/hand_off "+l.Key)
			h.on(l)
		}
		a := runManager(t, s, cfg)
		time.Sleep(10 * time.Second)
		h2 := &recordingHook{}
		runManager(t, s, hooked("b", h2))
		l := <-h.ch
		require.Equal(t, []bool{true}, heardFirst, "the hook hears of the hand-off before OnHandOff")
		require.NoError(t, a.Release(context.Background(), l.Key))
		time.Sleep(time.Second)

		kinds := h1.kinds()
		require.Equal(t, []string{"hand_off_asked/hand_off " + l.Key, "handed_off/hand_off " + l.Key}, kinds[len(kinds)-2:])
		require.Equal(t, []string{"taken/hand_off " + l.Key}, h2.kinds())
	})
}

// A holder that does not release within HandOffTimeout: the new owner
// steals the lease (hand_off_timeout), and the holder loses it.
func TestHooksHearATimedOutHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		h := newHandOffs()
		h1 := &recordingHook{}
		createLeases(t, s, 2, "")
		cfg := hooked("a", h1)
		cfg.OnHandOff = h.on // and never released
		runManager(t, s, cfg)
		time.Sleep(10 * time.Second)
		h2 := &recordingHook{}
		runManager(t, s, hooked("b", h2))
		l := <-h.ch
		// b steals HandOffTimeout (FailoverTime) after asking; a hears of
		// it at its next renewal, at most RenewInterval later.
		time.Sleep(DefaultFailoverTime + defaultRenew + time.Second)
		synctest.Wait()

		events2, _, _, _ := h2.copies()
		require.Len(t, events2, 1)
		require.Equal(t, LeaseStolen, events2[0].Kind)
		require.Equal(t, ReasonHandOffTimeout, events2[0].Reason)
		require.Equal(t, "a", events2[0].PreviousOwner)
		kinds := h1.kinds()
		require.Equal(t, []string{"hand_off_asked/hand_off " + l.Key, "lost/refused " + l.Key}, kinds[len(kinds)-2:])
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
