package lease

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Graceful hand-offs (HandOffStore), from both ends.
//
// The new owner N steals a lease by handing it to itself (HandOff: Owner N,
// CheckpointOwner C, the holder), records it in incoming, and polls it every
// RenewInterval/20 (runHandOffs). The holder C learns of it when its next
// write of the lease is refused (adopt, in write): it adopts the new owner
// fields, repeats the write, and reports the hand-off to OnHandOff; its
// consumer finishes, checkpoints and calls Release, which leaves N holding
// the lease alone. N's poll sees that and takes the lease at the counter
// read (Take): it starts at C's last checkpoint, and nothing was processed
// twice. If C does not release within HandOffTimeout, N takes the lease
// anyway (Take removes CheckpointOwner): a plain steal, after which C's next
// write is refused and C loses the lease (OnLost).
//
// Safety rests on the conditional writes: every write but HandOff expects
// the owner, checkpoint owner and counter as read, and every write changes
// at least one of them, so a write made on a stale view fails. C adopts a
// hand-off only if the counter did not move (a hand-off leaves it alone;
// any other write moves it), so a take by a worker that does not know
// checkpointOwner (a KCL 2.x), which leaves the attribute behind, is never
// mistaken for one.

// incoming is a hand-off to this worker that it waits for.
type incoming struct {
	lease Lease     // as last read
	since time.Time // when this worker asked for it, or first saw it pending
}

// adoption is what a refused write of a held lease turned out to be.
type adoption uint8

const (
	refused    adoption = iota // the lease is not ours any more
	ownWrite                   // our earlier write landed unseen: the lease is one write further
	handOffAsk                 // another worker asked for the lease: we are its checkpoint owner
)

// adoptable says whether found, the lease as the store found it when it
// refused req, is still held by this worker, and why.
func (m *Manager) adoptable(found, req Lease) adoption {
	me := m.cfg.WorkerID
	switch {
	case req.Holder() == "":
		return refused
	case found.Owner == req.Owner && found.CheckpointOwner == req.CheckpointOwner && found.Counter == req.Counter+1:
		// Writes of one lease are serialized, so nothing else of ours
		// can have made that change.
		return ownWrite
	case req.CheckpointOwner == "" && req.Owner == me && found.CheckpointOwner == me &&
		found.Owner != "" && found.Owner != me && found.Counter == req.Counter:
		return handOffAsk
	}
	return refused
}

// refusalFound returns the lease as the store found it when it refused a
// write: from the refusal, or read with Get when the store did not say (as
// dynalite never does).
func (m *Manager) refusalFound(ctx context.Context, err error, key string) (Lease, bool) {
	var r *RefusedError
	if !errors.As(err, &r) {
		return Lease{}, false
	}
	if r.Found != nil {
		return *r.Found, true
	}
	if m.hstore == nil {
		return Lease{}, false
	}
	l, gerr := m.hstore.Get(ctx, key)
	return l, gerr == nil
}

// askedLocked reports that another worker asked for h: to OnHandOff, or, if
// there is none, to the hand-off loop, which releases h at once.
func (m *Manager) askedLocked(h *heldLease) {
	m.log.Info("hand-off asked", slog.String("shard", h.key), slog.String("to", h.lease.Owner), slog.Int64("counter", h.lease.Counter))
	ev := event{kind: eventHandOff, lease: h.lease.Clone(), hook: m.handOffAskedEvent(h.lease)}
	m.emitLocked(ev) // the hooks hear of it even when OnHandOff is nil
	if m.cfg.OnHandOff != nil {
		return
	}
	m.released = append(m.released, h)
	m.wakeHandOffs()
}

func (m *Manager) wakeHandOffs() {
	select {
	case m.handOffs <- struct{}{}:
	default:
	}
}

// handOffOne asks the holder of l for it, conditionally on its owner, and
// waits for it in incoming. ErrConflict means the lease changed owner or is
// already being handed off: skip it.
func (m *Manager) handOffOne(ctx context.Context, l Lease) bool {
	if m.stopTaking.Load() {
		return false
	}
	hctx, cancel := context.WithTimeout(ctx, m.cfg.RenewInterval)
	res, err := m.hstore.HandOff(hctx, l, m.cfg.WorkerID)
	cancel()
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, ErrConflict) || ctx.Err() != nil {
			level = slog.LevelDebug
		}
		m.log.Log(ctx, level, "asking for a lease failed", slog.String("shard", l.Key), slog.String("owner", l.Owner), slog.Any("error", err))
		return false
	}
	m.mu.Lock()
	m.incoming[l.Key] = &incoming{lease: res, since: time.Now()}
	m.mu.Unlock()
	m.wakeHandOffs()
	m.log.Info("asked for a lease", slog.String("shard", l.Key), slog.String("owner", l.Owner))
	return true
}

// runHandOffs follows the hand-offs to this worker, polling them every
// handOffPoll while there are any, and releases leases asked of it when
// OnHandOff is nil, until ctx is done.
func (m *Manager) runHandOffs(ctx context.Context) {
	poll := time.NewTimer(m.cfg.handOffPoll())
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.handOffs:
		case <-poll.C:
		}
		m.releaseAsked(ctx)
		if m.pollIncoming(ctx) {
			poll.Reset(m.cfg.handOffPoll())
		}
	}
}

