package lease

// hooks holds Config.Hooks sorted by the interfaces they implement, found
// once by NewManager: an event nobody wants costs a nil-slice check, and no
// type assertion runs per event.
type hooks struct {
	leaseEvent []HookLeaseEvent
	renewal    []HookRenewal
	checkpoint []HookCheckpoint
	takerCycle []HookTakerCycle
}

func newHooks(hs []Hook) hooks {
	var h hooks
	for _, x := range hs {
		if x, ok := x.(HookLeaseEvent); ok {
			h.leaseEvent = append(h.leaseEvent, x)
		}
		if x, ok := x.(HookRenewal); ok {
			h.renewal = append(h.renewal, x)
		}
		if x, ok := x.(HookCheckpoint); ok {
			h.checkpoint = append(h.checkpoint, x)
		}
		if x, ok := x.(HookTakerCycle); ok {
			h.takerCycle = append(h.takerCycle, x)
		}
	}
	return h
}

func (h *hooks) onLeaseEvent(e LeaseEvent) {
	for _, x := range h.leaseEvent {
		x.OnLeaseEvent(e)
	}
}

func (h *hooks) onRenewal(e Renewal) {
	for _, x := range h.renewal {
		x.OnRenewal(e)
	}
}

func (h *hooks) onCheckpoint(e CheckpointWrite) {
	for _, x := range h.checkpoint {
		x.OnCheckpoint(e)
	}
}

func (h *hooks) onTakerCycle(e TakerCycle) {
	for _, x := range h.takerCycle {
		x.OnTakerCycle(e)
	}
}
