package lease

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Worker rows (WorkerStore): a worker holding no lease is invisible in the
// leases, so several workers starting at once could not plan with each
// other in mind, and a newcomer would have to probe (take one lease, and
// plan in full a cycle later, once the others could see it). With a row per
// running worker, written before its first scan and renewed every
// RenewInterval, every worker counts every live worker from its first scan.
// A row is live while its counter changes, judged as leases are: on the
// reader's clock, FailoverTime at most since it first read that counter.

// announce writes this worker's row before the first scan, within
// RenewInterval; if that fails the worker probes until a heartbeat succeeds.
func (m *Manager) announce(ctx context.Context) { m.heartbeatWithin(ctx) }

// lockPresence takes presenceLock, or gives up when ctx is done.
func (m *Manager) lockPresence(ctx context.Context) bool {
	select {
	case m.presenceLock <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (m *Manager) unlockPresence() { <-m.presenceLock }

// heartbeat writes this worker's row, unless the worker stopped taking.
// presenceLock keeps it from landing after leave deleted the row.
func (m *Manager) heartbeat(ctx context.Context) {
	if m.wstore == nil || !m.lockPresence(ctx) {
		return
	}
	defer m.unlockPresence()
	if m.stopTaking.Load() {
		return
	}
	w, err := m.wstore.Heartbeat(ctx, m.cfg.WorkerID)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("worker row heartbeat failed", slog.Any("error", err))
		}
		return
	}
	m.mu.Lock()
	m.self = w
	if m.announcedAt.IsZero() {
		m.announcedAt = time.Now()
	}
	m.mu.Unlock()
	if !m.announced.Swap(true) {
		m.log.Debug("worker row written", slog.Int64("counter", w.Counter))
	}
}

// settling reports whether this worker, visible through its row, is still
// within one TakerInterval of writing it first: it takes available leases
// but steals none yet (see Visibility in balance.go). Without worker rows
// the probe plays that part.
func (m *Manager) settling() bool {
	if !m.announced.Load() {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Since(m.announcedAt) < m.cfg.TakerInterval
}

// leave deletes this worker's row (at StopTaking, and at the end of Run).
func (m *Manager) leave(ctx context.Context) {
	if m.wstore == nil || !m.lockPresence(ctx) {
		return
	}
	defer m.unlockPresence()
	if !m.announced.Load() {
		return
	}
	m.mu.Lock()
	w := m.self
	m.mu.Unlock()
	err := m.wstore.DeleteWorker(ctx, w)
	if err != nil && !errors.Is(err, ErrConflict) {
		// The end of Run tries again, with a context of its own.
		if ctx.Err() == nil {
			m.log.Warn("deleting this worker's row failed", slog.Any("error", err))
		}
		return
	}
	m.announced.Store(false)
}

// observeWorkers updates the observations of other workers' rows read at
// now, and returns the live workers' IDs and the rows dead for twice
// FailoverTime (to delete). The caller holds scanMu.
func (m *Manager) observeWorkers(workers []Worker, now time.Time) (live []string, dead []Worker) {
	for _, w := range workers {
		if w.ID == m.cfg.WorkerID {
			continue
		}
		o := m.workersSeen[w.ID]
		switch {
		case o == nil:
			o = &observation{counter: w.Counter, firstSeen: now}
			m.workersSeen[w.ID] = o
		case o.counter != w.Counter:
			*o = observation{counter: w.Counter, firstSeen: now}
		}
		o.scan = m.scans
		switch age := now.Sub(o.firstSeen); {
		case age < m.cfg.FailoverTime:
			live = append(live, w.ID)
		case age >= 2*m.cfg.FailoverTime:
			dead = append(dead, w)
		}
	}
	for id, o := range m.workersSeen {
		if o.scan != m.scans {
			delete(m.workersSeen, id)
		}
	}
	return live, dead
}

// deleteDead deletes rows of workers gone for twice FailoverTime (crashed:
// a stopping worker deletes its own), conditionally on the counter seen, so
// that a worker that came back keeps its row. Several workers may try; one
// succeeds.
func (m *Manager) deleteDead(ctx context.Context, dead []Worker) {
	parallel(m, dead, func(w Worker) {
		dctx, cancel := context.WithTimeout(ctx, m.cfg.RenewInterval)
		err := m.wstore.DeleteWorker(dctx, w)
		cancel()
		if err == nil {
			m.log.Info("deleted the row of a worker gone for twice the failover time", slog.String("gone", w.ID))
		}
	})
}
