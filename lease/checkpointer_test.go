package lease

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

// holdOne runs a Manager holding the single lease "shard-0", taken at 0s.
func holdOne(t *testing.T, ev *events) (*hookStore, *running) {
	s := newHookStore()
	createLeases(t, s, 1, "")
	r := runManager(t, s, ev.config(Config{WorkerID: "w"}))
	require.Len(t, r.Held(), 1)
	return s, r
}

func TestCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		start := time.Now()
		s, r := holdOne(t, &ev)
		ctx := context.Background()
		before := stored(t, s, "shard-0")

		time.Sleep(time.Second)
		pos := checkpoint.At("49590338271490256608559692538361571095921575989136588898", 3)
		require.NoError(t, r.Checkpoint(ctx, "shard-0", pos))
		after := stored(t, s, "shard-0")
		require.Equal(t, pos, after.Checkpoint)
		require.Equal(t, before.Counter+1, after.Counter)
		l, _ := r.Lease("shard-0")
		require.Equal(t, after, l)
		require.Equal(t, time.Second, r.lastRenewed("shard-0").Sub(start), "a checkpoint write renews")

		// Behind: refused, nothing written.
		err := r.Checkpoint(ctx, "shard-0", checkpoint.At("49590338271490256608559692538361571095921575989136588898", 2))
		require.ErrorIs(t, err, ErrCheckpointBehind)
		require.ErrorIs(t, err, checkpoint.ErrCheckpointBehind)
		require.ErrorContains(t, err, "shard-0")
		// Equal: nil, nothing written.
		require.NoError(t, r.Checkpoint(ctx, "shard-0", pos))
		require.Equal(t, after.Counter, stored(t, s, "shard-0").Counter)
		// Invalid.
		require.ErrorIs(t, r.Checkpoint(ctx, "shard-0", checkpoint.Position{SequenceNumber: "12x"}), checkpoint.ErrInvalid)
		// Not held.
		require.ErrorIs(t, r.Checkpoint(ctx, "shard-9", pos), ErrLeaseLost)
		require.Equal(t, []string{"Take", "UpdateCheckpoint"}, s.callsFor("shard-0"))
	})
}

// lastRenewed returns the lease's last renewal time (the start of the write).
func (m *Manager) lastRenewed(key string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held[key].lastRenewed
}

// A checkpoint write renews the lease: the renewal due soon after is
// skipped, the next one is not.
func TestCheckpointCountsAsRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		time.Sleep(3 * time.Second)
		require.NoError(t, r.Checkpoint(context.Background(), "shard-0", checkpoint.At("1", 0)))
		time.Sleep(time.Second) // the tick at 3.33s skips it
		require.Equal(t, []string{"Take", "UpdateCheckpoint"}, s.callsFor("shard-0"))
		time.Sleep(3 * time.Second) // the tick at 6.67s renews it
		require.Equal(t, []string{"Take", "UpdateCheckpoint", "Renew"}, s.callsFor("shard-0"))
	})
}

func TestCheckpointShardEndTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		ctx := context.Background()
		require.NoError(t, r.Checkpoint(ctx, "shard-0", checkpoint.ShardEnd))
		require.NoError(t, r.Checkpoint(ctx, "shard-0", checkpoint.ShardEnd))
		require.NoError(t, r.FinishShard(ctx, "shard-0", []string{"shard-1"}))
		require.Equal(t, []string{"Take", "UpdateCheckpoint"}, s.callsFor("shard-0"))
		require.True(t, stored(t, s, "shard-0").Finished())
		require.ErrorIs(t, r.Checkpoint(ctx, "shard-0", checkpoint.At("1", 0)), ErrCheckpointBehind)
	})
}

func TestFinishShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		ctx := context.Background()
		require.NoError(t, r.FinishShard(ctx, "shard-0", []string{"shard-1", "shard-2"}))
		got := stored(t, s, "shard-0")
		require.Equal(t, checkpoint.ShardEnd, got.Checkpoint)
		require.Equal(t, []string{"shard-1", "shard-2"}, got.ChildShardIDs)
		require.NoError(t, r.FinishShard(ctx, "shard-0", []string{"shard-1", "shard-2"}))
		require.Equal(t, []string{"Take", "UpdateCheckpoint"}, s.callsFor("shard-0"))
		require.ErrorIs(t, r.FinishShard(ctx, "shard-9", nil), ErrLeaseLost)
	})
}

