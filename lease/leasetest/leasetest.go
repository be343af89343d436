// Package leasetest is the conformance suite of lease.Store: every store
// (memory, DynamoDB, or one of yours) runs the same black-box tests through
// RunStoreSuite.
package leasetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

// NewStore returns a new, empty store for one subtest; it registers with
// t.Cleanup whatever must be released afterwards.
type NewStore func(t *testing.T) lease.Store

// RunStoreSuite runs the conformance suite: each subtest gets its own store
// from newStore, and subtests run in parallel. The hand-off and worker-row
// tests run when the store implements lease.HandOffStore and
// lease.WorkerStore.
func RunStoreSuite(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		run  func(*testing.T, lease.Store)
	}{
		{"CreateAndList", testCreateAndList},
		{"CreateExisting", testCreateExisting},
		{"CreateInvalid", testCreateInvalid},
		{"UpdateCheckpointInvalid", testUpdateCheckpointInvalid},
		{"ReleaseThenTake", testReleaseThenTake},
		{"CounterSequence", testCounterSequence},
		{"Delete", testDelete},
		{"CloneIndependence", testCloneIndependence},
		{"ConcurrentTake", testConcurrentTake},
		{"ConcurrentRenewAndTake", testConcurrentRenewAndTake},
		{"CanceledContext", testCanceledContext},
		{"ResetInvalid", testResetInvalid},
		{"ResetEndsHolder", testResetEndsHolder},
		{"MultiStreamLeases", testMultiStreamLeases},
		{"CreateInvalidMultiStream", testCreateInvalidMultiStream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
	t.Run("Writes", func(t *testing.T) {
		t.Parallel()
		runWriteCases(t, newStore)
	})
	t.Run("Resets", func(t *testing.T) {
		t.Parallel()
		runResetCases(t, newStore)
	})
	runOptionalSuites(t, newStore)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Leases covering every field: the suite's fixtures.
var (
	// leaseNew is unowned at TRIM_HORIZON, as a shard sync creates it.
	leaseNew = lease.Lease{
		Key:             "shardId-000000000000",
		Checkpoint:      checkpoint.TrimHorizon,
		StartingHashKey: "0",
		EndingHashKey:   "170141183460469231731687303715884105727",
	}
	// leaseOwned is held mid-stream, inside an aggregated record.
	leaseOwned = lease.Lease{
		Key:                          "shardId-000000000001",
		Owner:                        "worker-1",
		Counter:                      42,
		Checkpoint:                   checkpoint.At("49590338271490256608559692538361571095921575989136588898", 3),
		OwnerSwitchesSinceCheckpoint: 2,
		ParentShardIDs:               []string{"shardId-000000000000"},
		StartingHashKey:              "170141183460469231731687303715884105728",
		EndingHashKey:                "340282366920938463463374607431768211455",
	}
	// leaseEnded was read to its end and knows its children.
	leaseEnded = lease.Lease{
		Key:           "shardId-000000000002",
		Owner:         "worker-2",
		Counter:       7,
		Checkpoint:    checkpoint.ShardEnd,
		ChildShardIDs: []string{"shardId-000000000004", "shardId-000000000005"},
	}
	// leaseMerged has two parents.
	leaseMerged = lease.Lease{
		Key:            "shardId-000000000003",
		Checkpoint:     checkpoint.Latest,
		ParentShardIDs: []string{"shardId-000000000001", "shardId-000000000002"},
	}
	// leasePending carries the KCL's two-phase checkpoint.
	leasePending = lease.Lease{
		Key:                    "shardId-000000000006",
		Owner:                  "worker-1",
		Counter:                3,
		Checkpoint:             checkpoint.At("49590338271490256608559692538361571095921575989136588800", 0),
		PendingCheckpoint:      ptr(checkpoint.At("49590338271490256608559692538361571095921575989136588899", 1)),
		PendingCheckpointState: []byte{0, 1, 2, 0xff},
	}
)

func ptr[T any](v T) *T { return &v }

func fixtures() []lease.Lease {
	return []lease.Lease{leaseNew.Clone(), leaseOwned.Clone(), leaseEnded.Clone(), leaseMerged.Clone(), leasePending.Clone()}
}

// normalize makes equal leases compare equal: parents and children are sets
// (sorted here) and empty slices are nil.
func normalize(l lease.Lease) lease.Lease {
	l = l.Clone()
	for _, ids := range []*[]string{&l.ParentShardIDs, &l.ChildShardIDs} {
		if len(*ids) == 0 {
			*ids = nil
		}
		slices.Sort(*ids)
	}
	if len(l.PendingCheckpointState) == 0 {
		l.PendingCheckpointState = nil
	}
	return l
}

func requireLease(t *testing.T, want, got lease.Lease, msgAndArgs ...any) {
	t.Helper()
	equal(t, normalize(want), normalize(got), msgAndArgs...)
}

func list(t *testing.T, s lease.Store) []lease.Lease {
	t.Helper()
	ls, err := s.List(testContext(t))
	noError(t, err)
	return ls
}

// stored returns the lease with the given key as List sees it.
func stored(t *testing.T, s lease.Store, key string) (lease.Lease, bool) {
	t.Helper()
	for _, l := range list(t, s) {
		if l.Key == key {
			return l, true
		}
	}
	return lease.Lease{}, false
}

// requireStored checks that List's view of want.Key is want.
func requireStored(t *testing.T, s lease.Store, want lease.Lease, msgAndArgs ...any) {
	t.Helper()
	got, ok := stored(t, s, want.Key)
	check(t, ok, "lease %s not listed", want.Key)
	requireLease(t, want, got, msgAndArgs...)
}

func create(t *testing.T, s lease.Store, ls ...lease.Lease) {
	t.Helper()
	for _, l := range ls {
		noError(t, s.Create(testContext(t), l), "create %s", l.Key)
	}
}

func testCreateAndList(t *testing.T, s lease.Store) {
	length(t, list(t, s), 0, "a new store is empty")
	want := fixtures()
	// Created out of order: List sorts by key.
	for _, i := range []int{3, 0, 4, 2, 1} {
		create(t, s, want[i])
	}
	got := list(t, s)
	length(t, got, len(want))
	for i := range want {
		requireLease(t, want[i], got[i], "lease %d", i)
	}
}

func testCreateExisting(t *testing.T, s lease.Store) {
	create(t, s, leaseOwned)
	other := leaseNew.Clone()
	other.Key = leaseOwned.Key
	err := s.Create(testContext(t), other)
	errorIs(t, err, lease.ErrLeaseExists)
	requireStored(t, s, leaseOwned, "a refused create changes nothing")
}

func testCreateInvalid(t *testing.T, s lease.Store) {
	cases := []struct {
		name string
		edit func(*lease.Lease)
	}{
		{"EmptyKey", func(l *lease.Lease) { l.Key = "" }},
		{"NegativeCounter", func(l *lease.Lease) { l.Counter = -1 }},
		{"NoCheckpoint", func(l *lease.Lease) { l.Checkpoint = checkpoint.Position{} }},
		{"BadCheckpoint", func(l *lease.Lease) { l.Checkpoint = checkpoint.At("12x", 0) }},
		{"SentinelWithSub", func(l *lease.Lease) {
			l.Checkpoint = checkpoint.Position{SequenceNumber: "LATEST", SubSequenceNumber: 1}
		}},
		{"BadPending", func(l *lease.Lease) { l.PendingCheckpoint = &checkpoint.Position{SequenceNumber: "x"} }},
		{"ThreeParents", func(l *lease.Lease) { l.ParentShardIDs = []string{"a", "b", "c"} }},
		{"RepeatedParent", func(l *lease.Lease) { l.ParentShardIDs = []string{"a", "a"} }},
		{"EmptyChild", func(l *lease.Lease) { l.ChildShardIDs = []string{"a", ""} }},
	}
	for _, tc := range cases {
		l := leaseOwned.Clone()
		tc.edit(&l)
		err := s.Create(testContext(t), l)
		errorIs(t, err, lease.ErrInvalidLease, tc.name)
	}
	length(t, list(t, s), 0, "no invalid lease was written")
}

// writeCase is one conditional write: stored is in the store (unless
// absent), the caller passes stored changed by edit, and the store ends
// holding want(stored) or, when wantErr is set, stored unchanged.
type writeCase struct {
	name    string
	stored  lease.Lease
	absent  bool
	edit    func(*lease.Lease)
	write   func(context.Context, lease.Store, lease.Lease) (lease.Lease, error)
	wantErr error
	want    func(lease.Lease) lease.Lease
}

func renew(ctx context.Context, s lease.Store, l lease.Lease) (lease.Lease, error) {
	return s.Renew(ctx, l)
}

func takeBy(owner string) func(context.Context, lease.Store, lease.Lease) (lease.Lease, error) {
	return func(ctx context.Context, s lease.Store, l lease.Lease) (lease.Lease, error) {
		return s.Take(ctx, l, owner)
	}
}

func release(ctx context.Context, s lease.Store, l lease.Lease) (lease.Lease, error) {
	return s.Release(ctx, l)
}

func updateCheckpoint(ctx context.Context, s lease.Store, l lease.Lease) (lease.Lease, error) {
	return s.UpdateCheckpoint(ctx, l)
}

// changed returns want functions: the stored lease with a counter one
// higher and the given changes.
func changed(edit func(*lease.Lease)) func(lease.Lease) lease.Lease {
	return func(l lease.Lease) lease.Lease {
		l = l.Clone()
		l.Counter++
		if edit != nil {
			edit(&l)
		}
		return l
	}
}

func noEdit(*lease.Lease) {}

func staleCounter(l *lease.Lease) { l.Counter-- }

func otherOwner(l *lease.Lease) { l.Owner = "worker-9" }

func noOwner(l *lease.Lease) { l.Owner = "" }

func writeCases() []writeCase {
	return slices.Concat(renewCases(), takeCases(), releaseCases(), checkpointCases(), multiStreamWriteCases())
}

func renewCases() []writeCase {
	return []writeCase{
		{name: "Renew", stored: leaseOwned, edit: noEdit, write: renew, want: changed(nil)},
		{name: "RenewUnowned", stored: leaseNew, edit: noEdit, write: renew, want: changed(nil)},
		{name: "RenewStaleCounter", stored: leaseOwned, edit: staleCounter, write: renew, wantErr: lease.ErrLeaseLost},
		{name: "RenewNewerCounter", stored: leaseOwned, edit: func(l *lease.Lease) { l.Counter++ }, write: renew, wantErr: lease.ErrLeaseLost},
		{name: "RenewOtherOwner", stored: leaseOwned, edit: otherOwner, write: renew, wantErr: lease.ErrLeaseLost},
		{name: "RenewAsUnowned", stored: leaseOwned, edit: noOwner, write: renew, wantErr: lease.ErrLeaseLost},
		{name: "RenewOwnedByOther", stored: leaseNew, edit: otherOwner, write: renew, wantErr: lease.ErrLeaseLost},
		{name: "RenewMissing", stored: leaseOwned, absent: true, edit: noEdit, write: renew, wantErr: lease.ErrLeaseLost},
	}
}

func takeCases() []writeCase {
	return []writeCase{
		{name: "TakeUnowned", stored: leaseNew, edit: noEdit, write: takeBy("worker-2"),
			want: changed(func(l *lease.Lease) { l.Owner = "worker-2" })},
		{name: "TakeFromOther", stored: leaseOwned, edit: noEdit, write: takeBy("worker-2"),
			want: changed(func(l *lease.Lease) { l.Owner = "worker-2"; l.OwnerSwitchesSinceCheckpoint++ })},
		{name: "TakeOwnAgain", stored: leaseOwned, edit: noEdit, write: takeBy(leaseOwned.Owner), want: changed(nil)},
		{name: "TakeEnded", stored: leaseEnded, edit: noEdit, write: takeBy("worker-3"),
			want: changed(func(l *lease.Lease) { l.Owner = "worker-3"; l.OwnerSwitchesSinceCheckpoint++ })},
		{name: "TakeStaleCounter", stored: leaseOwned, edit: staleCounter, write: takeBy("worker-2"), wantErr: lease.ErrConflict},
		{name: "TakeStaleOwner", stored: leaseOwned, edit: otherOwner, write: takeBy("worker-2"), wantErr: lease.ErrConflict},
		{name: "TakeWhenReleased", stored: leaseNew, edit: otherOwner, write: takeBy("worker-2"), wantErr: lease.ErrConflict},
		{name: "TakeMissing", stored: leaseNew, absent: true, edit: noEdit, write: takeBy("worker-2"), wantErr: lease.ErrConflict},
	}
}

func releaseCases() []writeCase {
	return []writeCase{
		{name: "Release", stored: leaseOwned, edit: noEdit, write: release, want: changed(func(l *lease.Lease) { l.Owner = "" })},
		{name: "ReleaseStaleCounter", stored: leaseOwned, edit: staleCounter, write: release, wantErr: lease.ErrLeaseLost},
		{name: "ReleaseOtherOwner", stored: leaseOwned, edit: otherOwner, write: release, wantErr: lease.ErrLeaseLost},
		{name: "ReleaseMissing", stored: leaseOwned, absent: true, edit: noEdit, write: release, wantErr: lease.ErrLeaseLost},
	}
}

var (
	checkpointAhead = checkpoint.At("49590338271490256608559692538361571095921575989136589000", 5)
	checkpointBack  = checkpoint.At("100", 0)
)

func checkpointCases() []writeCase {
	setCheckpoint := func(p checkpoint.Position) func(*lease.Lease) {
		return func(l *lease.Lease) { l.Checkpoint = p }
	}
	return []writeCase{
		{name: "Checkpoint", stored: leaseOwned, edit: setCheckpoint(checkpointAhead), write: updateCheckpoint,
			want: changed(func(l *lease.Lease) { l.Checkpoint = checkpointAhead; l.OwnerSwitchesSinceCheckpoint = 0 })},
		// The store does not compare checkpoints: the Manager does.
		{name: "CheckpointBackwards", stored: leaseOwned, edit: setCheckpoint(checkpointBack), write: updateCheckpoint,
			want: changed(func(l *lease.Lease) { l.Checkpoint = checkpointBack; l.OwnerSwitchesSinceCheckpoint = 0 })},
		{name: "CheckpointShardEndWithChildren", stored: leaseOwned, write: updateCheckpoint,
			edit: func(l *lease.Lease) {
				l.Checkpoint = checkpoint.ShardEnd
				l.ChildShardIDs = []string{"shardId-000000000009"}
			},
			want: changed(func(l *lease.Lease) {
				l.Checkpoint, l.ChildShardIDs, l.OwnerSwitchesSinceCheckpoint = checkpoint.ShardEnd, []string{"shardId-000000000009"}, 0
			})},
		{name: "CheckpointKeepsChildren", stored: leaseEnded, edit: func(l *lease.Lease) { l.ChildShardIDs = nil }, write: updateCheckpoint,
			want: changed(nil)},
		{name: "CheckpointClearsPending", stored: leasePending, write: updateCheckpoint,
			edit: func(l *lease.Lease) { l.Checkpoint, l.PendingCheckpoint = checkpointAhead, nil },
			want: changed(func(l *lease.Lease) {
				l.Checkpoint, l.PendingCheckpoint, l.PendingCheckpointState = checkpointAhead, nil, nil
			})},
		{name: "CheckpointWritesPending", stored: leaseOwned, write: updateCheckpoint,
			edit: func(l *lease.Lease) { l.PendingCheckpoint = ptr(checkpointAhead) },
			want: changed(func(l *lease.Lease) { l.PendingCheckpoint, l.OwnerSwitchesSinceCheckpoint = ptr(checkpointAhead), 0 })},
		// Only the checkpoint, pending checkpoint and children are written.
		{name: "CheckpointIgnoresOtherFields", stored: leaseOwned, write: updateCheckpoint,
			edit: func(l *lease.Lease) {
				l.ParentShardIDs, l.StartingHashKey, l.EndingHashKey = []string{"shardId-000000000099"}, "1", "2"
			},
			want: changed(func(l *lease.Lease) { l.OwnerSwitchesSinceCheckpoint = 0 })},
		{name: "CheckpointStaleCounter", stored: leaseOwned, edit: staleCounter, write: updateCheckpoint, wantErr: lease.ErrLeaseLost},
		{name: "CheckpointOtherOwner", stored: leaseOwned, edit: otherOwner, write: updateCheckpoint, wantErr: lease.ErrLeaseLost},
		{name: "CheckpointMissing", stored: leaseOwned, absent: true, edit: noEdit, write: updateCheckpoint, wantErr: lease.ErrLeaseLost},
	}
}

func runWriteCases(t *testing.T, newStore NewStore) {
	for _, tc := range writeCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runWriteCase(t, newStore(t), tc)
		})
	}
}

