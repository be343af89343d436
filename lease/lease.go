package lease

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gokcl/kcl/checkpoint"
)

// Lease is one shard's row in the lease table. Field comments name the
// attribute the Java KCL (2.x) stores the field in, so that gokcl and the
// KCL can read each other's tables.
type Lease struct {
	// Key identifies the lease (leaseKey, the table's only key): the shard id
	// in a single-stream table; in a multi-stream table, the stream
	// identifier, a colon and the shard id (StreamID.LeaseKey).
	Key string
	// StreamID is the stream of a multi-stream table's lease (streamName: the
	// KCL keeps that name for the serialized identifier); zero in a
	// single-stream table. ShardID is then the shard's id (shardId), and Key
	// is StreamID.LeaseKey(ShardID). Both are written by Create only: a key
	// names one shard of one stream for good.
	StreamID StreamID
	ShardID  string
	// Owner is the worker holding the lease; empty when nobody does
	// (leaseOwner, absent when unowned). During a hand-off (CheckpointOwner
	// set) it is the worker the lease is being handed to.
	Owner string
	// CheckpointOwner is set while a graceful hand-off is pending, as the
	// Java KCL 3.x represents it: the worker that still holds the lease,
	// processes the shard and writes its checkpoints until it releases the
	// lease to Owner, who waits for that release (checkpointOwner, absent
	// otherwise). See HandOffStore.
	CheckpointOwner string
	// Counter changes on every write that renews, takes, releases or
	// checkpoints the lease; a worker proves it still holds the lease by
	// writing conditionally on the counter it last saw (leaseCounter).
	Counter int64
	// Checkpoint is where processing resumes: after this position, or at it
	// for the sentinels TrimHorizon, Latest and AtTimestamp (checkpoint,
	// checkpointSubSequenceNumber).
	Checkpoint checkpoint.Position
	// PendingCheckpoint is the KCL's two-phase checkpoint, if any; gokcl
	// reads and preserves it but does not use it (pendingCheckpoint,
	// pendingCheckpointSubSequenceNumber).
	PendingCheckpoint *checkpoint.Position
	// PendingCheckpointState is opaque application state stored with the
	// pending checkpoint by the KCL (pendingCheckpointState, binary).
	PendingCheckpointState []byte
	// OwnerSwitchesSinceCheckpoint counts owner changes since the last
	// checkpoint (ownerSwitchesSinceCheckpoint).
	OwnerSwitchesSinceCheckpoint int64
	// ParentShardIDs are the shard's parents, 0 to 2 (parentShardId, a
	// string set).
	ParentShardIDs []string
	// ChildShardIDs are the shard's children, known once the shard has been
	// read to its end (childShardIds, a string set).
	ChildShardIDs []string
	// StartingHashKey and EndingHashKey are the shard's hash key range as
	// decimal strings, empty if unknown (startingHashKey, endingHashKey).
	StartingHashKey, EndingHashKey string

	// Malformed, when not nil, says why the lease's row could not be read
	// (an error wrapping ErrMalformedLease that names the attribute); only
	// Key is set then. Store.List returns such rows rather than failing, so
	// that one bad row does not stop every worker: the Manager never takes,
	// steals or writes such a lease (Validate refuses it), and the consumer
	// treats its shard as not finished, so its children wait. An operator
	// must repair the row; guessing a position could skip or replay records.
	Malformed error
}

// Shard returns the id of the lease's shard: ShardID in a multi-stream
// table, Key in a single-stream one.
func (l Lease) Shard() string {
	if l.ShardID != "" {
		return l.ShardID
	}
	return l.Key
}

// MultiStream reports whether l is a lease of a multi-stream table: it
// names its stream.
func (l Lease) MultiStream() bool { return !l.StreamID.IsZero() }

// Holder returns the worker that processes the shard and may write its
// checkpoint: CheckpointOwner during a hand-off, otherwise Owner (the KCL's
// "actual owner").
func (l Lease) Holder() string {
	if l.CheckpointOwner != "" {
		return l.CheckpointOwner
	}
	return l.Owner
}

