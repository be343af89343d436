package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/gokcl/kcl/checkpoint"
)

// heldLease is a lease this worker holds (or held until a moment ago).
//
// Writes to one lease are serialized by its lock, so the Manager never races
// itself on the counter: the renewer, Checkpoint, FinishShard and Release
// each hold it for one store write. The fields below it are guarded by
// Manager.mu, which is never held during I/O, so Held and Lease never wait
// for a store call. Lock order: heldLease.lock, then Manager.mu.
type heldLease struct {
	key  string
	lock chan struct{} // capacity 1: a token in it means locked

	// Guarded by Manager.mu.
	lease       Lease                // as last written by this worker
	lastRenewed time.Time            // read before the write that last succeeded
	deferred    *checkpoint.Position // to be written with the next renewal
	gone        bool                 // dropped or released: no longer held
	writing     bool                 // a store write is in flight
}

func newHeldLease(l Lease, renewed time.Time) *heldLease {
	return &heldLease{key: l.Key, lock: make(chan struct{}, 1), lease: l, lastRenewed: renewed}
}

// acquire takes h's lock, or gives up when ctx is done. The lock is held
// for at most one store call, which is bounded by RenewInterval.
func (h *heldLease) acquire(ctx context.Context) error {
	select {
	case h.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("lease %s: waiting for the previous write: %w", h.key, ctx.Err())
	}
}

// tryAcquire takes h's lock if it is free.
func (h *heldLease) tryAcquire() bool {
	select {
	case h.lock <- struct{}{}:
		return true
	default:
		return false
	}
}

func (h *heldLease) unlock() { <-h.lock }

// lostError is the error for a lease this worker does not hold.
func (m *Manager) lostError(key, why string) error {
	return fmt.Errorf("lease %s: %s (worker %s): %w", key, why, m.cfg.WorkerID, ErrLeaseLost)
}

// lookup returns the entry of a lease held now.
func (m *Manager) lookup(key string) (*heldLease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.held[key]
	if h == nil || h.gone {
		return nil, m.lostError(key, "not held")
	}
	return h, nil
}

// current returns a copy of h's lease and its deferred checkpoint, or
// ErrLeaseLost if h is no longer held.
func (m *Manager) current(h *heldLease) (Lease, *checkpoint.Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h.gone {
		return Lease{}, nil, m.lostError(h.key, "not held")
	}
	return h.lease.Clone(), h.deferred, nil
}

// storeWrite is one of Store's conditional writes.
type storeWrite func(ctx context.Context, l Lease) (Lease, error)

// write runs one conditional store write of req for h, whose lock the caller
// holds, bounded by RenewInterval. On success it records the result and the
// time read before the write as the last renewal; a refusal (ErrLeaseLost)
// drops the lease and reports it to OnLost. If the lease was dropped while
// the write was in flight, the result is discarded and write returns
// ErrLeaseLost: the consumer was already told.
//
// A refusal that shows the lease still held (see adoptable) is not a loss:
// an earlier write of ours that landed unseen, or another worker asking for
// the lease (a hand-off). write then repeats req on the lease as found, and
// reports a hand-off to OnHandOff once the repeat succeeds; if the repeat
// fails without a refusal, it records the lease as found (the next write
// builds on it) and reports the hand-off all the same.
func (m *Manager) write(ctx context.Context, h *heldLease, op string, req Lease, do storeWrite) (Lease, error) {
	return m.writeAs(ctx, h, op, req, do, false)
}

