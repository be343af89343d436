package lease

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

// A reset of a held lease ends the holder's tenure at its next renewal,
// deferred checkpoint and all: the Manager does not mistake the reset for
// its own earlier write, writes nothing more, and takes the lease again at
// the new checkpoint.
func TestResetCheckpointEndsTheHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 1, "")
		ev := &events{}
		r := runManager(t, s, ev.config(Config{WorkerID: "w"}))
		require.Len(t, r.Held(), 1)
		ctx := context.Background()
		require.NoError(t, r.Checkpoint(ctx, "shard-0", checkpoint.At("100", 0)))
		require.NoError(t, r.Defer("shard-0", checkpoint.At("200", 0)))

		_, err := s.ResetCheckpoint(ctx, stored(t, s, "shard-0"), checkpoint.At("50", 0))
		require.NoError(t, err)
		time.Sleep(defaultRenew + time.Second)
		require.Equal(t, []string{"+shard-0", "-shard-0"}, ev.get(), "lost at the next renewal")
		require.ErrorIs(t, r.Checkpoint(ctx, "shard-0", checkpoint.At("300", 0)), ErrLeaseLost)
		require.Equal(t, checkpoint.At("50", 0), stored(t, s, "shard-0").Checkpoint, "the deferred checkpoint was not written")

		time.Sleep(defaultTaker)
		require.Equal(t, []string{"+shard-0", "-shard-0", "+shard-0"}, ev.get(), "taken again")
		l, ok := r.Lease("shard-0")
		require.True(t, ok)
		require.Equal(t, checkpoint.At("50", 0), l.Checkpoint, "resumes from the reset checkpoint")
	})
}