// HandOffPending reports whether a graceful hand-off from CheckpointOwner to
// Owner is under way.
func (l Lease) HandOffPending() bool {
	return l.CheckpointOwner != "" && l.Owner != "" && l.CheckpointOwner != l.Owner
}

// Finished reports whether the shard was processed to its end: its
// checkpoint is SHARD_END. Finished leases are never taken or stolen.
func (l Lease) Finished() bool { return l.Checkpoint.IsShardEnd() }

// Clone returns a deep copy of l, sharing no slices or pointers with it.
func (l Lease) Clone() Lease {
	l.ParentShardIDs = slices.Clone(l.ParentShardIDs)
	l.ChildShardIDs = slices.Clone(l.ChildShardIDs)
	l.PendingCheckpointState = slices.Clone(l.PendingCheckpointState)
	if l.PendingCheckpoint != nil {
		p := *l.PendingCheckpoint
		l.PendingCheckpoint = &p
	}
	return l
}

// Validate reports whether l can be written to a lease table.
func (l Lease) Validate() error {
	if l.Key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidLease)
	}
	if l.Malformed != nil {
		return fmt.Errorf("%w: lease %s: its row is malformed: %w", ErrInvalidLease, l.Key, l.Malformed)
	}
	if err := l.validateStream(); err != nil {
		return fmt.Errorf("%w: lease %s: %w", ErrInvalidLease, l.Key, err)
	}
	if l.Counter < 0 {
		return fmt.Errorf("%w: lease %s: negative counter %d", ErrInvalidLease, l.Key, l.Counter)
	}
	if err := l.Checkpoint.Validate(); err != nil {
		return fmt.Errorf("%w: lease %s: checkpoint: %w", ErrInvalidLease, l.Key, err)
	}
	if l.PendingCheckpoint != nil {
		if err := l.PendingCheckpoint.Validate(); err != nil {
			return fmt.Errorf("%w: lease %s: pending checkpoint: %w", ErrInvalidLease, l.Key, err)
		}
	}
	if len(l.ParentShardIDs) > 2 {
		return fmt.Errorf("%w: lease %s: %d parents (at most 2)", ErrInvalidLease, l.Key, len(l.ParentShardIDs))
	}
	if err := validateShardIDs(l.ParentShardIDs); err != nil {
		return fmt.Errorf("%w: lease %s: parents: %w", ErrInvalidLease, l.Key, err)
	}
	if err := validateShardIDs(l.ChildShardIDs); err != nil {
		return fmt.Errorf("%w: lease %s: children: %w", ErrInvalidLease, l.Key, err)
	}
	return nil
}

// validateStream checks a multi-stream lease's stream and shard against its
// key: the KCL reads the stream and the shard from their attributes, gokcl
// from the key or the attributes, and both must agree.
func (l Lease) validateStream() error {
	switch {
	case l.StreamID.IsZero() && l.ShardID == "":
		return nil // a single-stream lease
	case l.StreamID.IsZero():
		return fmt.Errorf("shard id %q without a stream", l.ShardID)
	case l.ShardID == "":
		return fmt.Errorf("stream %s without a shard id", l.StreamID)
	}
	if err := l.StreamID.Validate(); err != nil {
		return err
	}
	if want := l.StreamID.LeaseKey(l.ShardID); l.Key != want {
		return fmt.Errorf("the key of stream %s's shard %s must be %q", l.StreamID, l.ShardID, want)
	}
	return nil
}

// validateShardIDs rejects empty and repeated ids: the lease table stores
// parents and children as string sets, which hold neither.
func validateShardIDs(ids []string) error {
	for i, id := range ids {
		if id == "" {
			return errors.New("empty shard id")
		}
		if slices.Contains(ids[:i], id) {
			return fmt.Errorf("shard id %s repeated", id)
		}
	}
	return nil
}
