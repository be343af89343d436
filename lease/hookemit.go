package lease

import (
	"context"
	"time"

	"github.com/gokcl/kcl/checkpoint"
)

// The helpers below build the hook events of the Manager's call sites, so
// that each site is one line. They cost a nil-slice check when no hook
// wants the event.

// names returns the stream and the shard a lease key names, for hook
// events: a multi-stream lease's stream name and shard id, or Config.Stream
// and the key (a shard id).
func (m *Manager) names(key string) (stream, shard string) {
	if id, shard, err := ParseLeaseKey(key); err == nil {
		return id.Name, shard
	}
	return m.cfg.Stream, key
}

// leaseEvent is a LeaseEvent of this Manager.
func (m *Manager) leaseEvent(kind LeaseEventKind, reason LeaseReason, l Lease, err error) LeaseEvent {
	stream, shard := m.names(l.Key)
	return LeaseEvent{Stream: stream, Worker: m.cfg.WorkerID, Shard: shard, Kind: kind, Reason: reason,
		Counter: l.Counter, Err: err}
}

// acquisition is how this worker came to take a lease, for its hook event.
type acquisition uint8

const (
	acquireAvailable       acquisition = iota // a lease of the plan nobody held: unowned, expired, or this worker's orphan
	acquireSteal                              // a steal of the plan, on a store without hand-offs
	acquireHandedOver                         // a hand-off to this worker, released to it by its holder
	acquireHandOffTimedOut                    // a hand-off its holder did not complete within HandOffTimeout
)

// tookEvent is the event of a take of l as observed, returning res; from is
// the holder of a lease handed to this worker (l names this worker as owner
// by then).
func (m *Manager) tookEvent(l, res Lease, how acquisition, from string) LeaseEvent {
	kind, reason, prev := LeaseTaken, ReasonExpired, l.Owner
	switch {
	case how == acquireSteal:
		kind, reason = LeaseStolen, ReasonBalance
	case how == acquireHandedOver:
		reason, prev = ReasonHandOff, from
	case how == acquireHandOffTimedOut:
		kind, reason, prev = LeaseStolen, ReasonHandOffTimeout, from
	case l.Owner == "":
		reason = ReasonUnowned
	case l.Owner == m.cfg.WorkerID:
		reason = ReasonOrphan
	}
	ev := m.leaseEvent(kind, reason, res, nil)
	ev.PreviousOwner = prev
	return ev
}

// handOffAskedEvent is the event of another worker asking for l, held by
// this one: l names the asker as its owner.
func (m *Manager) handOffAskedEvent(l Lease) LeaseEvent {
	ev := m.leaseEvent(LeaseHandOffAsked, ReasonHandOff, l, nil)
	ev.NewOwner = l.Owner
	return ev
}

// handedOffEvent is the event of a release that handed the lease to the
// worker that asked for it; res is the lease as released.
func (m *Manager) handedOffEvent(res Lease) LeaseEvent {
	ev := m.leaseEvent(LeaseHandedOff, ReasonHandOff, res, nil)
	ev.NewOwner = res.Owner
	return ev
}

// noteRenewal reports a renewal write that started at start, with the
// checkpoint it carried, if any.
func (m *Manager) noteRenewal(key string, start time.Time, def *checkpoint.Position, err error) {
	if len(m.hooks.renewal) > 0 {
		stream, shard := m.names(key)
		m.hooks.onRenewal(Renewal{Stream: stream, Worker: m.cfg.WorkerID, Shard: shard,
			Latency: time.Since(start), WithCheckpoint: def != nil, Err: err})
	}
	if def != nil {
		m.noteCheckpoint(key, CheckpointDeferred, *def, start, err)
	}
	if err != nil && !isLost(err) && len(m.hooks.leaseEvent) > 0 {
		m.hooks.onLeaseEvent(m.leaseEvent(LeaseRenewalFailed, ReasonError, Lease{Key: key}, err))
	}
}

// checkpointWrite is writeAs for a checkpoint, reported to the hooks.
func (m *Manager) checkpointWrite(ctx context.Context, h *heldLease, kind CheckpointKind, op string, req Lease, releasing bool) (Lease, error) {
	start := time.Now()
	res, err := m.writeAs(ctx, h, op, req, m.store.UpdateCheckpoint, releasing)
	m.noteCheckpoint(h.key, kind, req.Checkpoint, start, err)
	return res, err
}

// noteCheckpoint reports a checkpoint write that started at start.
func (m *Manager) noteCheckpoint(key string, kind CheckpointKind, pos checkpoint.Position, start time.Time, err error) {
	if len(m.hooks.checkpoint) > 0 {
		stream, shard := m.names(key)
		m.hooks.onCheckpoint(CheckpointWrite{Stream: stream, Worker: m.cfg.WorkerID, Shard: shard, Kind: kind,
			Position: pos, Latency: time.Since(start), Err: err})
	}
}

// noteTakerCycle reports a taker cycle that started at start, in which
// this worker took taken leases and asked for asked; v is nil when the scan
// failed.
func (m *Manager) noteTakerCycle(start time.Time, scan time.Duration, v *view, p plan, taken, asked int, err error) {
	if len(m.hooks.takerCycle) == 0 {
		return
	}
	planned := len(p.take) + len(p.steal)
	if p.probe {
		planned = min(planned, 1) // candidates, of which one is taken
	}
	c := TakerCycle{Stream: m.cfg.Stream, Worker: m.cfg.WorkerID, Duration: time.Since(start), Scan: scan, Err: err,
		Planned: planned, Taken: taken, Asked: asked, Probe: p.probe}
	if v != nil {
		c.Leases, c.Unfinished, c.Held, c.Available, c.Workers = v.rows, v.total, v.mine, len(v.available), len(v.loads())
	}
	m.hooks.onTakerCycle(c)
}
