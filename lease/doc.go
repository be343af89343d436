// Package lease shares a stream's shards between workers through a lease
// table, one item per shard, compatible with the Java KCL's DynamoDB schema.
//
// A Store holds the leases (DynamoDB in production, memory in tests); a
// Manager, one per worker, renews the leases it owns, takes unowned and
// expired ones, and asks overloaded workers for leases until the load is
// even: a graceful hand-off, in the Java KCL 3.x's representation, where the
// holder finishes, checkpoints and releases the lease to the asker.
package lease
