package lease

// event is a lease acquired or lost, for OnAcquired or OnLost, and for
// the hooks.
type event struct {
	lost  bool
	lease Lease
	hook  LeaseEvent
}

// emitLocked queues ev. Events are queued under Manager.mu, at the moment
// the held set changes, so the queue's order is the order the events
// happened; one goroutine (deliverEvents) calls the callbacks in that order.
func (m *Manager) emitLocked(ev event) {
	if (ev.lost && m.cfg.OnLost == nil) || (!ev.lost && m.cfg.OnAcquired == nil) {
		if len(m.hooks.leaseEvent) == 0 {
			return
		}
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

// deliverQueued calls the callbacks for the events queued now, outside
// Manager.mu, so that they may call Held or Lease.
func (m *Manager) deliverQueued() {
	for {
		evs := m.events.Drain()
		if len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			m.hooks.onLeaseEvent(ev.hook)
			switch {
			case ev.lost && m.cfg.OnLost != nil:
				m.cfg.OnLost(ev.lease)
			case !ev.lost && m.cfg.OnAcquired != nil:
				m.cfg.OnAcquired(ev.lease)
			}
		}
	}
}
