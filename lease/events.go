package lease

// eventKind says which callback an event is for.
type eventKind uint8

const (
	eventAcquired eventKind = iota // OnAcquired
	eventLost                      // OnLost
	eventHandOff                   // OnHandOff
)

// event is a lease acquired, lost or asked for, for the callbacks, and for
// the hooks: hook is the hooks' event, or the zero LeaseEvent (Kind 0) when
// the hooks were told already (a lease handed off reported to OnLost when
// OnHandOff is nil).
type event struct {
	kind  eventKind
	lease Lease
	hook  LeaseEvent
}

// callback returns the callback for ev's kind, or nil if none is set.
func (m *Manager) callback(kind eventKind) func(Lease) {
	switch kind {
	case eventLost:
		return m.cfg.OnLost
	case eventHandOff:
		return m.cfg.OnHandOff
	}
	return m.cfg.OnAcquired
}

// emitLocked queues ev. Events are queued under Manager.mu, at the moment
// the held set changes, so the queue's order is the order the events
// happened; one goroutine (deliverEvents) calls the callbacks in that order.
func (m *Manager) emitLocked(ev event) {
	if m.callback(ev.kind) == nil && (ev.hook.Kind == 0 || len(m.hooks.leaseEvent) == 0) {
		return
	}
	m.events.Push(ev)
}

// deliverEvents calls the callbacks for queued events until stop is closed,
// then delivers what is left and returns.
func (m *Manager) deliverEvents(stop <-chan struct{}) {
	for {
		select {
		case <-m.events.Ready():
			m.deliverQueued()
		case <-stop:
			m.deliverQueued()
			return
		}
	}
}

// deliverQueued calls the hooks and the callbacks for the events queued
// now, outside Manager.mu, so that they may call Held or Lease. The hooks
// hear of an event just before its callback.
func (m *Manager) deliverQueued() {
	for {
		evs := m.events.Drain()
		if len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			if ev.hook.Kind != 0 {
				m.hooks.onLeaseEvent(ev.hook)
			}
			if cb := m.callback(ev.kind); cb != nil {
				cb(ev.lease)
			}
		}
	}
}