// runWriteCase runs one write case on the empty store s: the write, then
// what it returned and what the store holds.
func runWriteCase(t *testing.T, s lease.Store, tc writeCase) {
	t.Helper()
	if !tc.absent {
		create(t, s, tc.stored)
	}
	arg := tc.stored.Clone()
	tc.edit(&arg)
	got, err := tc.write(testContext(t), s, arg)
	if tc.wantErr != nil {
		errorIs(t, err, tc.wantErr)
		if tc.absent {
			length(t, list(t, s), 0, "a refused write creates nothing")
		} else {
			requireStored(t, s, tc.stored, "a refused write changes nothing")
		}
		return
	}
	noError(t, err)
	requireLease(t, tc.want(tc.stored), got, "the returned lease")
	requireStored(t, s, got, "the returned lease is the stored one")
}

func testUpdateCheckpointInvalid(t *testing.T, s lease.Store) {
	create(t, s, leaseOwned)
	for _, p := range []checkpoint.Position{{}, checkpoint.At("-1", 0), {SequenceNumber: "SHARD_END", SubSequenceNumber: 2}} {
		l := leaseOwned.Clone()
		l.Checkpoint = p
		_, err := s.UpdateCheckpoint(testContext(t), l)
		errorIs(t, err, lease.ErrInvalidLease, "checkpoint %q", p)
	}
	l := leaseOwned.Clone()
	l.ChildShardIDs = []string{"a", "a"}
	_, err := s.UpdateCheckpoint(testContext(t), l)
	errorIs(t, err, lease.ErrInvalidLease, "repeated child")
	requireStored(t, s, leaseOwned, "no invalid checkpoint was written")
}

