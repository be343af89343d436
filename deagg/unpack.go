package deagg

import (
	"crypto/md5"
	"fmt"
)

// UserRecord is one record packed in an aggregated record.
type UserRecord struct {
	// PartitionKey is the user record's partition key. The partition and
	// explicit hash keys of one aggregated record share one string that
	// holds little but the keys, so keeping a key does not keep the
	// aggregate's data alive.
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key (a decimal
	// string), or "" if it has none.
	ExplicitHashKey string
	// Data is the user record's payload. It aliases the data passed to
	// Unpack or AppendUnpacked (no copy is made): it is valid as long as
	// that data is, and changes if that data changes. Its capacity equals
	// its length, so appending to it copies instead of overwriting the
	// bytes that follow it.
	Data []byte
	// SubSequenceNumber is the user record's index in its aggregated
	// record, starting at 0, as in the KCL. Together with the Kinesis
	// record's sequence number it identifies the user record.
	SubSequenceNumber uint64
}

// HashKey returns the 128-bit hash key Kinesis routed the user record by:
// see the function [HashKey].
func (r *UserRecord) HashKey() (Key, error) {
	return HashKey(r.PartitionKey, r.ExplicitHashKey)
}

// IsAggregated reports whether data starts with the aggregated record magic
// bytes and is long enough to hold a message and the MD5 trailer. It does not
// verify the checksum or the message: [Unpack] does.
//
// As in the KCL, data holding the magic bytes and a trailer but an empty
// message is not an aggregated record.
func IsAggregated(data []byte) bool {
	return len(data) > overhead && string(data[:len(Magic)]) == Magic
}

// Unpack returns the user records packed in data, an aggregated record's
// bytes. It is [AppendUnpacked] into a new slice, and returns a nil slice on
// error. Safe for concurrent use.
func Unpack(data []byte) ([]UserRecord, error) {
	return AppendUnpacked(nil, data)
}

// AppendUnpacked appends the user records packed in data, an aggregated
// record's bytes, to dst and returns the extended slice. Given a dst with
// room for the records (a slice reused across calls), it allocates once per
// call: the string holding the key tables. The records' Data alias data.
//
// On error it returns dst unchanged in length (elements past len(dst), up to
// its capacity, may have been overwritten and cleared) and one of
// [ErrNotAggregated] (as is), [ErrChecksum] or [ErrMalformed] (wrapped).
// Under the fallback rule the caller then delivers data as one plain record.
//
// A well-formed aggregate holding zero records appends nothing and returns no
// error. Safe for concurrent use.
func AppendUnpacked(dst []UserRecord, data []byte) ([]UserRecord, error) {
	if !IsAggregated(data) {
		return dst, ErrNotAggregated
	}
	// Capping body's capacity makes any slicing past its end panic instead
	// of silently reading the trailer.
	body := data[len(Magic) : len(data)-md5.Size : len(data)-md5.Size]
	if sum, want := md5.Sum(body), [md5.Size]byte(data[len(data)-md5.Size:]); sum != want {
		return dst, fmt.Errorf("%w: trailer %x, message digest %x", ErrChecksum, want, sum)
	}
	t := getTables()
	defer putTables(t)
	if err := t.scan(body); err != nil {
		return dst, err
	}
	n := len(dst)
	out, err := t.appendRecords(dst, body)
	if err != nil {
		clear(out[n:])
		return dst[:n], err
	}
	return out, nil
}