// A checkpoint write refused because another worker took the lease returns
// ErrLeaseLost, drops the lease and calls OnLost.
func TestCheckpointRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		_, err := s.Take(context.Background(), stored(t, s, "shard-0"), "thief")
		require.NoError(t, err)
		err = r.Checkpoint(context.Background(), "shard-0", checkpoint.At("5", 0))
		require.ErrorIs(t, err, ErrLeaseLost)
		require.ErrorIs(t, err, checkpoint.ErrLeaseLost)
		require.Empty(t, r.Held())
		time.Sleep(100 * time.Millisecond) // let the callbacks run
		require.Equal(t, []string{"+shard-0", "-shard-0"}, ev.get())
		require.Equal(t, checkpoint.TrimHorizon, stored(t, s, "shard-0").Checkpoint, "never written")
	})
}

// A deferred checkpoint rides on the next renewal: one UpdateCheckpoint
// write and no Renew.
func TestDeferCarriedByRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		time.Sleep(time.Second)
		require.NoError(t, r.Defer("shard-0", checkpoint.At("7", 0)))
		require.NoError(t, r.Defer("shard-0", checkpoint.At("9", 1))) // supersedes
		require.Equal(t, checkpoint.TrimHorizon, stored(t, s, "shard-0").Checkpoint, "no I/O in Defer")
		time.Sleep(3 * time.Second) // the renewal at 3.33s
		require.Equal(t, []string{"Take", "UpdateCheckpoint"}, s.callsFor("shard-0"))
		require.Equal(t, checkpoint.At("9", 1), stored(t, s, "shard-0").Checkpoint)
		time.Sleep(3 * time.Second) // the next is a plain renewal
		require.Equal(t, []string{"Take", "UpdateCheckpoint", "Renew"}, s.callsFor("shard-0"))
	})
}

func TestDeferChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		require.NoError(t, r.Checkpoint(context.Background(), "shard-0", checkpoint.At("10", 0)))
		require.ErrorIs(t, r.Defer("shard-0", checkpoint.At("9", 0)), ErrCheckpointBehind)
		require.ErrorIs(t, r.Defer("shard-0", checkpoint.Position{}), checkpoint.ErrInvalid)
		require.ErrorIs(t, r.Defer("shard-9", checkpoint.At("11", 0)), ErrLeaseLost)

		// A Defer equal to the stored checkpoint cancels a pending one.
		require.NoError(t, r.Defer("shard-0", checkpoint.At("12", 0)))
		require.NoError(t, r.Defer("shard-0", checkpoint.At("10", 0)))
		time.Sleep(5 * time.Second)
		require.Equal(t, checkpoint.At("10", 0), stored(t, s, "shard-0").Checkpoint)

		// A Checkpoint supersedes a deferred one, even a later position.
		require.NoError(t, r.Defer("shard-0", checkpoint.At("20", 0)))
		require.NoError(t, r.Checkpoint(context.Background(), "shard-0", checkpoint.At("15", 0)))
		time.Sleep(5 * time.Second)
		require.Equal(t, checkpoint.At("15", 0), stored(t, s, "shard-0").Checkpoint)
	})
}

// Release writes the deferred checkpoint, then releases; no OnLost.
func TestReleaseWritesDeferredCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		ctx := context.Background()
		r.StopTaking() // or the taker would take the released lease back
		require.NoError(t, r.Defer("shard-0", checkpoint.At("42", 0)))
		require.NoError(t, r.Release(ctx, "shard-0"))
		require.Equal(t, []string{"Take", "UpdateCheckpoint", "Release"}, s.callsFor("shard-0"))
		got := stored(t, s, "shard-0")
		require.Equal(t, checkpoint.At("42", 0), got.Checkpoint)
		require.Empty(t, got.Owner)
		require.Empty(t, r.Held())
		require.ErrorIs(t, r.Release(ctx, "shard-0"), ErrLeaseLost)
		require.ErrorIs(t, r.Checkpoint(ctx, "shard-0", checkpoint.At("43", 0)), ErrLeaseLost)
		time.Sleep(time.Minute)
		require.Empty(t, r.Held(), "StopTaking")
		require.Equal(t, []string{"+shard-0"}, ev.get())
	})
}

func TestReleaseRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		r.StopTaking()
		_, err := s.Take(context.Background(), stored(t, s, "shard-0"), "thief")
		require.NoError(t, err)
		require.ErrorIs(t, r.Release(context.Background(), "shard-0"), ErrLeaseLost)
		require.Empty(t, r.Held())
		require.Equal(t, "thief", stored(t, s, "shard-0").Owner)
		time.Sleep(100 * time.Millisecond) // let the callbacks run
		require.Equal(t, []string{"+shard-0"}, ev.get(), "no OnLost after Release")
	})
}

// Run's final release writes the deferred checkpoints first.
func TestRunFinalReleaseWritesDeferred(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		require.NoError(t, r.Defer("shard-0", checkpoint.At("77", 0)))
		require.NoError(t, r.stop())
		got := stored(t, s, "shard-0")
		require.Equal(t, checkpoint.At("77", 0), got.Checkpoint)
		require.Empty(t, got.Owner)
		require.Equal(t, []string{"Take", "UpdateCheckpoint", "Release"}, s.callsFor("shard-0"))
	})
}

// Checkpoints and renewals of one lease never overlap: the store sees at
// most one write of a lease at a time, and every write is accepted.
func TestWritesOfOneLeaseAreSerialized(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		mu := make(chan struct{}, 1)
		s.setBefore(func(_ context.Context, op string, _ Lease) error {
			if op == "List" {
				return nil
			}
			select {
			case mu <- struct{}{}:
			default:
				t.Errorf("two writes of one lease at once (%s)", op)
				return nil
			}
			time.Sleep(500 * time.Millisecond)
			<-mu
			return nil
		})
		for i := range 40 {
			go func() {
				err := r.Checkpoint(context.Background(), "shard-0", checkpoint.At("1000", uint64(i)))
				if err != nil {
					assert.ErrorIs(t, err, ErrCheckpointBehind)
				}
			}()
			time.Sleep(300 * time.Millisecond)
		}
		time.Sleep(time.Minute)
		require.Len(t, r.Held(), 1)
		require.Equal(t, []string{"+shard-0"}, ev.get())
	})
}

// Run returns holding nothing even if a release cannot get its lease in
// time: here a checkpoint write of the lease hangs past RenewInterval.
func TestRunForgetsLeasesItCannotRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		hang := make(chan struct{})
		s.setBefore(func(_ context.Context, op string, _ Lease) error {
			if op == "UpdateCheckpoint" {
				<-hang // ignores its context
			}
			return nil
		})
		done := make(chan error, 1)
		go func() { done <- r.Checkpoint(context.Background(), "shard-0", checkpoint.At("1", 0)) }()
		time.Sleep(time.Second)
		require.NoError(t, r.stop())
		require.Empty(t, r.Held())
		close(hang)
		require.ErrorIs(t, <-done, ErrLeaseLost, "the write returned after the lease was forgotten")
		require.Equal(t, []string{"+shard-0"}, ev.get(), "no OnLost")
	})
}

// A Release whose context ends while it waits for a write in flight has not
// started: the lease stays held, and Run's final release writes its deferred
// checkpoint and releases it.
func TestReleaseThatCannotStartKeepsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		r.StopTaking()
		slow := make(chan struct{})
		s.setBefore(func(_ context.Context, op string, _ Lease) error {
			if op == "UpdateCheckpoint" {
				<-slow
			}
			return nil
		})
		done := make(chan error, 1)
		go func() { done <- r.Checkpoint(context.Background(), "shard-0", checkpoint.At("5", 0)) }()
		synctest.Wait() // the checkpoint write holds the lease's lock
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, r.Release(ctx, "shard-0"), context.DeadlineExceeded)
		require.Len(t, r.Held(), 1, "a release that could not start leaves the lease held")
		require.NoError(t, r.Defer("shard-0", checkpoint.At("9", 0)))
		close(slow)
		require.NoError(t, <-done)
		s.setBefore(nil)
		require.NoError(t, r.stop())
		got := stored(t, s, "shard-0")
		require.Empty(t, got.Owner, "released by Run's final release")
		require.Equal(t, checkpoint.At("9", 0), got.Checkpoint)
		require.Equal(t, []string{"+shard-0"}, ev.get(), "no OnLost")
	})
}
