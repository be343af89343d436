package lease

import "github.com/gokcl/kcl/internal/hookset"

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
	return hooks{
		leaseEvent: hookset.Of[HookLeaseEvent](hs),
		renewal:    hookset.Of[HookRenewal](hs),
		checkpoint: hookset.Of[HookCheckpoint](hs),
		takerCycle: hookset.Of[HookTakerCycle](hs),
	}
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