// writeAs is write; with releasing set (Release), a refusal leaves the
// entry to the caller, which forgets it without OnLost, and a hand-off found
// on the way is not reported: the release completes it.
func (m *Manager) writeAs(ctx context.Context, h *heldLease, op string, req Lease, do storeWrite, releasing bool) (Lease, error) {
	m.mu.Lock()
	if h.gone {
		m.mu.Unlock()
		return Lease{}, m.lostError(h.key, "not held")
	}
	h.writing = true
	m.mu.Unlock()

	started := time.Now()
	res, err := m.call(ctx, h, req, do)
	how, found := refused, Lease{}
	if err != nil {
		found, how = m.inspectRefusal(ctx, h, err, req)
		if how != refused {
			req.Owner, req.CheckpointOwner, req.Counter = found.Owner, found.CheckpointOwner, found.Counter
			if found.Checkpoint.Compare(req.Checkpoint) > 0 {
				// The write that landed was a checkpoint beyond this one (the
				// caller checked req against the copy from before it): write
				// that one again, never this one over it.
				req.Checkpoint, req.PendingCheckpoint = found.Checkpoint, found.PendingCheckpoint
			}
			started = time.Now()
			res, err = m.call(ctx, h, req, do)
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	h.writing = false
	switch {
	case h.gone:
		m.removeLocked(h)
		return Lease{}, m.lostError(h.key, op+" finished after the lease was dropped")
	case err == nil:
		h.lease, h.lastRenewed = res, started
		if how == handOffAsk && !releasing {
			m.askedLocked(h)
		}
		return res.Clone(), nil
	case isLost(err):
		if !releasing {
			m.dropLocked(h, ReasonRefused, op+" refused", err)
		}
	case how != refused:
		// The repeat failed, and may have landed unseen. What the refusal
		// showed is still so: record it, so that the next write builds on
		// it and recognises the repeat as its own if it landed (rather than
		// taking the lease one write further for a loss). A hand-off asked
		// for is reported now: the next write will not find it again.
		h.lease = found.Clone()
		if how == handOffAsk && !releasing {
			m.askedLocked(h)
		}
	}
	return Lease{}, fmt.Errorf("lease %s: %s: %w", h.key, op, err)
}

// inspectRefusal looks at what refused req, if err is a refusal, and says
// whether the lease is still held (see adoptable); it logs what it finds.
func (m *Manager) inspectRefusal(ctx context.Context, h *heldLease, err error, req Lease) (Lease, adoption) {
	var r *RefusedError
	if !errors.As(err, &r) {
		return Lease{}, refused
	}
	rctx, cancel := context.WithTimeout(ctx, min(m.cfg.RenewInterval, m.untilDrop(h)))
	found, ok := m.refusalFound(rctx, err, h.key)
	cancel()
	if !ok {
		return Lease{}, refused
	}
	how := m.adoptable(found, req)
	if how == ownWrite {
		// An earlier write of ours landed although its answer was lost (a
		// timeout, a cancelled context, a retry by the SDK): the lease is
		// still ours, one write further. Write again on top of it. The
		// renewal time stays that of the last write known to have landed
		// until this one succeeds.
		m.log.Info("recovered from a write that succeeded unseen", slog.String("shard", h.key), slog.Int64("counter", found.Counter))
	}
	return found, how
}

// call makes one store write, bounded by RenewInterval and by h's drop
// deadline: a write still running then is of no use.
func (m *Manager) call(ctx context.Context, h *heldLease, req Lease, do storeWrite) (Lease, error) {
	wctx, cancel := context.WithTimeout(ctx, min(m.cfg.RenewInterval, m.untilDrop(h)))
	defer cancel()
	return do(wctx, req)
}

// untilDrop returns the time left before h is dropped for want of renewal,
// at least a millisecond.
func (m *Manager) untilDrop(h *heldLease) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(m.cfg.dropAfter()-time.Since(h.lastRenewed), time.Millisecond)
}

// isLost reports whether err is a refusal. The store returns ErrLeaseLost
// for renewals and checkpoints; nothing else means the lease is gone.
func isLost(err error) bool { return errors.Is(err, ErrLeaseLost) }

// dropLocked stops holding h because it was lost, and reports it to OnLost
// and the hooks; err is the refused write's, if any.
func (m *Manager) dropLocked(h *heldLease, reason LeaseReason, why string, err error) {
	if h.gone {
		return
	}
	h.gone = true
	m.removeLocked(h)
	m.log.Info("lease lost", slog.String("shard", h.key), slog.Int64("counter", h.lease.Counter), slog.String("reason", why))
	m.emitLocked(event{kind: eventLost, lease: h.lease.Clone(), hook: m.leaseEvent(LeaseLost, reason, h.lease, err)})
}

// forgetLocked stops holding h without telling OnLost: it was released.
func (m *Manager) forgetLocked(h *heldLease) {
	h.gone = true
	m.removeLocked(h)
}

// removeLocked deletes a gone entry from the map unless a write is still in
// flight for it: until that write returns, the taker must not take the
// lease again, or two writes of this worker would race on its counter.
func (m *Manager) removeLocked(h *heldLease) {
	if h.gone && !h.writing && m.held[h.key] == h {
		delete(m.held, h.key)
	}
}

// addLocked starts holding l, taken by a write that started at renewed;
// took is the event for the hooks.
func (m *Manager) addLocked(l Lease, renewed time.Time, took LeaseEvent) {
	m.held[l.Key] = newHeldLease(l, renewed)
	m.emitLocked(event{kind: eventAcquired, lease: l.Clone(), hook: took})
}

// clearDeferred forgets the deferred checkpoint d if it is still the one
// pending: a checkpoint written since superseded it.
func (m *Manager) clearDeferred(h *heldLease, d *checkpoint.Position) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h.deferred == d {
		h.deferred = nil
	}
}