// releaseAsked releases the leases other workers asked for, when OnHandOff
// is nil, and reports each to OnLost: a user unaware of hand-offs stops
// processing the shard as after a steal.
func (m *Manager) releaseAsked(ctx context.Context) {
	m.mu.Lock()
	hs := m.released
	m.released = nil
	m.mu.Unlock()
	parallel(m, hs, func(h *heldLease) {
		l, err := m.release(ctx, h, ReasonHandOff)
		if err != nil && ctx.Err() == nil {
			m.log.Warn("hand-off release failed", slog.String("shard", h.key), slog.Any("error", err))
		}
		if l.Key == "" {
			// Not released: still held (Run's final release will), or lost
			// already, and OnLost told.
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		m.emitLocked(event{kind: eventLost, lease: l})
	})
}

// pollIncoming reads every lease this worker waits for and acts on what it
// finds; it reports whether some are still waited for.
func (m *Manager) pollIncoming(ctx context.Context) bool {
	m.mu.Lock()
	keys := make([]string, 0, len(m.incoming))
	for k := range m.incoming {
		keys = append(keys, k)
	}
	m.mu.Unlock()
	if len(keys) == 0 || m.hstore == nil {
		return false
	}
	parallel(m, keys, func(key string) { m.pollOne(ctx, key) })
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.incoming) > 0
}

// pollOne reads one lease handed to this worker: it takes it once its holder
// released it, or after HandOffTimeout; it stops waiting if the lease was
// deleted, finished, went to another worker, or its row cannot be read.
func (m *Manager) pollOne(ctx context.Context, key string) {
	gctx, cancel := context.WithTimeout(ctx, m.cfg.RenewInterval)
	l, err := m.hstore.Get(gctx, key)
	cancel()
	m.mu.Lock()
	in := m.incoming[key]
	_, held := m.held[key]
	m.mu.Unlock()
	if in == nil || ctx.Err() != nil {
		return
	}
	switch {
	case errors.Is(err, ErrLeaseNotFound):
		m.stopWaiting(key, "deleted")
	case errors.Is(err, ErrMalformedLease):
		// Polling cannot help until an operator repairs the row; scans skip
		// it meanwhile, and find the hand-off again once it is readable.
		m.stopWaiting(key, "its row cannot be read")
	case err != nil:
		m.log.Debug("reading a lease handed to this worker failed", slog.String("shard", key), slog.Any("error", err))
	case held:
		m.stopWaiting(key, "already held")
	case l.Finished():
		m.stopWaiting(key, "shard finished")
	case l.Owner != m.cfg.WorkerID:
		m.stopWaiting(key, "now owned by "+l.Owner)
	case l.CheckpointOwner == "":
		m.handedOver(ctx, l, in.lease.CheckpointOwner)
	case time.Since(in.since) >= m.cfg.HandOffTimeout:
		switch {
		case m.stopTaking.Load():
			m.stopWaiting(key, "timed out while stopping")
		case m.takeOne(ctx, l, acquireHandOffTimedOut, l.CheckpointOwner):
			m.log.Warn("hand-off timed out; took the lease from its holder", slog.String("shard", key),
				slog.String("holder", l.CheckpointOwner), slog.Duration("waited", time.Since(in.since)))
			m.stopWaiting(key, "")
		}
		// A refused take: the holder wrote since the read; the next poll
		// tries again.
	default:
		m.mu.Lock()
		in.lease = l
		m.mu.Unlock()
	}
}

// handedOver takes l, which its holder from released to this worker; or,
// if this worker stopped taking, releases it, so that others take it at
// their next scan.
func (m *Manager) handedOver(ctx context.Context, l Lease, from string) {
	if m.stopTaking.Load() {
		rctx, cancel := context.WithTimeout(ctx, m.cfg.RenewInterval)
		_, err := m.store.Release(rctx, l)
		cancel()
		if err == nil || errors.Is(err, ErrLeaseLost) {
			m.stopWaiting(l.Key, "handed over while stopping: released")
		}
		return
	}
	if m.takeOne(ctx, l, acquireHandedOver, from) {
		m.log.Info("lease handed over", slog.String("shard", l.Key), slog.String("from", from), slog.String("checkpoint", l.Checkpoint.String()))
		m.stopWaiting(l.Key, "")
	}
	// A refused take: the lease changed since it was read (another worker
	// took it after it expired, say); the next poll sees how.
}

func (m *Manager) stopWaiting(key, why string) {
	m.mu.Lock()
	delete(m.incoming, key)
	m.mu.Unlock()
	if why != "" {
		m.log.Info("stopped waiting for a hand-off", slog.String("shard", key), slog.String("reason", why))
	}
}

// abandonIncoming gives up the hand-offs this worker waits for, at the end
// of Run: a lease its holder already released to this worker is released
// (others take it at their next scan); one still pending will be released
// to this worker by its holder and then expire, as if this worker had died.
func (m *Manager) abandonIncoming(ctx context.Context) {
	m.stopTaking.Store(true)
	m.pollIncoming(ctx)
	m.mu.Lock()
	left := len(m.incoming)
	clear(m.incoming)
	m.mu.Unlock()
	if left > 0 {
		m.log.Info("gave up hand-offs still pending; those leases will expire", slog.Int("leases", left))
	}
}
