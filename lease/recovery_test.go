package lease

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
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
