package lease

import (
	"time"

	"github.com/gokcl/kcl/checkpoint"
)

// Hook observes a Manager: a metrics or tracing back-end, set in
// Config.Hooks. A Hook is any value; it receives the events of the Hook*
// interfaces below that it implements, found by type assertion once, in
// NewManager, so an event that no hook wants costs nothing. A back-end
// implements only what it needs, and one value may implement the consumer
// package's hooks too (the consumer hands its hooks to its Manager).
//
// Hooks are called synchronously, on the goroutine where the event happens:
// the renewer's writes (up to 16 at once), the taker, the event goroutine,
// and whoever calls Checkpoint, FinishShard or Release (shard workers and
// record processors). So a hook must be safe for concurrent use, and it must
// not block: renewals and checkpoints wait for it, and a slow hook can make
// this worker lose its leases. Record the event (an atomic add, a
// histogram observation) or hand it to a goroutine of your own; never do I/O
// in a hook. A hook must not call the Manager's methods. Events are values
// holding nothing that the Manager reuses; a hook may keep them.
type Hook any

// HookLeaseEvent is implemented by hooks that want to know when this worker
// starts or stops holding a lease, and when a renewal fails.
type HookLeaseEvent interface {
	// OnLeaseEvent is called for each LeaseEvent. Taken, stolen, lost and
	// hand-off-asked events come from the Manager's event goroutine, one at
	// a time, in the order they happened, just before OnAcquired, OnLost or
	// OnHandOff; released, handed-off and renewal-failed events from the
	// goroutine that made the write.
	OnLeaseEvent(LeaseEvent)
}

// HookRenewal is implemented by hooks that want every renewal write: its
// latency and outcome (the Java KCL's RenewLease.Time and .Success).
type HookRenewal interface {
	// OnRenewal is called after each renewal write, from the renewer's
	// goroutine that made it.
	OnRenewal(Renewal)
}

// HookCheckpoint is implemented by hooks that want every checkpoint write:
// its latency and outcome (the Java KCL's UpdateLease.Time and .Success).
type HookCheckpoint interface {
	// OnCheckpoint is called after each checkpoint write, from the goroutine
	// that made it: the caller of Checkpoint or FinishShard, the renewer for
	// a deferred checkpoint carried on a renewal, or the releaser.
	OnCheckpoint(CheckpointWrite)
}

// HookTakerCycle is implemented by hooks that want each taker cycle: the
// table scan, what it saw and what this worker took.
type HookTakerCycle interface {
	// OnTakerCycle is called at the end of each taker cycle, from the taker
	// goroutine. Cycles never overlap.
	OnTakerCycle(TakerCycle)
}

// LeaseEventKind says what happened to a lease.
type LeaseEventKind uint8

// Kinds of LeaseEvent.
const (
	// LeaseTaken: this worker took a lease nobody held (unowned, expired,
	// or its own orphan), or one its holder handed to it (ReasonHandOff).
	LeaseTaken LeaseEventKind = iota + 1
	// LeaseStolen: this worker took a lease from a live worker without its
	// release: a worker holding more than its share, on a store without
	// hand-offs (ReasonBalance), or a holder that did not complete a
	// hand-off within HandOffTimeout (ReasonHandOffTimeout). The holder
	// loses it (LeaseLost).
	LeaseStolen
	// LeaseLost: this worker stopped holding a lease it did not release:
	// another worker took it, or it could not be renewed in time. A
	// hand-off is not a loss (LeaseHandedOff).
	LeaseLost
	// LeaseReleased: this worker gave a lease up (shard ended, shutdown,
	// Release), leaving it unowned.
	LeaseReleased
	// LeaseRenewalFailed: a renewal write failed for a reason other than a
	// refusal; the lease is still held, and the renewer tries again.
	LeaseRenewalFailed
	// LeaseHandOffAsked: another worker asked for a lease this worker holds
	// (a balancing steal on a HandOffStore, or an operator's hand-off);
	// NewOwner names it. The lease stays held until this worker hands it
	// off (LeaseHandedOff); the consumer finishes the batch in flight and
	// checkpoints first. From the event goroutine, just before OnHandOff.
	LeaseHandOffAsked
	// LeaseHandedOff: this worker released a lease to the worker that asked
	// for it (NewOwner), which takes it over from the checkpoint written
	// (LeaseTaken with ReasonHandOff there): the end of a graceful
	// hand-off, with nothing processed twice.
	LeaseHandedOff
)

