package lease

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidStreamID reports a stream identifier or multi-stream lease key
// that does not have the Java KCL's form (see StreamID).
var ErrInvalidStreamID = errors.New("lease: invalid stream identifier")

// StreamID identifies a stream in a multi-stream lease table, as the Java
// KCL's StreamIdentifier does: the account that owns the stream, its name,
// and its creation time, serialized as "account:name:creationEpoch". The
// creation time tells apart two streams of the same name, one deleted and
// the other created later: their leases never mix.
//
// A multi-stream lease's key is the identifier, a colon and the shard id
// ("123456789012:orders:1700000000:shardId-000000000000"); the lease also
// carries both parts in attributes of their own (see Lease.StreamID).
//
// The zero StreamID means "no stream": the lease of a single-stream table.
type StreamID struct {
	// Account is the id of the AWS account that owns the stream: decimal
	// digits (twelve in AWS).
	Account string
	// Name is the stream's name: not empty, no colon.
	Name string
	// CreationEpoch is when the stream was created, counted from the Unix
	// epoch; positive. The KCL leaves the unit to the application (its own
	// tests use seconds and milliseconds), so it is kept as written; see
	// CreationTime.
	CreationEpoch int64
}

// NewStreamID returns the identifier of the stream with the given ARN
// (arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME, as DescribeStreamSummary
// returns it) created at created, with the creation epoch in seconds.
func NewStreamID(arn string, created time.Time) (StreamID, error) {
	account, name, err := parseStreamARN(arn)
	if err != nil {
		return StreamID{}, err
	}
	id := StreamID{Account: account, Name: name, CreationEpoch: created.Unix()}
	if err := id.Validate(); err != nil {
		return StreamID{}, err
	}
	return id, nil
}

// parseStreamARN returns the account and the stream name of a Kinesis
// stream's ARN.
func parseStreamARN(arn string) (account, name string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("%w: stream ARN %q: %s", ErrInvalidStreamID, arn, why)
	}
	// arn : partition : service : region : account : resource
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") {
		return bad("not an ARN")
	}
	if parts[2] != "kinesis" {
		return bad("not a Kinesis ARN")
	}
	if parts[3] == "" {
		return bad("no region")
	}
	name, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok {
		return bad("not a stream")
	}
	if !isDigits(parts[4]) {
		return bad("the account is not a number")
	}
	if name == "" || strings.Contains(name, ":") {
		return bad("the stream name is empty or holds a colon")
	}
	return parts[4], name, nil
}

// ParseStreamID reads a serialized stream identifier,
// "account:name:creationEpoch". It accepts what the Java KCL accepts (an
// account of digits, a name without colons, a positive epoch), except an
// epoch with leading zeros, which would not serialize back to the same
// text, and so not to the lease keys it is part of.
func ParseStreamID(s string) (StreamID, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return StreamID{}, fmt.Errorf("%w: %q: want account:name:creationEpoch", ErrInvalidStreamID, s)
	}
	id := StreamID{Account: parts[0], Name: parts[1]}
	epoch, err := parseEpoch(parts[2])
	if err != nil {
		return StreamID{}, fmt.Errorf("%w: %q: %w", ErrInvalidStreamID, s, err)
	}
	id.CreationEpoch = epoch
	if err := id.Validate(); err != nil {
		return StreamID{}, err
	}
	return id, nil
}

// parseEpoch reads a canonical positive decimal: no sign, no leading zero.
func parseEpoch(s string) (int64, error) {
	if !isDigits(s) || s[0] == '0' {
		return 0, fmt.Errorf("creation epoch %q is not a positive decimal without leading zeros", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("creation epoch %q does not fit in 64 bits", s)
	}
	return n, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Validate reports whether id can be serialized and read back: an account
// of digits, a name without colons, a positive creation epoch. It returns
// an error wrapping ErrInvalidStreamID.
func (id StreamID) Validate() error {
	switch {
	case !isDigits(id.Account):
		return fmt.Errorf("%w: account %q is not a number", ErrInvalidStreamID, id.Account)
	case id.Name == "" || strings.Contains(id.Name, ":"):
		return fmt.Errorf("%w: stream name %q is empty or holds a colon", ErrInvalidStreamID, id.Name)
	case id.CreationEpoch <= 0:
		return fmt.Errorf("%w: creation epoch %d is not positive", ErrInvalidStreamID, id.CreationEpoch)
	}
	return nil
}

// IsZero reports whether id is the zero StreamID: no stream.
func (id StreamID) IsZero() bool { return id == StreamID{} }

// String returns the serialized identifier, "account:name:creationEpoch",
// or "" for the zero StreamID.
func (id StreamID) String() string {
	if id.IsZero() {
		return ""
	}
	return id.Account + ":" + id.Name + ":" + strconv.FormatInt(id.CreationEpoch, 10)
}

// LeaseKey returns the key of the stream's lease for a shard:
// "account:name:creationEpoch:shardID", as the Java KCL's MultiStreamLease
// builds it.
func (id StreamID) LeaseKey(shardID string) string { return id.String() + ":" + shardID }

// epochMillisFrom is the smallest creation epoch read as milliseconds: 10^11
// seconds is in the year 5138, 10^11 milliseconds in 1973, before Kinesis.
const epochMillisFrom = 100_000_000_000

// CreationTime returns the stream's creation time, reading CreationEpoch as
// milliseconds when it is 10^11 or more and as seconds otherwise: the KCL
// leaves the unit to the application, and no stream was created in either
// unit's range of the other.
func (id StreamID) CreationTime() time.Time {
	if id.CreationEpoch >= epochMillisFrom {
		return time.UnixMilli(id.CreationEpoch)
	}
	return time.Unix(id.CreationEpoch, 0)
}

// SameStream reports whether id and other name the same stream: the same
// account and name, and the same creation time to the second, whether each
// epoch is in seconds or milliseconds (see CreationTime). Two KCL
// applications may have written the same stream's identifier in either unit.
func (id StreamID) SameStream(other StreamID) bool {
	return id.Account == other.Account && id.Name == other.Name &&
		id.CreationTime().Unix() == other.CreationTime().Unix()
}

// ParseLeaseKey reads a multi-stream lease key,
// "account:name:creationEpoch:shardID", into its stream and shard. It returns
// an error wrapping ErrInvalidStreamID for any other key, such as the shard
// id that keys a single-stream lease.
func ParseLeaseKey(key string) (StreamID, string, error) {
	parts := strings.SplitN(key, ":", 4)
	if len(parts) != 4 || parts[3] == "" {
		return StreamID{}, "", fmt.Errorf("%w: lease key %q: want account:name:creationEpoch:shardId", ErrInvalidStreamID, key)
	}
	id, err := ParseStreamID(key[:len(key)-len(parts[3])-1])
	if err != nil {
		return StreamID{}, "", fmt.Errorf("lease key %q: %w", key, err)
	}
	return id, parts[3], nil
}
