package checkpoint

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel values of Position.SequenceNumber, spelled as the Java KCL stores
// them in the lease table.
const (
	SentinelAtTimestamp = "AT_TIMESTAMP"
	SentinelTrimHorizon = "TRIM_HORIZON"
	SentinelLatest      = "LATEST"
	SentinelShardEnd    = "SHARD_END"
)

// The sentinel positions. A new lease starts at one of the first three; a
// shard read to its end is checkpointed at ShardEnd.
var (
	AtTimestamp = Position{SequenceNumber: SentinelAtTimestamp}
	TrimHorizon = Position{SequenceNumber: SentinelTrimHorizon}
	Latest      = Position{SequenceNumber: SentinelLatest}
	ShardEnd    = Position{SequenceNumber: SentinelShardEnd}
)

// maxDigits bounds a sequence number: Kinesis documents them as decimals of
// at most 129 digits ("0|([1-9]\d{0,128})").
const maxDigits = 129

// Position is a place in a shard: a Kinesis sequence number with the KPL
// sub-sequence number of a user record inside an aggregated record, or one of
// the sentinels. The zero Position is invalid.
//
// A checkpoint at Position p means every user record up to and including p
// has been processed: a consumer restarts with the record after it.
type Position struct {
	// SequenceNumber is the decimal sequence number of a Kinesis record, or
	// one of the Sentinel* names.
	SequenceNumber string
	// SubSequenceNumber is the index of a user record inside the aggregated
	// record SequenceNumber; 0 for records that are not aggregated. It is 0
	// for sentinels.
	SubSequenceNumber uint64
}

// At returns the position of the user record with the given sequence and
// sub-sequence numbers. It does not validate; see Position.Validate.
func At(sequenceNumber string, subSequenceNumber uint64) Position {
	return Position{SequenceNumber: sequenceNumber, SubSequenceNumber: subSequenceNumber}
}

// rank orders the kinds of positions as the Java KCL does.
func (p Position) rank() int {
	switch p.SequenceNumber {
	case SentinelAtTimestamp:
		return 0
	case SentinelTrimHorizon:
		return 1
	case SentinelLatest:
		return 2
	case SentinelShardEnd:
		return 4
	}
	return 3
}

// IsSentinel reports whether p is one of the sentinels rather than a record.
func (p Position) IsSentinel() bool { return p.rank() != 3 }

// IsShardEnd reports whether p is ShardEnd: the shard was processed to its end.
func (p Position) IsShardEnd() bool { return p.SequenceNumber == SentinelShardEnd }

// Validate reports whether p is a sentinel (with sub-sequence number 0) or a
// decimal sequence number of at most 129 digits.
func (p Position) Validate() error {
	if p.IsSentinel() {
		if p.SubSequenceNumber != 0 {
			return fmt.Errorf("%w: sentinel %s with sub-sequence number %d", ErrInvalid, p.SequenceNumber, p.SubSequenceNumber)
		}
		return nil
	}
	s := p.SequenceNumber
	if s == "" {
		return fmt.Errorf("%w: empty sequence number", ErrInvalid)
	}
	if len(s) > maxDigits {
		return fmt.Errorf("%w: sequence number of %d digits (at most %d)", ErrInvalid, len(s), maxDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("%w: sequence number %q is not a decimal number", ErrInvalid, s)
		}
	}
	return nil
}

// Compare returns -1, 0 or +1 as p is before, equal to or after q, in the
// Java KCL's order: AtTimestamp < TrimHorizon < Latest < any sequence number
// < ShardEnd. Sequence numbers compare numerically (without allocating), then
// by sub-sequence number. Sentinels ignore sub-sequence numbers. Compare
// assumes valid positions.
func (p Position) Compare(q Position) int {
	if rp, rq := p.rank(), q.rank(); rp != rq || rp != 3 {
		return cmp.Compare(rp, rq)
	}
	if c := compareDecimal(p.SequenceNumber, q.SequenceNumber); c != 0 {
		return c
	}
	switch {
	case p.SubSequenceNumber < q.SubSequenceNumber:
		return -1
	case p.SubSequenceNumber > q.SubSequenceNumber:
		return 1
	}
	return 0
}

// compareDecimal compares two unsigned decimal strings numerically.
func compareDecimal(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// String formats p as Parse reads it: the sentinel's name, the sequence
// number, or "sequence/sub" when the sub-sequence number is not 0.
func (p Position) String() string {
	if p.SubSequenceNumber == 0 || p.IsSentinel() {
		return p.SequenceNumber
	}
	return p.SequenceNumber + "/" + strconv.FormatUint(p.SubSequenceNumber, 10)
}

// Parse reads a position written by String: a sentinel name, a decimal
// sequence number, or "sequence/sub". It returns an error wrapping ErrInvalid
// for anything else.
func Parse(s string) (Position, error) {
	seq, sub, hasSub := strings.Cut(s, "/")
	p := Position{SequenceNumber: seq}
	if hasSub {
		n, err := strconv.ParseUint(sub, 10, 64)
		if err != nil {
			return Position{}, fmt.Errorf("%w: sub-sequence number in %q", ErrInvalid, s)
		}
		p.SubSequenceNumber = n
	}
	if err := p.Validate(); err != nil {
		return Position{}, err
	}
	return p, nil
}
