package deagg

import (
	"crypto/md5"

	"google.golang.org/protobuf/encoding/protowire"
)

// Magic is the prefix of every aggregated record.
const Magic = "\xF3\x89\x9A\xC2"

// Limits of the format and of Kinesis.
const (
	// MaxRecordBytes is Kinesis's limit on one record: its data plus its
	// partition key, 1 MiB.
	MaxRecordBytes = 1 << 20

	// MaxPartitionKeyLen is Kinesis's limit on a partition key, in Unicode
	// characters.
	MaxPartitionKeyLen = 256

	// overhead is what an aggregated record adds around its message.
	overhead = len(Magic) + md5.Size
)

// Field numbers of AggregatedRecord.
const (
	fieldPartitionKeyTable    protowire.Number = 1
	fieldExplicitHashKeyTable protowire.Number = 2
	fieldRecords              protowire.Number = 3
)

// Field numbers of Record.
const (
	fieldPartitionKeyIndex    protowire.Number = 1
	fieldExplicitHashKeyIndex protowire.Number = 2
	fieldData                 protowire.Number = 3
	fieldTags                 protowire.Number = 4
)

// minRecordLen is the shortest encoding of a Record that holds both required
// fields: a one-byte tag and a one-byte varint each.
const minRecordLen = 4