// entries returns the leases held now.
func (m *Manager) entries() []*heldLease {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*heldLease, 0, len(m.held))
	for _, h := range m.held {
		if !h.gone {
			out = append(out, h)
		}
	}
	// Least recently renewed first: the closest to their drop deadline.
	slices.SortFunc(out, func(a, b *heldLease) int { return a.lastRenewed.Compare(b.lastRenewed) })
	return out
}

// Held returns copies of the leases this worker holds now, sorted by key.
// It does no I/O and never waits for a store call.
func (m *Manager) Held() []Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Lease, 0, len(m.held))
	for _, h := range m.held {
		if !h.gone {
			out = append(out, h.lease.Clone())
		}
	}
	sortByKey(out)
	return out
}

// Lease returns a copy of the held lease with the given key, as last written
// by this worker. It does no I/O.
func (m *Manager) Lease(key string) (Lease, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.held[key]
	if h == nil || h.gone {
		return Lease{}, false
	}
	return h.lease.Clone(), true
}

// Usable reports whether this worker holds the lease with the given key and
// may still act on it: its last successful write (take, renewal or
// checkpoint) started less than 90% of FailoverTime ago, the deadline at
// which the renewer drops a lease it could not renew. It does no I/O.
//
// The renewer's drop timer fires late when the process was paused (SIGSTOP,
// a long garbage collection, a paused VM): on resuming, a goroutine that was
// about to use the lease may run before the timer's. Callers about to act on
// the lease (deliver records, end a shard) ask Usable first; it judges from
// the clock, not from whether the timer has fired.
//
// It reads both of Go's clocks. The monotonic one (CLOCK_MONOTONIC on
// Linux) advances while the process is stopped or starved, as other
// workers' clocks do, but not while the machine is suspended; the wall
// clock advances across a suspend but may be stepped. The lease is usable
// only while both say the deadline is ahead: a stepped wall clock can only
// make Usable report false early, until the next renewal, never true late.
func (m *Manager) Usable(key string) bool {
	m.mu.Lock()
	h := m.held[key]
	if h == nil || h.gone {
		m.mu.Unlock()
		return false
	}
	deadline := h.lastRenewed.Add(m.cfg.dropAfter())
	m.mu.Unlock()
	now := time.Now()
	return now.Before(deadline) && now.Round(0).Before(deadline.Round(0))
}

func sortByKey(ls []Lease) {
	slices.SortFunc(ls, func(a, b Lease) int { return strings.Compare(a.Key, b.Key) })
}
