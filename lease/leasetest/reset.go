package leasetest

import (
	"context"
	"testing"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

// resetter returns s as a lease.CheckpointResetter, skipping the test for a
// store that does not implement it (it is optional; MemoryStore and
// DynamoStore do).
func resetter(t *testing.T, s lease.Store) lease.CheckpointResetter {
	t.Helper()
	r, ok := s.(lease.CheckpointResetter)
	if !ok {
		t.Skipf("%T does not implement lease.CheckpointResetter", s)
	}
	return r
}

func resetTo(pos checkpoint.Position) func(context.Context, lease.Store, lease.Lease) (lease.Lease, error) {
	return func(ctx context.Context, s lease.Store, l lease.Lease) (lease.Lease, error) {
		r, ok := s.(lease.CheckpointResetter)
		if !ok {
			panic("resetTo on a store without ResetCheckpoint")
		}
		return r.ResetCheckpoint(ctx, l, pos)
	}
}

// resetCases: a reset writes the checkpoint, leaves the lease unowned and
// clears the pending checkpoint, whoever held it, but only at the owner and
// counter read.
func resetCases() []writeCase {
	reset := func(pos checkpoint.Position) func(lease.Lease) lease.Lease {
		return changed(func(l *lease.Lease) {
			l.Owner, l.Checkpoint, l.OwnerSwitchesSinceCheckpoint = "", pos, 0
			l.PendingCheckpoint, l.PendingCheckpointState = nil, nil
		})
	}
	return []writeCase{
		{name: "ResetHeld", stored: leaseOwned, edit: noEdit, write: resetTo(checkpoint.TrimHorizon), want: reset(checkpoint.TrimHorizon)},
		{name: "ResetUnowned", stored: leaseNew, edit: noEdit, write: resetTo(checkpointAhead), want: reset(checkpointAhead)},
		{name: "ResetBackwards", stored: leaseOwned, edit: noEdit, write: resetTo(checkpointBack), want: reset(checkpointBack)},
		// Children stay: they are facts about the shard, not its progress.
		{name: "ResetEnded", stored: leaseEnded, edit: noEdit, write: resetTo(checkpoint.Latest), want: reset(checkpoint.Latest)},
		{name: "ResetClearsPending", stored: leasePending, edit: noEdit, write: resetTo(checkpointAhead), want: reset(checkpointAhead)},
		// Only the owner and counter of the argument matter.
		{name: "ResetIgnoresOtherFields", stored: leaseMerged, write: resetTo(checkpointBack),
			edit: func(l *lease.Lease) {
				l.ParentShardIDs, l.Checkpoint = []string{"shardId-000000000099"}, checkpointAhead
			},
			want: reset(checkpointBack)},
		{name: "ResetStaleCounter", stored: leaseOwned, edit: staleCounter, write: resetTo(checkpoint.TrimHorizon), wantErr: lease.ErrConflict},
		{name: "ResetOtherOwner", stored: leaseOwned, edit: otherOwner, write: resetTo(checkpoint.TrimHorizon), wantErr: lease.ErrConflict},
		{name: "ResetAsUnowned", stored: leaseOwned, edit: noOwner, write: resetTo(checkpoint.TrimHorizon), wantErr: lease.ErrConflict},
		{name: "ResetMissing", stored: leaseOwned, absent: true, edit: noEdit, write: resetTo(checkpoint.TrimHorizon), wantErr: lease.ErrConflict},
	}
}

func runResetCases(t *testing.T, newStore NewStore) {
	for _, tc := range resetCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			resetter(t, s)
			runWriteCase(t, s, tc)
		})
	}
}

// testResetInvalid: an invalid position is refused before any write.
func testResetInvalid(t *testing.T, s lease.Store) {
	r := resetter(t, s)
	create(t, s, leaseOwned)
	for _, p := range []checkpoint.Position{{}, checkpoint.At("12x", 0), {SequenceNumber: "LATEST", SubSequenceNumber: 1}} {
		_, err := r.ResetCheckpoint(testContext(t), leaseOwned, p)
		errorIs(t, err, lease.ErrInvalidLease, "position %q", p)
	}
	requireStored(t, s, leaseOwned, "nothing was written")
}

// testResetEndsHolder: after a reset the holder's writes are refused, even
// one that expects the counter one higher (what a worker whose own earlier
// write went unanswered would try), because the lease has no owner; the
// next worker takes it at the new checkpoint.
func testResetEndsHolder(t *testing.T, s lease.Store) {
	r := resetter(t, s)
	ctx := testContext(t)
	create(t, s, leaseOwned)
	reset, err := r.ResetCheckpoint(ctx, leaseOwned, checkpoint.TrimHorizon)
	noError(t, err)
	for _, counter := range []int64{leaseOwned.Counter, leaseOwned.Counter + 1} {
		held := leaseOwned.Clone()
		held.Counter = counter
		_, err = s.Renew(ctx, held)
		errorIs(t, err, lease.ErrLeaseLost, "renewal at counter %d", counter)
		held.Checkpoint = checkpointAhead
		_, err = s.UpdateCheckpoint(ctx, held)
		errorIs(t, err, lease.ErrLeaseLost, "checkpoint at counter %d", counter)
	}
	taken, err := s.Take(ctx, reset, "worker-2")
	noError(t, err)
	equal(t, checkpoint.TrimHorizon, taken.Checkpoint)
	equal(t, int64(0), taken.OwnerSwitchesSinceCheckpoint, "taken from nobody")
}