// testReleaseThenTake: a released lease is unowned and anyone can take it
// at once, with no owner switch counted.
func testReleaseThenTake(t *testing.T, s lease.Store) {
	ctx := testContext(t)
	create(t, s, leaseOwned)
	released, err := s.Release(ctx, leaseOwned)
	noError(t, err)
	equal(t, "", released.Owner, "owner after the release")
	_, err = s.Renew(ctx, leaseOwned.Clone())
	errorIs(t, err, lease.ErrLeaseLost, "the old owner cannot renew")
	taken, err := s.Take(ctx, released, "worker-2")
	noError(t, err)
	want := leaseOwned.Clone()
	want.Owner, want.Counter = "worker-2", leaseOwned.Counter+2
	requireLease(t, want, taken)
	requireStored(t, s, taken)
}

// testCounterSequence: every successful conditional write increments the
// counter by exactly one, whoever makes it.
func testCounterSequence(t *testing.T, s lease.Store) {
	ctx := testContext(t)
	create(t, s, leaseNew)
	l := leaseNew.Clone()
	steps := []func(lease.Lease) (lease.Lease, error){
		func(l lease.Lease) (lease.Lease, error) { return s.Take(ctx, l, "worker-1") },
		func(l lease.Lease) (lease.Lease, error) { return s.Renew(ctx, l) },
		func(l lease.Lease) (lease.Lease, error) {
			l.Checkpoint = checkpointBack
			return s.UpdateCheckpoint(ctx, l)
		},
		func(l lease.Lease) (lease.Lease, error) { return s.Take(ctx, l, "worker-2") },
		func(l lease.Lease) (lease.Lease, error) { return s.Renew(ctx, l) },
		func(l lease.Lease) (lease.Lease, error) { return s.Release(ctx, l) },
		func(l lease.Lease) (lease.Lease, error) { return s.Take(ctx, l, "worker-1") },
	}
	for i, step := range steps {
		next, err := step(l)
		noError(t, err, "step %d", i)
		equal(t, l.Counter+1, next.Counter, "step %d", i)
		requireStored(t, s, next, "step %d", i)
		l = next
	}
	equal(t, int64(1), l.OwnerSwitchesSinceCheckpoint, "one switch (worker-1 to worker-2) since the checkpoint")
}

