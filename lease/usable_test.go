package lease

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

// Usable judges from the clock, not from the drop timer: here no renewer
// runs at all, as if the process had been paused, so the lease is still in
// the held set long after its deadline.
func TestUsableJudgesByTheClockNotTheDropTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := NewManager(NewMemoryStore(), Config{WorkerID: "w"})
		require.NoError(t, err)
		m.mu.Lock()
		m.addLocked(Lease{Key: "shard-0", Owner: "w", Checkpoint: checkpoint.TrimHorizon}, time.Now(), LeaseEvent{})
		m.mu.Unlock()
		require.True(t, m.Usable("shard-0"))
		require.False(t, m.Usable("shard-1"), "not held")
		time.Sleep(defaultDrop - time.Millisecond)
		require.True(t, m.Usable("shard-0"), "just before the drop deadline")
		time.Sleep(time.Millisecond)
		require.False(t, m.Usable("shard-0"), "at the drop deadline")
		require.Len(t, m.Held(), 1, "no drop timer fired")
	})
}

func TestUsableWhileRenewedUntilRenewalsHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		s, r := holdOne(t, &ev)
		for range 20 {
			time.Sleep(time.Second)
			require.True(t, r.Usable("shard-0"), "renewed every RenewInterval")
		}
		hang := make(chan struct{})
		s.setBefore(func(ctx context.Context, op string, _ Lease) error {
			if op == "Renew" {
				select {
				case <-hang:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		last := r.lastRenewed("shard-0")
		time.Sleep(time.Until(last.Add(defaultDrop)) - time.Millisecond)
		require.True(t, r.Usable("shard-0"))
		time.Sleep(time.Millisecond)
		require.False(t, r.Usable("shard-0"))
		close(hang)
	})
}
