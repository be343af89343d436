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
	l, def, err := m.current(h)
	if err != nil {
		return
	}
	if def != nil && def.Compare(l.Checkpoint) <= 0 {
		// Set by a Defer that raced a Checkpoint past it: never go backwards.
		m.clearDeferred(h, def)
		def = nil
	}
	if def == nil && !force && m.renewedWithin(h, m.cfg.RenewInterval/2) {
		return
	}
	op, req, do := "renew", l, storeWrite(m.store.Renew)
	if def != nil {
		op, do = "renew with deferred checkpoint", m.store.UpdateCheckpoint
		req.Checkpoint, req.PendingCheckpoint = *def, nil
	}
	res, err := m.renewWrite(ctx, h, op, req, do, def)
	if err != nil && !isLost(err) && ctx.Err() == nil {
		// A passing fault (or a write that gave up): try once more at once
		// rather than a whole RenewInterval later, which can be too late.
		m.log.Warn("renewal failed; retrying", slog.String("shard", h.key), slog.Int64("counter", l.Counter), slog.Any("error", err))
		res, err = m.renewWrite(ctx, h, op, req, do, def)
	}
	if err != nil {
		if !isLost(err) && ctx.Err() == nil {
			m.log.Warn("renewal failed; retrying next interval", slog.String("shard", h.key), slog.Int64("counter", l.Counter), slog.Any("error", err))
		}
		return
	}
	if def != nil {
		m.clearDeferred(h, def)
	}
	m.log.Debug(op, slog.String("shard", h.key), slog.Int64("counter", res.Counter))
}

// renewWrite is one renewal write, carrying the deferred checkpoint def if
// not nil, reported to the hooks unless the Manager is stopping.
func (m *Manager) renewWrite(ctx context.Context, h *heldLease, op string, req Lease, do storeWrite, def *checkpoint.Position) (Lease, error) {
	start := time.Now()
	res, err := m.write(ctx, h, op, req, do)
	if err == nil || ctx.Err() == nil {
		m.noteRenewal(h.key, start, def, err)
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