// String returns the kind's name, as metric labels spell it: "taken",
// "stolen", "lost", "released", "renewal_failed", "hand_off_asked",
// "handed_off".
func (k LeaseEventKind) String() string {
	switch k {
	case LeaseTaken:
		return "taken"
	case LeaseStolen:
		return "stolen"
	case LeaseLost:
		return "lost"
	case LeaseReleased:
		return "released"
	case LeaseRenewalFailed:
		return "renewal_failed"
	case LeaseHandOffAsked:
		return "hand_off_asked"
	case LeaseHandedOff:
		return "handed_off"
	}
	return "unknown"
}

// LeaseReason says why a LeaseEvent happened.
type LeaseReason uint8

// Reasons of LeaseEvent.
const (
	ReasonNone LeaseReason = iota
	// ReasonUnowned: taken because nobody held it.
	ReasonUnowned
	// ReasonExpired: taken because its owner had not renewed it for
	// FailoverTime.
	ReasonExpired
	// ReasonOrphan: taken because it was this WorkerID's, left by an
	// earlier process.
	ReasonOrphan
	// ReasonBalance: stolen to even the load.
	ReasonBalance
	// ReasonRefused: lost because a write was refused: another worker holds
	// it now.
	ReasonRefused
	// ReasonNotRenewed: lost because it was not renewed within 90% of
	// FailoverTime.
	ReasonNotRenewed
	// ReasonRequested: released by a call to Release (the consumer's:
	// shard ended or shutdown).
	ReasonRequested
	// ReasonShutdown: released by Run's final release.
	ReasonShutdown
	// ReasonError: a renewal write failed (Err says why).
	ReasonError
	// ReasonHandOff: a graceful hand-off: asked for (LeaseHandOffAsked),
	// released to the asker (LeaseHandedOff), or taken by the asker once
	// released (LeaseTaken).
	ReasonHandOff
	// ReasonHandOffTimeout: stolen because the holder did not hand the
	// lease over within HandOffTimeout (a KCL 2.x holder never does).
	ReasonHandOffTimeout
)

// String returns the reason's name, as metric labels spell it, such as "expired".
func (r LeaseReason) String() string {
	switch r {
	case ReasonUnowned:
		return "unowned"
	case ReasonExpired:
		return "expired"
	case ReasonOrphan:
		return "orphan"
	case ReasonBalance:
		return "balance"
	case ReasonRefused:
		return "refused"
	case ReasonNotRenewed:
		return "not_renewed"
	case ReasonRequested:
		return "requested"
	case ReasonShutdown:
		return "shutdown"
	case ReasonError:
		return "error"
	case ReasonHandOff:
		return "hand_off"
	case ReasonHandOffTimeout:
		return "hand_off_timeout"
	}
	return "none"
}

// LeaseEvent is a change in what this worker holds, for HookLeaseEvent.
type LeaseEvent struct {
	// Stream is Config.Stream (a multi-stream lease's stream name); Worker
	// is Config.WorkerID.
	Stream, Worker string
	// Shard is the shard id: the lease's key, or the shard part of a
	// multi-stream lease's key.
	Shard string
	// Kind is what happened to the lease; Reason why, when the kind has
	// reasons (zero otherwise).
	Kind   LeaseEventKind
	Reason LeaseReason
	// PreviousOwner is the owner the lease was taken or stolen from (the
	// holder, for a hand-off); empty for an unowned lease.
	PreviousOwner string
	// NewOwner is the worker a lease is handed to, for LeaseHandOffAsked
	// and LeaseHandedOff; empty otherwise.
	NewOwner string
	// Counter is the lease counter after the event (before it, for a lost
	// lease: as this worker last wrote it).
	Counter int64
	// Err is the failure of a LeaseRenewalFailed event, or the refused write
	// of a lost lease; nil otherwise.
	Err error
}

