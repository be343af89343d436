// Package lease shares a stream's shards between workers through a lease
// table, one item per shard, compatible with the Java KCL's DynamoDB schema.
//
// A Store holds the leases (DynamoDB in production, memory in tests); a
// Manager, one per worker, renews the leases it owns, takes unowned and
// expired ones and steals from overloaded workers until the load is even.
package lease
