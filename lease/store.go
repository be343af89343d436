package lease

import "context"

// Store holds a lease table. NewDynamoStore keeps it in DynamoDB (the Java
// KCL's schema); NewMemoryStore keeps it in memory, for tests and for a
// single process. Both pass the same conformance suite, and both implement
// the optional HandOffStore and WorkerStore.
//
// Every write but Create and Delete is conditional on the lease being as the
// caller last saw it (its Owner, CheckpointOwner and Counter), and
// increments Counter; each returns the lease as stored after the write.
// Implementations are safe for concurrent use.
type Store interface {
	// List returns every lease, sorted by key. Rows that are not leases (such
	// as the KCL 3.x's other entity types, or gokcl's worker rows) are
	// skipped. A lease row that cannot be read is returned with only Key and
	// Malformed set, so that one bad row does not fail the whole listing.
	List(ctx context.Context) ([]Lease, error)

	// Create writes l if the table has no lease with its key, and returns
	// ErrLeaseExists otherwise.
	Create(ctx context.Context, l Lease) error

	// Renew increments the counter of l, conditional on its owner, checkpoint
	// owner and counter being l's; otherwise it returns ErrLeaseLost.
	Renew(ctx context.Context, l Lease) (Lease, error)

	// Take makes owner the owner of l and ends any hand-off (removing
	// CheckpointOwner), conditional on its owner, checkpoint owner and
	// counter being l's; otherwise it returns ErrConflict. It increments
	// OwnerSwitchesSinceCheckpoint when the lease's holder (Lease.Holder)
	// was another worker.
	Take(ctx context.Context, l Lease, owner string) (Lease, error)

	// Release gives l up, conditional on its owner, checkpoint owner and
	// counter being l's; otherwise it returns ErrLeaseLost. Without a
	// hand-off pending it removes the owner. During a hand-off (l has a
	// CheckpointOwner) it removes the checkpoint owner only, completing the
	// hand-off: Owner, the new owner, then holds the lease alone, and the
	// release counts an owner switch. (The KCL 3.x's evictLease does the
	// same.)
	Release(ctx context.Context, l Lease) (Lease, error)

	// UpdateCheckpoint writes l's Checkpoint, PendingCheckpoint (removing it
	// when nil) and ChildShardIDs (when not empty) and resets
	// OwnerSwitchesSinceCheckpoint, conditional on the owner, checkpoint
	// owner and counter being l's; otherwise it returns ErrLeaseLost. It does
	// not compare checkpoints: the Manager does.
	UpdateCheckpoint(ctx context.Context, l Lease) (Lease, error)

	// Delete removes the lease with the given key; deleting a missing lease
	// is not an error.
	Delete(ctx context.Context, key string) error
}

// HandOffStore is a Store that supports graceful hand-offs, in the Java KCL
// 3.x's representation: while a hand-off is pending, leaseOwner names the
// new owner and checkpointOwner the worker that still holds the lease. The
// Manager steals leases by hand-off on such a store (with Take otherwise).
//
// A hand-off goes:
//
//  1. The new owner N calls HandOff(l, N) on the lease as read: Owner N,
//     CheckpointOwner C (the holder), Counter unchanged.
//  2. C's next conditional write is refused (the owner changed); C reads the
//     lease (from the refusal, or with Get), sees itself as CheckpointOwner
//     with the counter it expected, and from then on writes with Owner N and
//     CheckpointOwner C: renewals and checkpoints succeed.
//  3. C finishes its batch, writes its last checkpoint, and calls Release,
//     which removes CheckpointOwner.
//  4. N, polling with Get, finds itself Owner with no CheckpointOwner and
//     calls Take on it; it starts at C's last checkpoint.
//
// If C does not release in time (dead, or stuck), N takes the lease with
// Take, which removes CheckpointOwner: a plain steal.
type HandOffStore interface {
	Store

	// Get returns the lease with the given key. It returns an error wrapping
	// ErrLeaseNotFound if there is none (or the row is not a lease), and one
	// wrapping ErrMalformedLease if the row cannot be read.
	Get(ctx context.Context, key string) (Lease, error)

	// HandOff starts a hand-off of l to the worker to (not empty): it sets
	// Owner to to and CheckpointOwner to l.Owner, conditional on the owner
	// being l.Owner (not empty, and not to), no hand-off being pending, and
	// the checkpoint not being SHARD_END; otherwise it returns ErrConflict.
	//
	// Unlike every other write, it neither depends on nor changes the
	// counter, as in the KCL 3.x: the holder's renewals do not make it fail,
	// and it does not reset anyone's expiry clock, so a dead holder's lease
	// expires as if no hand-off had been asked for. The change of owner is
	// what makes the holder's next write fail, and tells it.
	HandOff(ctx context.Context, l Lease, to string) (Lease, error)
}

// Worker is a running worker's row in the lease table: a WorkerStore keeps
// one per worker, so that workers holding no lease yet see each other.
type Worker struct {
	// ID is the worker's WorkerID.
	ID string
	// Counter changes on every heartbeat; a row whose counter has not
	// changed for FailoverTime, as observed on the reader's own clock, is
	// a dead worker's.
	Counter int64
}

// WorkerStore is a Store that also keeps workers' rows (see Worker). The
// Manager announces its worker with Heartbeat before its first scan and
// every RenewInterval, and deletes its row when it stops taking leases.
// Workers starting together then plan with each other in mind from their
// first scan, instead of probing.
type WorkerStore interface {
	Store

	// ListAll returns the leases, as List does, and the workers' rows,
	// sorted by ID, in one read.
	ListAll(ctx context.Context) ([]Lease, []Worker, error)

	// Heartbeat creates the row of worker id, or increments its counter,
	// and returns it.
	Heartbeat(ctx context.Context, id string) (Worker, error)

	// DeleteWorker deletes w's row if its counter is still w.Counter; it
	// returns ErrConflict if the counter changed, and nil if the row is
	// absent.
	DeleteWorker(ctx context.Context, w Worker) error
}