// Renewal is one renewal write, for HookRenewal.
type Renewal struct {
	// Stream is Config.Stream (a multi-stream lease's stream name); Worker
	// is Config.WorkerID; Shard is the shard id.
	Stream, Worker, Shard string
	// Latency is the write's duration.
	Latency time.Duration
	// WithCheckpoint is set when the renewal carried a deferred checkpoint
	// (HookCheckpoint hears of it too).
	WithCheckpoint bool
	// Err is nil for a renewal that succeeded; it wraps ErrLeaseLost when the
	// write was refused (the lease is then lost).
	Err error
}

// CheckpointKind says which write carried a checkpoint.
type CheckpointKind uint8

// Kinds of CheckpointWrite.
const (
	// CheckpointNow: Checkpoint, written at once.
	CheckpointNow CheckpointKind = iota + 1
	// CheckpointShardEnd: FinishShard's SHARD_END checkpoint.
	CheckpointShardEnd
	// CheckpointDeferred: a Defer'd checkpoint carried on a renewal.
	CheckpointDeferred
	// CheckpointBeforeRelease: a deferred checkpoint written by Release or
	// by Run's final release.
	CheckpointBeforeRelease
)

// String returns the kind's name, as metric labels spell it: "now", "shard_end",
// "deferred", "before_release".
func (k CheckpointKind) String() string {
	switch k {
	case CheckpointNow:
		return "now"
	case CheckpointShardEnd:
		return "shard_end"
	case CheckpointDeferred:
		return "deferred"
	case CheckpointBeforeRelease:
		return "before_release"
	}
	return "unknown"
}

// CheckpointWrite is one checkpoint written to the lease table (or refused),
// for HookCheckpoint.
type CheckpointWrite struct {
	// Stream is Config.Stream (a multi-stream lease's stream name); Worker
	// is Config.WorkerID; Shard is the shard id.
	Stream, Worker, Shard string
	// Kind is the write that carried the checkpoint.
	Kind CheckpointKind
	// Position is the checkpoint written.
	Position checkpoint.Position
	// Latency is the write's duration.
	Latency time.Duration
	// Err is nil for a checkpoint written; it wraps ErrLeaseLost when the
	// write was refused because the lease is no longer this worker's.
	Err error
}

// TakerCycle is one taker cycle, for HookTakerCycle.
type TakerCycle struct {
	// Stream is Config.Stream; Worker is Config.WorkerID.
	Stream, Worker string
	// Duration is the whole cycle's; Scan the table scan's.
	Duration, Scan time.Duration
	// Err is the scan's failure; the other counts are zero then.
	Err error
	// Leases is the number of lease rows in the table, finished and
	// malformed ones included; Unfinished those not at SHARD_END that this
	// worker accepts (Config.Accept), malformed rows excluded; Held this
	// worker's unfinished leases; Available the unowned, expired or
	// orphaned ones.
	Leases, Unfinished, Held, Available int
	// Workers is the number of workers the plan shares the leases among:
	// those holding a live lease or, on a WorkerStore, with a live worker
	// row, and this one.
	Workers int
	// Planned is how many leases the plan gave this worker to take or steal
	// (0 after StopTaking); Taken how many of those it took, and Asked how
	// many it asked their holders to hand over (on a HandOffStore a steal
	// is a hand-off: the lease comes later, as a LeaseTaken event with
	// ReasonHandOff, or a LeaseStolen one with ReasonHandOffTimeout).
	Planned, Taken, Asked int
	// Probe is set when the plan was a newcomer's probe (one lease at
	// random), not a full plan.
	Probe bool
}
