// Package deagg reads and writes the Kinesis Producer Library's aggregated
// record format, which packs many user records into one Kinesis record.
//
// # Format
//
// An aggregated record is the Kinesis record's data laid out as
//
//	+----+----+----+----+==================+----+...+----+
//	| F3 | 89 | 9A | C2 | protobuf message |   MD5 (16)   |
//	+----+----+----+----+==================+----+...+----+
//
// where the protobuf message (proto2) is
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
//
// and the trailer is the MD5 of the protobuf bytes. Records name their keys
// by zero-based index into the two tables, so a key shared by many records is
// stored once. The references are the KPL's aggregation-format.md and the
// Java KCL's AggregatorUtil.
//
// # Reading
//
// [AppendUnpacked] (and its allocating form [Unpack]) checks the magic prefix
// and the MD5, then decodes with protowire directly: no generated code, no
// reflection, one allocation per aggregated record (the partition and explicit
// hash key tables, converted to a string once), and none per user record. The
// user records' Data alias the input.
//
// Decoding is strict where a wrong answer would be silent and tolerant where
// the KCL is: unknown fields are skipped (forward compatibility) and tags are
// ignored, but an index past its table, a missing required field, a known
// field with the wrong wire type or truncated input is [ErrMalformed], with a
// [*MalformedError] naming the field and the byte offset.
//
// An aggregate that holds zero records (a valid message with no records
// field) unpacks to zero user records and no error, as in the KCL: the Kinesis
// record was well formed and carried nothing, so a consumer should treat it as
// processed (and checkpoint past it) rather than deliver it.
//
// # The fallback rule
//
// A consumer that follows the KCL never drops a Kinesis record and never fails
// on one: if the data lacks the magic prefix or is too short
// ([ErrNotAggregated]), its MD5 does not match ([ErrChecksum]), or its message
// does not parse ([ErrMalformed]), the Kinesis record is delivered as one plain
// user record with its data untouched. The error tells the consumer which case
// it is, for logging and metrics; all three mean "deliver as is".
//
// # Routing
//
// Kinesis routes a record by its 128-bit hash key: the explicit hash key when
// one is set, otherwise the MD5 of the partition key. After a shard is split or
// merged, an aggregate written to the parent may hold user records whose hash
// keys now belong to a sibling shard; the KCL drops those. [HashKey] computes a
// user record's [Key] without allocating, so the consumer can compare it with
// the shard's hash key range on the hot path.
//
// # Writing
//
// [Aggregator] packs user records into aggregates byte-compatible with the KPL,
// each small enough for one Kinesis record.
package deagg