func testDelete(t *testing.T, s lease.Store) {
	ctx := testContext(t)
	create(t, s, leaseNew, leaseOwned)
	noError(t, s.Delete(ctx, leaseNew.Key))
	got := list(t, s)
	length(t, got, 1)
	requireLease(t, leaseOwned, got[0])
	noError(t, s.Delete(ctx, leaseNew.Key), "deleting a missing lease is not an error")
	noError(t, s.Delete(ctx, "shardId-never-created"))
	noError(t, s.Create(ctx, leaseNew), "a deleted lease can be created again")
	length(t, list(t, s), 2)
}

// testCloneIndependence: no lease a store returns or receives shares memory
// with what it stores.
func testCloneIndependence(t *testing.T, s lease.Store) {
	ctx := testContext(t)
	scribble := func(l *lease.Lease) {
		for _, ids := range [][]string{l.ParentShardIDs, l.ChildShardIDs} {
			for i := range ids {
				ids[i] = "scribbled"
			}
		}
		for i := range l.PendingCheckpointState {
			l.PendingCheckpointState[i] = 0xAA
		}
		if l.PendingCheckpoint != nil {
			l.PendingCheckpoint.SequenceNumber = "1"
		}
	}
	merged, pending := leaseMerged.Clone(), leasePending.Clone()
	create(t, s, merged, pending)
	scribble(&merged)
	scribble(&pending)
	for _, l := range list(t, s) {
		scribble(&l)
	}
	renewed, err := s.Renew(ctx, leasePending)
	noError(t, err)
	scribble(&renewed)
	arg := leaseEnded.Clone()
	create(t, s, arg)
	arg.ChildShardIDs = []string{"shardId-000000000007"}
	_, err = s.UpdateCheckpoint(ctx, arg)
	noError(t, err)
	arg.ChildShardIDs[0] = "scribbled"

	requireStored(t, s, leaseMerged)
	wantPending := leasePending.Clone()
	wantPending.Counter++
	requireStored(t, s, wantPending)
	wantEnded := leaseEnded.Clone()
	wantEnded.Counter++
	wantEnded.ChildShardIDs = []string{"shardId-000000000007"}
	requireStored(t, s, wantEnded)
}
