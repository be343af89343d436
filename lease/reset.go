package lease

import (
	"context"

	"github.com/gokcl/kcl/checkpoint"
)

// CheckpointResetter is implemented by DynamoStore and MemoryStore: the
// write an operator's tool uses to move a shard's checkpoint on behalf of no
// worker. It is not part of Store, which is what workers need; a Store of
// your own may implement it too (the conformance suite then tests it).
type CheckpointResetter interface {
	// ResetCheckpoint writes pos as the lease's checkpoint and leaves the
	// lease unowned, conditional on its owner and counter being l.Owner and
	// l.Counter; otherwise it returns ErrConflict (a *RefusedError). It
	// increments the counter, resets OwnerSwitchesSinceCheckpoint, removes
	// the pending checkpoint and its state (and the KCL 3.x
	// checkpointOwner), and keeps everything else, children included. It
	// does not compare pos with the stored checkpoint: it may move it
	// backwards, or away from SHARD_END, which is the caller's decision.
	//
	// The owner is removed rather than kept so that a worker still holding
	// the lease cannot survive the reset: its next renewal or checkpoint is
	// refused (another counter, and no longer its owner, so it cannot take
	// the change for an earlier write of its own whose answer was lost), it
	// stops processing the shard, and whoever takes the lease next, itself
	// included, starts from pos. Until that next write, at most one
	// RenewInterval later, the holder may go on processing from where it
	// was, as after a steal.
	ResetCheckpoint(ctx context.Context, l Lease, pos checkpoint.Position) (Lease, error)
}

var (
	_ CheckpointResetter = (*DynamoStore)(nil)
	_ CheckpointResetter = (*MemoryStore)(nil)
)

// validateReset reports whether the reset of l to pos can be written.
func validateReset(l Lease, pos checkpoint.Position) error {
	l.Checkpoint, l.PendingCheckpoint = pos, nil
	return l.Validate()
}

// ResetCheckpoint implements CheckpointResetter with one conditional
// UpdateItem.
func (s *DynamoStore) ResetCheckpoint(ctx context.Context, l Lease, pos checkpoint.Position) (Lease, error) {
	if err := validateReset(l, pos); err != nil {
		return Lease{}, err
	}
	return s.update(ctx, "reset checkpoint of", l, ErrConflict, resetExpr(l, pos))
}

// resetExpr writes the checkpoint and removes the owner, the KCL 3.x
// hand-off and the pending checkpoint.
func resetExpr(l Lease, pos checkpoint.Position) *updateExpr {
	e := newUpdateExpr()
	e.expectHeld(l)
	e.setAttr(attrCheckpoint, attrS(pos.SequenceNumber))
	e.setAttr(attrCheckpointSub, attrU(pos.SubSequenceNumber))
	e.setAttr(attrOwnerSwitches, attrN(0))
	e.removeAttr(attrOwner, attrCheckpointOwner, attrPending, attrPendingSub, attrPendingState)
	return e
}

// ResetCheckpoint implements CheckpointResetter.
func (s *MemoryStore) ResetCheckpoint(ctx context.Context, l Lease, pos checkpoint.Position) (Lease, error) {
	if err := validateReset(l, pos); err != nil {
		return Lease{}, err
	}
	return s.update(ctx, "reset checkpoint of", l, ErrConflict, func(cur *Lease) {
		cur.Owner = ""
		cur.Checkpoint = pos
		cur.PendingCheckpoint, cur.PendingCheckpointState = nil, nil
		cur.OwnerSwitchesSinceCheckpoint = 0
	})
}
