package lease

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

// faultyRenewStore makes armed Renew calls misbehave once: with landed set,
// the write lands but its answer is lost (the call waits for its context and
// fails); otherwise the call hangs until its context is done, writing
// nothing.
type faultyRenewStore struct {
	*MemoryStore
	armed  atomic.Bool
	landed bool
	faults atomic.Int32
}

func (s *faultyRenewStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	if !s.armed.CompareAndSwap(true, false) {
		return s.MemoryStore.Renew(ctx, l)
	}
	s.faults.Add(1)
	if s.landed {
		if _, err := s.MemoryStore.Renew(ctx, l); err != nil {
			return Lease{}, err
		}
	}
	<-ctx.Done()
	return Lease{}, ctx.Err()
}

func TestRenewalFaultsDoNotLoseTheLease(t *testing.T) {
	for _, landed := range []bool{false, true} {
		name := map[bool]string{false: "hung write", true: "write landed, answer lost"}[landed]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &faultyRenewStore{MemoryStore: NewMemoryStore(), landed: landed}
				createLeases(t, s, 1, "")
				var ev events
				r := runManager(t, s, ev.config(Config{WorkerID: "w"}))
				require.Len(t, r.Held(), 1)
				time.Sleep(5 * time.Second)
				s.armed.Store(true)
				time.Sleep(time.Minute)
				require.EqualValues(t, 1, s.faults.Load())
				require.Equal(t, []string{"+shard-0"}, ev.get(), "acquired once, never lost")
				l, ok := r.Lease("shard-0")
				require.True(t, ok)
				require.Equal(t, stored(t, s, "shard-0"), l)
			})
		})
	}
}

// lostAnswerStore applies armed UpdateCheckpoint calls but loses their
// answer, as a timeout after the write reached DynamoDB does.
type lostAnswerStore struct {
	*MemoryStore
	armed atomic.Bool
}

func (s *lostAnswerStore) UpdateCheckpoint(ctx context.Context, l Lease) (Lease, error) {
	res, err := s.MemoryStore.UpdateCheckpoint(ctx, l)
	if err == nil && s.armed.CompareAndSwap(true, false) {
		return Lease{}, context.DeadlineExceeded
	}
	return res, err
}

// A checkpoint whose answer was lost landed all the same; a later, lower
// checkpoint must not be written over it when the Manager recognises its own
// earlier write (the recovery re-sends the write on top of it).
func TestRecoveredWriteNeverMovesTheCheckpointBack(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		name := map[bool]string{false: "Checkpoint", true: "Defer then renewal"}[deferred]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &lostAnswerStore{MemoryStore: NewMemoryStore()}
				createLeases(t, s, 1, "")
				r := runManager(t, s, Config{WorkerID: "w"})
				require.Len(t, r.Held(), 1)
				ctx := context.Background()

				s.armed.Store(true)
				require.Error(t, r.Checkpoint(ctx, "shard-0", checkpoint.At("200", 0)), "the answer was lost")
				require.Equal(t, checkpoint.At("200", 0), stored(t, s, "shard-0").Checkpoint, "but the write landed")

				if deferred {
					require.NoError(t, r.Defer("shard-0", checkpoint.At("150", 0)))
					time.Sleep(time.Minute) // renewals carry the deferred checkpoint
				} else {
					require.ErrorIs(t, r.Checkpoint(ctx, "shard-0", checkpoint.At("150", 0)), ErrCheckpointBehind)
				}
				require.Equal(t, checkpoint.At("200", 0), stored(t, s, "shard-0").Checkpoint, "never moved back")
				l, ok := r.Lease("shard-0")
				require.True(t, ok, "still held")
				require.Equal(t, stored(t, s, "shard-0"), l)

				require.NoError(t, r.Checkpoint(ctx, "shard-0", checkpoint.At("300", 0)))
				require.Equal(t, checkpoint.At("300", 0), stored(t, s, "shard-0").Checkpoint)
			})
		})
	}
}

// lostRepeatStore loses the answer of a renewal that names a checkpoint
// owner, once armed: the holder's repeat of its renewal on top of a hand-off
// it has just learnt of lands, but its answer does not come back.
type lostRepeatStore struct {
	*MemoryStore
	armed atomic.Bool
	lost  atomic.Int32
}

func (s *lostRepeatStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	res, err := s.MemoryStore.Renew(ctx, l)
	if err == nil && l.CheckpointOwner != "" && s.armed.CompareAndSwap(true, false) {
		s.lost.Add(1)
		return Lease{}, context.DeadlineExceeded
	}
	return res, err
}

// A hand-off the holder learnt of stays a hand-off when the answer of the
// write that adopted it is lost: the holder is told (OnHandOff, never
// OnLost), keeps the lease, and its release hands it to the asker.
func TestHandOffSurvivesALostAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &lostRepeatStore{MemoryStore: NewMemoryStore()}
		createLeases(t, s, 1, "")
		h := newHandOffs()
		var ev events
		cfg := ev.config(Config{WorkerID: "a"})
		cfg.OnHandOff = h.on
		a := runManager(t, s, cfg)
		time.Sleep(time.Second)
		require.Len(t, a.Held(), 1)
		ctx := context.Background()

		s.armed.Store(true)
		_, err := s.HandOff(ctx, stored(t, s, "shard-0"), "b")
		require.NoError(t, err)
		time.Sleep(2 * defaultRenew)
		require.EqualValues(t, 1, s.lost.Load(), "the repeated renewal's answer was lost")
		require.Equal(t, []string{"+shard-0"}, ev.get(), "asked for, never lost")
		require.Len(t, h.ch, 1, "OnHandOff called once")
		l, ok := a.Lease("shard-0")
		require.True(t, ok, "still held")
		require.Equal(t, stored(t, s, "shard-0"), l)

		require.NoError(t, a.Release(ctx, "shard-0"))
		l = stored(t, s, "shard-0")
		require.Equal(t, "b", l.Owner, "handed to the asker")
		require.Empty(t, l.CheckpointOwner)
	})
}
