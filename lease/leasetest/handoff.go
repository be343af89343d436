package leasetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

// The hand-off and worker-row tests: run for stores implementing
// lease.HandOffStore and lease.WorkerStore.

func handOffTests() []struct {
	name string
	run  func(*testing.T, lease.HandOffStore)
} {
	return []struct {
		name string
		run  func(*testing.T, lease.HandOffStore)
	}{
		{"HandOff", testHandOff},
		{"HandOffRefused", testHandOffRefused},
		{"WritesDuringHandOff", testWritesDuringHandOff},
		{"ReleaseCompletesHandOff", testReleaseCompletesHandOff},
		{"TakeEndsHandOff", testTakeEndsHandOff},
		{"Get", testGet},
		{"ConcurrentHandOff", testConcurrentHandOff},
		{"HandOffRacesRenewal", testHandOffRacesRenewal},
		{"ResetEndsHandOff", testResetEndsHandOff},
	}
}

func workerTests() []struct {
	name string
	run  func(*testing.T, lease.WorkerStore)
} {
	return []struct {
		name string
		run  func(*testing.T, lease.WorkerStore)
	}{
		{"Heartbeat", testHeartbeat},
		{"DeleteWorker", testDeleteWorker},
	}
}

// runOptionalSuites runs the hand-off and worker-row tests if the stores
// newStore makes implement those interfaces.
func runOptionalSuites(t *testing.T, newStore NewStore) {
	for _, tc := range handOffTests() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, ok := newStore(t).(lease.HandOffStore)
			if !ok {
				t.Skip("the store does not implement lease.HandOffStore")
			}
			tc.run(t, s)
		})
	}
	for _, tc := range workerTests() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, ok := newStore(t).(lease.WorkerStore)
			if !ok {
				t.Skip("the store does not implement lease.WorkerStore")
			}
			tc.run(t, s)
		})
	}
}

// handedOff is leaseOwned being handed from worker-1 to worker-2.
func handedOff() lease.Lease {
	l := leaseOwned.Clone()
	l.Owner, l.CheckpointOwner = "worker-2", "worker-1"
	return l
}

// testHandOff: a hand-off names the new owner in Owner and the holder in
// CheckpointOwner and changes nothing else, the counter included.
func testHandOff(t *testing.T, s lease.HandOffStore) {
	create(t, s, leaseOwned)
	got, err := s.HandOff(testContext(t), leaseOwned, "worker-2")
	if err != nil {
		t.Fatalf("HandOff: %v", err)
	}
	want := handedOff()
	requireLease(t, want, got, "the returned lease")
	requireStored(t, s, want, "the stored lease")
	if got.Holder() != "worker-1" || !got.HandOffPending() {
		t.Fatalf("Holder %q, HandOffPending %v: want worker-1 and true", got.Holder(), got.HandOffPending())
	}
}

// testHandOffRefused: a hand-off needs the owner as read, no hand-off
// pending and an unfinished shard; a refused one changes nothing.
func testHandOffRefused(t *testing.T, s lease.HandOffStore) {
	ctx := testContext(t)
	create(t, s, leaseOwned)
	create(t, s, leaseEnded)
	create(t, s, leaseNew)
	pending := handedOff()
	pending.Key = "shardId-000000000009"
	create(t, s, pending)

	cases := []struct {
		name string
		l    lease.Lease
		to   string
	}{
		{"OtherOwner", func() lease.Lease { l := leaseOwned.Clone(); l.Owner = "worker-9"; return l }(), "worker-2"},
		{"ToItsOwner", leaseOwned, leaseOwned.Owner},
		{"ToNobody", leaseOwned, ""},
		{"Finished", leaseEnded, "worker-3"},
		{"Unowned", leaseNew, "worker-3"},
		{"AlreadyPending", func() lease.Lease { l := pending.Clone(); l.Owner, l.CheckpointOwner = "worker-1", ""; return l }(), "worker-3"},
		{"PendingAsRead", pending, "worker-3"},
		{"Missing", func() lease.Lease { l := leaseOwned.Clone(); l.Key = "shardId-never-created"; return l }(), "worker-2"},
	}
	for _, tc := range cases {
		_, err := s.HandOff(ctx, tc.l, tc.to)
		errorIs(t, err, lease.ErrConflict, tc.name)
	}
	requireStored(t, s, leaseOwned, "owned lease unchanged")
	requireStored(t, s, leaseEnded, "finished lease unchanged")
	requireStored(t, s, leaseNew, "unowned lease unchanged")
	requireStored(t, s, pending, "pending hand-off unchanged")
	if _, err := s.Get(ctx, "shardId-never-created"); !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Fatalf("a refused hand-off created a lease: Get returned %v", err)
	}
}

