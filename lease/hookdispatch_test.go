package lease

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// recordingHook implements every lease hook and records what it received.
type recordingHook struct {
	mu          sync.Mutex
	leaseEvents []LeaseEvent
	renewals    []Renewal
	checkpoints []CheckpointWrite
	cycles      []TakerCycle
}

func (r *recordingHook) OnLeaseEvent(e LeaseEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leaseEvents = append(r.leaseEvents, e)
}

func (r *recordingHook) OnRenewal(e Renewal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.renewals = append(r.renewals, e)
}

func (r *recordingHook) OnCheckpoint(e CheckpointWrite) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkpoints = append(r.checkpoints, e)
}

func (r *recordingHook) OnTakerCycle(e TakerCycle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cycles = append(r.cycles, e)
}

// renewalsOnly implements one hook interface.
type renewalsOnly struct{ n int }

func (r *renewalsOnly) OnRenewal(Renewal) { r.n++ }

func TestHooksSortedByInterface(t *testing.T) {
	all, one := &recordingHook{}, &renewalsOnly{}
	h := newHooks([]Hook{all, one, "not a hook", nil})
	require.Len(t, h.leaseEvent, 1)
	require.Len(t, h.renewal, 2)
	require.Len(t, h.checkpoint, 1)
	require.Len(t, h.takerCycle, 1)

	h.onRenewal(Renewal{Shard: "s"})
	h.onLeaseEvent(LeaseEvent{Shard: "s", Kind: LeaseTaken})
	h.onCheckpoint(CheckpointWrite{Shard: "s"})
	h.onTakerCycle(TakerCycle{Leases: 3})
	require.Equal(t, 1, one.n)
	require.Len(t, all.renewals, 1)
	require.Equal(t, LeaseTaken, all.leaseEvents[0].Kind)
	require.Len(t, all.checkpoints, 1)
	require.Equal(t, 3, all.cycles[0].Leases)
}

func TestNoHooksCostNothing(t *testing.T) {
	var h hooks
	allocs := testing.AllocsPerRun(100, func() {
		h.onRenewal(Renewal{Shard: "s"})
		h.onCheckpoint(CheckpointWrite{Shard: "s"})
	})
	require.Zero(t, allocs)
}

func TestEventNames(t *testing.T) {
	for k, want := range map[LeaseEventKind]string{LeaseTaken: "taken", LeaseStolen: "stolen", LeaseLost: "lost",
		LeaseReleased: "released", LeaseRenewalFailed: "renewal_failed", LeaseHandOffAsked: "hand_off_asked",
		LeaseHandedOff: "handed_off", 0: "unknown"} {
		require.Equal(t, want, k.String())
	}
	for r, want := range map[LeaseReason]string{ReasonNone: "none", ReasonUnowned: "unowned", ReasonExpired: "expired",
		ReasonOrphan: "orphan", ReasonBalance: "balance", ReasonRefused: "refused", ReasonNotRenewed: "not_renewed",
		ReasonRequested: "requested", ReasonShutdown: "shutdown", ReasonError: "error", ReasonHandOff: "hand_off",
		ReasonHandOffTimeout: "hand_off_timeout"} {
		require.Equal(t, want, r.String())
	}
	for k, want := range map[CheckpointKind]string{CheckpointNow: "now", CheckpointShardEnd: "shard_end",
		CheckpointDeferred: "deferred", CheckpointBeforeRelease: "before_release", 0: "unknown"} {
		require.Equal(t, want, k.String())
	}
}
