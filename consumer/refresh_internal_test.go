package consumer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/lease"
)

// slowScans is a refresh that takes a second and counts its calls; a scan
// returns the number of scans started before it ended, as a lease key.
type slowScans struct {
	started atomic.Int32
	fail    atomic.Bool
}

func (s *slowScans) refresh(ctx context.Context) ([]lease.Lease, error) {
	n := s.started.Add(1)
	time.Sleep(time.Second)
	if s.fail.Load() {
		return nil, errors.New("scan failed")
	}
	return []lease.Lease{{Key: string(rune('0' + n))}}, ctx.Err()
}

// TestTableReaderShares: callers that ask together share one scan; a caller
// asking during a scan gets the next one, shared with everyone who asked
// during that scan.
func TestTableReaderShares(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s slowScans
		r := newTableReader(s.refresh)
		start := time.Now()
		read := func(results []string, i int, wg *sync.WaitGroup) {
			wg.Go(func() {
				ls, err := r.read(t.Context())
				require.NoError(t, err)
				results[i] = ls[0].Key
			})
		}
		first := make([]string, 1)
		var wg sync.WaitGroup
		read(first, 0, &wg)
		synctest.Wait() // the first scan is under way
		during := make([]string, 50)
		for i := range during {
			read(during, i, &wg)
		}
		wg.Wait()
		require.Equal(t, "1", first[0])
		for _, got := range during {
			require.Equal(t, "2", got, "asked during scan 1: scan 2, shared")
		}
		require.Equal(t, int32(2), s.started.Load())
		require.Equal(t, 2*time.Second, time.Since(start), "two scans, one after the other")
	})
}

// TestTableReaderCancelledCaller: a caller that gives up returns at once;
// the scan it would have run is run by another caller, and one running it
// finishes it for the others even when its own context ends.
func TestTableReaderCancelledCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s slowScans
		r := newTableReader(s.refresh)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		var runnerErr error
		wg.Go(func() { _, runnerErr = r.read(ctx) }) // runs scan 1
		synctest.Wait()
		waiterCtx, cancelWaiter := context.WithCancel(t.Context())
		var waiterErr error
		wg.Go(func() { _, waiterErr = r.read(waiterCtx) }) // queued for scan 2
		var other []lease.Lease
		wg.Go(func() { other, _ = r.read(t.Context()) }) // queued for scan 2 too
		synctest.Wait()
		cancelWaiter()
		cancel() // scan 1 goes on: detached from its runner's cancellation
		wg.Wait()
		require.NoError(t, runnerErr)
		require.ErrorIs(t, waiterErr, context.Canceled)
		require.Equal(t, "2", other[0].Key, "scan 2 ran for the caller that stayed")

		s.fail.Store(true)
		_, err := r.read(t.Context())
		require.ErrorContains(t, err, "scan failed")
	})
}