// testWritesDuringHandOff: once a hand-off is pending, writes made with the
// old view of the lease are refused, and writes with the new one (owner and
// checkpoint owner) succeed and keep both.
func testWritesDuringHandOff(t *testing.T, s lease.HandOffStore) {
	ctx := testContext(t)
	create(t, s, leaseOwned)
	h, err := s.HandOff(ctx, leaseOwned, "worker-2")
	if err != nil {
		t.Fatal(err)
	}
	old := leaseOwned.Clone()
	_, err = s.Renew(ctx, old)
	errorIs(t, err, lease.ErrLeaseLost, "renewal with the old view")
	_, err = s.UpdateCheckpoint(ctx, old)
	errorIs(t, err, lease.ErrLeaseLost, "checkpoint with the old view")
	_, err = s.Release(ctx, old)
	errorIs(t, err, lease.ErrLeaseLost, "release with the old view")
	_, err = s.Take(ctx, old, "worker-3")
	errorIs(t, err, lease.ErrConflict, "take with the old view")
	var refused *lease.RefusedError
	if _, err := s.Renew(ctx, old); errors.As(err, &refused) && refused.Found != nil {
		requireLease(t, h, *refused.Found, "the lease a refusal found")
	}
	requireStored(t, s, h, "refused writes change nothing")

	renewed, err := s.Renew(ctx, h)
	if err != nil {
		t.Fatalf("renewal by the checkpoint owner: %v", err)
	}
	want := h.Clone()
	want.Counter++
	requireLease(t, want, renewed, "renewed during the hand-off")

	arg := renewed.Clone()
	arg.Checkpoint = checkpointAhead
	cp, err := s.UpdateCheckpoint(ctx, arg)
	if err != nil {
		t.Fatalf("checkpoint by the checkpoint owner: %v", err)
	}
	want.Counter++
	want.Checkpoint, want.OwnerSwitchesSinceCheckpoint = checkpointAhead, 0
	requireLease(t, want, cp, "checkpointed during the hand-off")
	requireStored(t, s, want, "stored after the checkpoint")
}

// testReleaseCompletesHandOff: the holder's release leaves the new owner
// holding the lease alone, one write further, with one more owner switch,
// and the new owner can take it at that counter.
func testReleaseCompletesHandOff(t *testing.T, s lease.HandOffStore) {
	ctx := testContext(t)
	create(t, s, leaseOwned)
	h, err := s.HandOff(ctx, leaseOwned, "worker-2")
	if err != nil {
		t.Fatal(err)
	}
	released, err := s.Release(ctx, h)
	if err != nil {
		t.Fatalf("release during the hand-off: %v", err)
	}
	want := leaseOwned.Clone()
	want.Owner, want.Counter, want.OwnerSwitchesSinceCheckpoint = "worker-2", h.Counter+1, h.OwnerSwitchesSinceCheckpoint+1
	requireLease(t, want, released, "released to the new owner")
	requireStored(t, s, want, "stored after the release")
	_, err = s.Renew(ctx, h)
	errorIs(t, err, lease.ErrLeaseLost, "the old holder's renewal after its release")

	taken, err := s.Take(ctx, released, "worker-2")
	if err != nil {
		t.Fatalf("the new owner's take: %v", err)
	}
	want.Counter++
	requireLease(t, want, taken, "taken by the new owner (no owner switch: it owned it)")
}

// testTakeEndsHandOff: a take during a hand-off (the new owner's after a
// timeout, or anyone's after expiry) removes the checkpoint owner and
// counts a switch of holder.
func testTakeEndsHandOff(t *testing.T, s lease.HandOffStore) {
	ctx := testContext(t)
	for i, taker := range []string{"worker-2", "worker-3"} {
		l := leaseOwned.Clone()
		l.Key = fmt.Sprintf("shardId-00000000001%d", i)
		create(t, s, l)
		h, err := s.HandOff(ctx, l, "worker-2")
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Take(ctx, h, taker)
		if err != nil {
			t.Fatalf("take by %s: %v", taker, err)
		}
		want := l.Clone()
		want.Owner, want.Counter, want.OwnerSwitchesSinceCheckpoint = taker, l.Counter+1, l.OwnerSwitchesSinceCheckpoint+1
		requireLease(t, want, got, "taken by "+taker)
		_, err = s.Renew(ctx, h)
		errorIs(t, err, lease.ErrLeaseLost, "the old holder's renewal after the take")
	}
}

func testGet(t *testing.T, s lease.HandOffStore) {
	ctx := testContext(t)
	for _, l := range append(fixtures(), handedOff()) {
		if l.Key == leaseOwned.Key && l.CheckpointOwner != "" {
			l.Key = "shardId-000000000020"
		}
		create(t, s, l)
		got, err := s.Get(ctx, l.Key)
		if err != nil {
			t.Fatalf("Get %s: %v", l.Key, err)
		}
		requireLease(t, l, got, "Get "+l.Key)
	}
	_, err := s.Get(ctx, "shardId-never-created")
	errorIs(t, err, lease.ErrLeaseNotFound, "Get of a missing lease")
}

// testConcurrentHandOff: workers race to hand the same lease to
// themselves; exactly one wins.
func testConcurrentHandOff(t *testing.T, s lease.HandOffStore) {
	ctx := testContext(t)
	create(t, s, leaseOwned)
	writes := make([]func() (lease.Lease, error), racers)
	for i := range writes {
		writes[i] = func() (lease.Lease, error) { return s.HandOff(ctx, leaseOwned, fmt.Sprintf("worker-%d", 10+i)) }
	}
	leases, errs := race(writes)
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("workers %d and %d both had the lease handed to them", winner, i)
		case err == nil:
			winner = i
		default:
			errorIs(t, err, lease.ErrConflict, fmt.Sprintf("worker %d", i))
		}
	}
	if winner < 0 {
		t.Fatal("no hand-off succeeded")
	}
	requireStored(t, s, leases[winner], "the winner's hand-off is stored")
}

