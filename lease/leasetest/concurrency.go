package leasetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/gokcl/kcl/lease"
)

const (
	racers = 8
	rounds = 3
)

// race runs the writes at once (as near as goroutines allow) and returns
// their results in order.
func race(writes []func() (lease.Lease, error)) ([]lease.Lease, []error) {
	leases, errs := make([]lease.Lease, len(writes)), make([]error, len(writes))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() {
			<-start
			leases[i], errs[i] = w()
		})
	}
	close(start)
	wg.Wait()
	return leases, errs
}

// testConcurrentTake: workers that saw the lease at the same counter race
// to take it; exactly one wins, every other gets ErrConflict.
func testConcurrentTake(t *testing.T, s lease.Store) {
	ctx := testContext(t)
	create(t, s, leaseNew)
	for round := range rounds {
		cur, _ := stored(t, s, leaseNew.Key)
		writes := make([]func() (lease.Lease, error), racers)
		for i := range writes {
			writes[i] = func() (lease.Lease, error) { return s.Take(ctx, cur, fmt.Sprintf("worker-%d", i)) }
		}
		leases, errs := race(writes)
		winner := -1
		for i, err := range errs {
			if err == nil {
				equal(t, -1, winner, "round %d: workers %d and %d both took the lease", round, winner, i)
				winner = i
				continue
			}
			errorIs(t, err, lease.ErrConflict, "round %d, worker %d", round, i)
		}
		check(t, winner != -1, "round %d: nobody took the lease", round)
		got := leases[winner]
		equal(t, fmt.Sprintf("worker-%d", winner), got.Owner)
		equal(t, cur.Counter+1, got.Counter)
		requireStored(t, s, got, "round %d", round)
	}
}

// testConcurrentRenewAndTake: the owner renews while others try to steal
// the lease at the counter they all saw; exactly one write succeeds.
func testConcurrentRenewAndTake(t *testing.T, s lease.Store) {
	ctx := testContext(t)
	create(t, s, leaseOwned)
	for round := range rounds {
		cur, _ := stored(t, s, leaseOwned.Key)
		writes := []func() (lease.Lease, error){func() (lease.Lease, error) { return s.Renew(ctx, cur) }}
		for i := range racers - 1 {
			writes = append(writes, func() (lease.Lease, error) { return s.Take(ctx, cur, fmt.Sprintf("thief-%d", i)) })
		}
		leases, errs := race(writes)
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
				requireStored(t, s, leases[i], "round %d", round)
			case i == 0:
				errorIs(t, err, lease.ErrLeaseLost, "round %d: the owner's renewal", round)
			default:
				errorIs(t, err, lease.ErrConflict, "round %d, thief %d", round, i-1)
			}
		}
		equal(t, 1, won, "round %d: successful writes", round)
	}
}

// testCanceledContext: every method returns the context's error, and
// writes nothing.
func testCanceledContext(t *testing.T, s lease.Store) {
	create(t, s, leaseOwned)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"List":   func() error { _, err := s.List(ctx); return err },
		"Create": func() error { return s.Create(ctx, leaseNew) },
		"Renew":  func() error { _, err := s.Renew(ctx, leaseOwned); return err },
		"Take":   func() error { _, err := s.Take(ctx, leaseOwned, "worker-2"); return err },
		"Release": func() error {
			_, err := s.Release(ctx, leaseOwned)
			return err
		},
		"UpdateCheckpoint": func() error {
			l := leaseOwned.Clone()
			l.Checkpoint = checkpointAhead
			_, err := s.UpdateCheckpoint(ctx, l)
			return err
		},
		"Delete": func() error { return s.Delete(ctx, leaseOwned.Key) },
	}
	for name, call := range calls {
		errorIs(t, call(), context.Canceled, name)
	}
	got := list(t, s)
	length(t, got, 1, "nothing created or deleted")
	requireLease(t, leaseOwned, got[0], "nothing written")
}
