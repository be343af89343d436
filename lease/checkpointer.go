package lease

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gokcl/kcl/checkpoint"
)

// Checkpoint records that every record of the shard up to and including pos
// has been processed, writing it now: conditionally on this worker still
// holding the lease (owner, checkpoint owner and counter), within
// RenewInterval. It implements checkpoint.Store.
//
// It returns an error wrapping checkpoint.ErrInvalid for an invalid pos,
// ErrCheckpointBehind for a pos before the lease's checkpoint (including one
// written by an earlier call whose answer was lost: the stored checkpoint
// then stays where that call put it), and
// ErrLeaseLost if the lease is not held or the write was refused (the lease
// is then dropped and OnLost called). A pos equal to the lease's checkpoint
// returns nil without a write, so checkpointing SHARD_END twice is fine. A
// successful write renews the lease, and supersedes a deferred checkpoint.
func (m *Manager) Checkpoint(ctx context.Context, key string, pos checkpoint.Position) error {
	return m.writeCheckpoint(ctx, key, pos, nil)
}

// FinishShard checkpoints SHARD_END and records the shard's children in one
// write, like Checkpoint. It is idempotent: a lease already at SHARD_END
// returns nil without a write.
func (m *Manager) FinishShard(ctx context.Context, key string, children []string) error {
	return m.writeCheckpoint(ctx, key, checkpoint.ShardEnd, children)
}

// Defer records pos to be written with the lease's next renewal, which then
// carries both in one write, or by Release or Run's final release; a later
// Checkpoint or Defer supersedes it. It makes the same checks as Checkpoint
// and does no I/O. A deferred checkpoint is lost if the lease is lost first.
func (m *Manager) Defer(key string, pos checkpoint.Position) error {
	if err := pos.Validate(); err != nil {
		return fmt.Errorf("lease %s: checkpoint: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.held[key]
	if h == nil || h.gone {
		return m.lostError(key, "not held")
	}
	switch c := pos.Compare(h.lease.Checkpoint); {
	case c < 0:
		return behindError(key, pos, h.lease.Checkpoint)
	case c == 0:
		h.deferred = nil
	default:
		h.deferred = &pos
	}
	return nil
}

// Release gives the lease up: it writes the deferred checkpoint, if any,
// then removes the owner (conditionally), so that another worker can take
// the lease on its next scan instead of waiting FailoverTime. If another
// worker asked for the lease (OnHandOff), the release hands it to that
// worker, which takes it within a fraction of RenewInterval and starts at
// the checkpoint written. Once it has started (it first waits for a write of
// the lease in flight), whatever the outcome, this worker no longer holds
// the lease, and OnLost is not called. It returns ErrLeaseLost if the lease
// was not held or a write was refused.
//
// If ctx ends before the release could start, Release returns ctx's error
// and the lease stays held and renewed: Run's final release writes its
// deferred checkpoint and releases it, rather than leaving it to expire.
func (m *Manager) Release(ctx context.Context, key string) error {
	h, err := m.lookup(key)
	if err != nil {
		return err
	}
	_, err = m.release(ctx, h, ReasonRequested)
	return err
}

// writeCheckpoint is Checkpoint, with children for FinishShard.
func (m *Manager) writeCheckpoint(ctx context.Context, key string, pos checkpoint.Position, children []string) error {
	if err := pos.Validate(); err != nil {
		return fmt.Errorf("lease %s: checkpoint: %w", key, err)
	}
	h, err := m.lookup(key)
	if err != nil {
		return err
	}
	if err := h.acquire(ctx); err != nil {
		return err
	}
	defer h.unlock()
	l, def, err := m.current(h)
	if err != nil {
		return err
	}
	switch c := pos.Compare(l.Checkpoint); {
	case c < 0:
		return behindError(key, pos, l.Checkpoint)
	case c == 0:
		m.clearDeferred(h, def)
		return nil
	}
	l.Checkpoint, l.PendingCheckpoint = pos, nil // a checkpoint ends a KCL two-phase one, as in the KCL
	if len(children) > 0 {
		l.ChildShardIDs = children
	}
	res, err := m.checkpointWrite(ctx, h, checkpointKind(pos), "checkpoint "+pos.String(), l, false)
	if err != nil {
		return err
	}
	m.clearDeferred(h, def)
	if res.Checkpoint.Compare(pos) > 0 {
		// An earlier checkpoint whose answer was lost had landed beyond pos.
		return behindError(key, pos, res.Checkpoint)
	}
	m.log.Debug("checkpoint", slog.String("shard", key), slog.String("position", pos.String()))
	return nil
}

// release writes h's deferred checkpoint, then releases it, and forgets it;
// if it cannot even take h's lock before ctx ends, h stays held. why is
// the reason the hooks are told. It returns the lease as held when the
// release started, or the zero Lease if it did not start or h was no
// longer held: then it forgot nothing.
func (m *Manager) release(ctx context.Context, h *heldLease, why LeaseReason) (Lease, error) {
	if err := h.acquire(ctx); err != nil {
		return Lease{}, err
	}
	defer h.unlock()
	if err := ctx.Err(); err != nil {
		// The lock was free but ctx had ended too (select chose at random):
		// a write now would fail, so the release has not started either.
		return Lease{}, fmt.Errorf("lease %s: release: %w", h.key, err)
	}
	held, def, err := m.current(h)
	if err != nil {
		return Lease{}, err
	}
	// Whatever happens below, this worker no longer holds the lease (if the
	// release does not reach the table, the lease expires).
	defer m.forget(h)
	l := held
	if def != nil && def.Compare(l.Checkpoint) > 0 {
		req := l
		req.Checkpoint, req.PendingCheckpoint = *def, nil
		if l, err = m.checkpointWrite(ctx, h, CheckpointBeforeRelease, "checkpoint before release", req, true); err != nil {
			return held, err
		}
	}
	res, err := m.writeAs(ctx, h, "release", l, m.store.Release, true)
	if err != nil {
		return held, err
	}
	if res.Owner != "" {
		m.log.Info("lease handed over", slog.String("shard", h.key), slog.String("to", res.Owner), slog.Int64("counter", res.Counter))
		m.hooks.onLeaseEvent(m.handedOffEvent(res))
		return held, nil
	}
	m.log.Info("lease released", slog.String("shard", h.key), slog.Int64("counter", res.Counter))
	m.hooks.onLeaseEvent(m.leaseEvent(LeaseReleased, why, res, nil))
	return held, nil
}

func (m *Manager) forget(h *heldLease) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked(h)
}

func checkpointKind(pos checkpoint.Position) CheckpointKind {
	if pos.IsShardEnd() {
		return CheckpointShardEnd
	}
	return CheckpointNow
}

func behindError(key string, pos, stored checkpoint.Position) error {
	return fmt.Errorf("lease %s: checkpoint %s is before the stored %s: %w", key, pos, stored, ErrCheckpointBehind)
}