// testHandOffRacesRenewal: a hand-off does not depend on the counter, so it
// succeeds whether the holder's renewal lands first or not; the renewal
// succeeds only if it does.
func testHandOffRacesRenewal(t *testing.T, s lease.HandOffStore) {
	ctx := testContext(t)
	for round := range rounds {
		l := leaseOwned.Clone()
		l.Key = fmt.Sprintf("shardId-00000000003%d", round)
		create(t, s, l)
		_, errs := race([]func() (lease.Lease, error){
			func() (lease.Lease, error) { return s.HandOff(ctx, l, "worker-2") },
			func() (lease.Lease, error) { return s.Renew(ctx, l) },
		})
		if errs[0] != nil {
			t.Fatalf("round %d: hand-off: %v", round, errs[0])
		}
		want := handedOff()
		want.Key = l.Key
		if errs[1] == nil {
			want.Counter++
		} else {
			errorIs(t, errs[1], lease.ErrLeaseLost, "renewal after the hand-off")
		}
		requireStored(t, s, want, fmt.Sprintf("round %d", round))
	}
}

// testHeartbeat: a heartbeat creates the worker's row and then increments
// its counter; ListAll returns the rows with the leases, List only the
// leases.
func testHeartbeat(t *testing.T, s lease.WorkerStore) {
	ctx := testContext(t)
	create(t, s, leaseNew)
	first, err := s.Heartbeat(ctx, "worker-1")
	if err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	second, err := s.Heartbeat(ctx, "worker-1")
	if err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	if second.ID != "worker-1" || second.Counter == first.Counter {
		t.Fatalf("heartbeats returned %+v then %+v: want worker-1 with a changed counter", first, second)
	}
	if _, err := s.Heartbeat(ctx, "worker-0"); err != nil {
		t.Fatal(err)
	}
	leases, workers, err := s.ListAll(ctx)
	if err != nil {
		t.Fatalf("ListAll: %v", err)
	}
	if len(workers) != 2 || workers[0].ID != "worker-0" || workers[1] != second {
		t.Fatalf("ListAll workers %+v: want worker-0 and %+v, sorted", workers, second)
	}
	if len(leases) != 1 || leases[0].Key != leaseNew.Key {
		t.Fatalf("ListAll leases %+v: want only %s", leases, leaseNew.Key)
	}
	only, err := s.List(ctx)
	if err != nil || len(only) != 1 {
		t.Fatalf("List returned %+v, %v: want the lease only", only, err)
	}
	if _, err := s.Heartbeat(ctx, ""); err == nil {
		t.Fatal("a heartbeat with an empty worker id succeeded")
	}
}

// testDeleteWorker: a worker row is deleted only at the counter the caller
// saw; deleting a missing row is not an error.
func testDeleteWorker(t *testing.T, s lease.WorkerStore) {
	ctx := testContext(t)
	w, err := s.Heartbeat(ctx, "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, "worker-1"); err != nil {
		t.Fatal(err)
	}
	errorIs(t, s.DeleteWorker(ctx, w), lease.ErrConflict, "delete at a stale counter")
	_, workers, err := s.ListAll(ctx)
	if err != nil || len(workers) != 1 {
		t.Fatalf("after a refused delete: workers %+v, %v", workers, err)
	}
	if err := s.DeleteWorker(ctx, workers[0]); err != nil {
		t.Fatalf("delete at the current counter: %v", err)
	}
	if _, workers, _ := s.ListAll(ctx); len(workers) != 0 {
		t.Fatalf("after the delete: workers %+v", workers)
	}
	if err := s.DeleteWorker(ctx, workers[0]); err != nil {
		t.Fatalf("deleting a missing row: %v", err)
	}
}

// testResetEndsHandOff: an operator's reset during a hand-off leaves the
// lease unowned, with no checkpoint owner, and both workers' writes fail.
func testResetEndsHandOff(t *testing.T, s lease.HandOffStore) {
	r := resetter(t, s)
	ctx := testContext(t)
	create(t, s, leaseOwned)
	h, err := s.HandOff(ctx, leaseOwned, "worker-2")
	noError(t, err)
	got, err := r.ResetCheckpoint(ctx, h, checkpoint.TrimHorizon)
	noError(t, err)
	want := leaseOwned.Clone()
	want.Owner, want.Counter, want.Checkpoint, want.OwnerSwitchesSinceCheckpoint = "", h.Counter+1, checkpoint.TrimHorizon, 0
	requireLease(t, want, got, "reset during a hand-off")
	requireStored(t, s, want, "stored after the reset")
	_, err = s.Renew(ctx, h)
	errorIs(t, err, lease.ErrLeaseLost, "the holder's renewal after the reset")
}
