package lease

import "context"

// Store holds a lease table. NewDynamoStore keeps it in DynamoDB (the Java
// KCL's schema); NewMemoryStore keeps it in memory, for tests and for a
// single process. Both pass the same conformance suite.
//
// Every write but Create and Delete is conditional on the lease being as the
// caller last saw it, and increments Counter; each returns the lease as
// stored after the write. Implementations are safe for concurrent use.
type Store interface {
	// List returns every lease, sorted by key. Rows that are not leases (such
	// as the KCL 3.x's other entity types) are skipped. A lease row that
	// cannot be read is returned with only Key and Malformed set, so that one
	// bad row does not fail the whole listing.
	List(ctx context.Context) ([]Lease, error)

	// Create writes l if the table has no lease with its key, and returns
	// ErrLeaseExists otherwise.
	Create(ctx context.Context, l Lease) error

	// Renew increments the counter of l, conditional on its owner and counter
	// being l.Owner and l.Counter; otherwise it returns ErrLeaseLost.
	Renew(ctx context.Context, l Lease) (Lease, error)

	// Take makes owner the owner of l, conditional on its owner and counter
	// being l.Owner and l.Counter; otherwise it returns ErrConflict. It
	// increments OwnerSwitchesSinceCheckpoint when the lease had another
	// owner.
	Take(ctx context.Context, l Lease, owner string) (Lease, error)

	// Release removes the owner of l, conditional on its owner and counter
	// being l.Owner and l.Counter; otherwise it returns ErrLeaseLost.
	Release(ctx context.Context, l Lease) (Lease, error)

	// UpdateCheckpoint writes l's Checkpoint, PendingCheckpoint (removing it
	// when nil) and ChildShardIDs (when not empty) and resets
	// OwnerSwitchesSinceCheckpoint, conditional on the owner and counter
	// being l.Owner and l.Counter; otherwise it returns ErrLeaseLost. It does
	// not compare checkpoints: the Manager does.
	UpdateCheckpoint(ctx context.Context, l Lease) (Lease, error)

	// Delete removes the lease with the given key; deleting a missing lease
	// is not an error.
	Delete(ctx context.Context, key string) error
}
