package deagg

import (
	"errors"
	"fmt"
)

// Errors returned by [Unpack] and [AppendUnpacked]. Under the fallback rule
// (see the package documentation) each of the three means the Kinesis record
// is delivered as one plain record.
var (
	// ErrNotAggregated means the data does not start with the aggregated
	// record magic bytes, or is too short to hold them, a message and the
	// MD5 trailer. It is returned as is (never wrapped) so that the common
	// case of a plain record costs no allocation.
	ErrNotAggregated = errors.New("deagg: not an aggregated record")

	// ErrChecksum means the MD5 trailer does not match the message: the data
	// is not an aggregated record, or was corrupted. Returned wrapped, with
	// both digests.
	ErrChecksum = errors.New("deagg: aggregated record checksum mismatch")

	// ErrMalformed means the message passed the checksum but does not decode
	// as an AggregatedRecord. Returned wrapped in a [*MalformedError].
	ErrMalformed = errors.New("deagg: malformed aggregated record")
)

// Errors returned by [ParseKey], [HashKey] and [Aggregator.Add].
var (
	// ErrInvalidHashKey means an explicit hash key is not a decimal integer
	// in [0, 2^128-1].
	ErrInvalidHashKey = errors.New("deagg: invalid explicit hash key")

	// ErrInvalidPartitionKey means a partition key is empty, longer than
	// [MaxPartitionKeyLen] characters, or not valid UTF-8.
	ErrInvalidPartitionKey = errors.New("deagg: invalid partition key")

	// ErrRecordTooLarge means a user record could not fit in an aggregated
	// record even on its own.
	ErrRecordTooLarge = errors.New("deagg: user record too large to aggregate")
)

// MalformedError describes where an aggregated record's message failed to
// decode. It wraps [ErrMalformed], so errors.Is(err, ErrMalformed) holds.
type MalformedError struct {
	// Offset is the byte offset into the Kinesis record's data (magic bytes
	// included) at which the problem was found.
	Offset int
	// Field names the protobuf field, for example "records[3].data" or
	// "partition_key_table"; "AggregatedRecord" when no field could be read.
	Field string
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *MalformedError) Error() string {
	return fmt.Sprintf("%v: %s at offset %d: %s", ErrMalformed, e.Field, e.Offset, e.Reason)
}

// Unwrap returns [ErrMalformed].
func (e *MalformedError) Unwrap() error { return ErrMalformed }
