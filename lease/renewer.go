package lease

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gokcl/kcl/checkpoint"
)

// runRenewer renews the held leases every RenewInterval and drops those not
// renewed in time, until ctx is done; it returns after its renewals have.
//
// The drop check runs on its own timer, armed for the earliest deadline, not
// after renewals return: a store call that hangs (each is bounded by
// RenewInterval, but a store may not honour its context) cannot keep this
// worker using a lease that others may already have taken.
func (m *Manager) runRenewer(ctx context.Context) {
	ticker := time.NewTicker(m.cfg.RenewInterval)
	defer ticker.Stop()
	deadline := time.NewTimer(m.cfg.dropAfter())
	defer deadline.Stop()
	// Rounds may overlap: a round skips a lease whose previous write is
	// still in flight, so one slow or hung write delays only its own lease,
	// and the next round retries it as soon as that write gives up.
	var rounds sync.WaitGroup
	defer rounds.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			rounds.Go(func() { m.renewRound(ctx) })
			rounds.Go(func() { m.heartbeatWithin(ctx) })
		case <-m.leaving:
			rounds.Go(func() { m.leaveWithin(ctx) })
		case <-deadline.C:
		case <-m.heldAdded:
		}
		deadline.Reset(m.dropOverdue(time.Now()))
	}
}

// renewRound renews every held lease, at most writeParallelism at a time.
func (m *Manager) renewRound(ctx context.Context) {
	parallel(m, m.entries(), func(h *heldLease) { m.renew(ctx, h, false) })
}

// heartbeatWithin writes this worker's row within RenewInterval.
func (m *Manager) heartbeatWithin(ctx context.Context) {
	m.withSlot(func() {
		ctx, cancel := context.WithTimeout(ctx, m.cfg.RenewInterval)
		defer cancel()
		m.heartbeat(ctx)
	})
}

// leaveWithin deletes this worker's row within RenewInterval.
func (m *Manager) leaveWithin(ctx context.Context) {
	m.withSlot(func() {
		ctx, cancel := context.WithTimeout(ctx, m.cfg.RenewInterval)
		defer cancel()
		m.leave(ctx)
	})
}

// renew renews one lease, carrying its deferred checkpoint if there is one.
// It skips a lease whose lock is taken (the write in flight renews it) and,
// unless force is set, one that a checkpoint renewed less than
// RenewInterval/2 ago. Failures are logged; the drop timer handles a lease
// that stays unrenewed.
func (m *Manager) renew(ctx context.Context, h *heldLease, force bool) {
	if !h.tryAcquire() {
		return
	}
	defer h.unlock()
	w, ok := m.renewal(h, force)
	if !ok {
		return
	}
	res, err := m.renewWrite(ctx, h, w)
	if err != nil && !isLost(err) && ctx.Err() == nil {
		// A passing fault (or a write that gave up): try once more at once
		// rather than a whole RenewInterval later, which can be too late.
		// The retry is built again: the first attempt may have learnt that
		// the lease is one write further or asked for (see writeAs).
		m.log.Warn("renewal failed; retrying", slog.String("shard", h.key), slog.Int64("counter", w.req.Counter), slog.Any("error", err))
		if w, ok = m.renewal(h, true); !ok {
			return
		}
		res, err = m.renewWrite(ctx, h, w)
	}
	if err != nil {
		if !isLost(err) && ctx.Err() == nil {
			m.log.Warn("renewal failed; retrying next interval", slog.String("shard", h.key), slog.Int64("counter", w.req.Counter), slog.Any("error", err))
		}
		return
	}
	if w.def != nil {
		m.clearDeferred(h, w.def)
	}
	m.log.Debug(w.op, slog.String("shard", h.key), slog.Int64("counter", res.Counter))
}

// renewalWrite is one renewal of a held lease: its request, the store write
// that makes it, and the deferred checkpoint it carries, if any.
type renewalWrite struct {
	op  string
	req Lease
	do  storeWrite
	def *checkpoint.Position
}

// renewal builds the renewal of h from the lease as last known, carrying
// its deferred checkpoint; ok is false when h is no longer held or, unless
// force is set, when a checkpoint renewed it less than RenewInterval/2 ago.
func (m *Manager) renewal(h *heldLease, force bool) (w renewalWrite, ok bool) {
	l, def, err := m.current(h)
	if err != nil {
		return w, false
	}
	if def != nil && def.Compare(l.Checkpoint) <= 0 {
		// Set by a Defer that raced a Checkpoint past it: never go backwards.
		m.clearDeferred(h, def)
		def = nil
	}
	if def == nil && !force && m.renewedWithin(h, m.cfg.RenewInterval/2) {
		return w, false
	}
	w = renewalWrite{op: "renew", req: l, do: m.store.Renew, def: def}
	if def != nil {
		w.op, w.do = "renew with deferred checkpoint", m.store.UpdateCheckpoint
		w.req.Checkpoint, w.req.PendingCheckpoint = *def, nil
	}
	return w, true
}

// renewWrite makes the renewal w, reported to the hooks unless the Manager
// is stopping.
func (m *Manager) renewWrite(ctx context.Context, h *heldLease, w renewalWrite) (Lease, error) {
	start := time.Now()
	res, err := m.write(ctx, h, w.op, w.req, w.do)
	if err == nil || ctx.Err() == nil {
		m.noteRenewal(h.key, start, w.def, err)
	}
	return res, err
}

// renewedWithin reports whether h's last renewal started less than d ago.
func (m *Manager) renewedWithin(h *heldLease, d time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Since(h.lastRenewed) < d
}

// dropOverdue drops every lease whose last renewal started dropAfter or more
// before now, and returns how long until the next such deadline.
func (m *Manager) dropOverdue(now time.Time) time.Duration {
	limit := m.cfg.dropAfter()
	next := limit // nothing held: a lease taken from now on is due later
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.held {
		if h.gone {
			continue
		}
		age := now.Sub(h.lastRenewed)
		if age >= limit {
			m.dropLocked(h, ReasonNotRenewed, "not renewed within "+limit.String(), nil)
			continue
		}
		next = min(next, limit-age)
	}
	return next
}
