// Package checkpoint defines positions in a shard (sequence numbers with KPL
// sub-sequence numbers, and the KCL's sentinels such as TRIM_HORIZON and
// SHARD_END), their order, and the checkpointer handed to record processors.
package checkpoint
