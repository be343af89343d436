package lease

import (
	"context"
	"log/slog"
	"time"
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
	roundDone := make(chan struct{}, 1)
	rounds := 0 // in flight: 0 or 1
	defer func() {
		for ; rounds > 0; rounds-- {
			<-roundDone
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if rounds == 0 {
				rounds++
				go func() { m.renewRound(ctx); roundDone <- struct{}{} }()
			} else {
				m.log.Warn("renewal round still running after RenewInterval; skipping one")
			}
		case <-roundDone:
			rounds--
		case <-deadline.C:
		case <-m.heldAdded:
		}
		deadline.Reset(m.dropOverdue(time.Now()))
	}
}

// renewRound renews every held lease, at most writeParallelism at a time.
func (m *Manager) renewRound(ctx context.Context) {
	parallel(m.entries(), func(h *heldLease) { m.renew(ctx, h) })
}

// renew renews one lease, carrying its deferred checkpoint if there is one.
// It skips a lease whose lock is taken (the write in flight renews it) and
// one that a checkpoint renewed less than RenewInterval/2 ago. Failures are
// logged; the drop timer handles a lease that stays unrenewed.
func (m *Manager) renew(ctx context.Context, h *heldLease) {
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
	if def == nil && m.renewedWithin(h, m.cfg.RenewInterval/2) {
		return
	}
	op, req, do := "renew", l, storeWrite(m.store.Renew)
	if def != nil {
		op, do = "renew with deferred checkpoint", m.store.UpdateCheckpoint
		req.Checkpoint, req.PendingCheckpoint = *def, nil
	}
	res, err := m.write(ctx, h, op, req, do)
	if err != nil {
		if !isLost(err) && ctx.Err() == nil {
			m.log.Warn("renewal failed; retrying next interval", slog.String("lease", h.key), slog.Int64("counter", l.Counter), slog.Any("error", err))
		}
		return
	}
	if def != nil {
		m.clearDeferred(h, def)
	}
	m.log.Debug(op, slog.String("lease", h.key), slog.Int64("counter", res.Counter))
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
			m.dropLocked(h, "not renewed within "+limit.String())
			continue
		}
		next = min(next, limit-age)
	}
	return next
}
