package shardgraph

import (
	"math/big"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// maxHashKey is 2^128-1, the top of the Kinesis hash key space. Never modified.
var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// MaxHashKey returns 2^128-1, the largest hash key (a new value each call).
func MaxHashKey() *big.Int { return new(big.Int).Set(maxHashKey) }

// Shard is one shard of a stream, as far as lineage is concerned.
type Shard struct {
	// ID is the shard id, e.g. "shardId-000000000007".
	ID string

	// ParentIDs holds the parent and, for a merge child, the adjacent parent
	// (0 to 2 ids). A parent may be absent from the stream (trimmed).
	ParentIDs []string

	// HashKeyStart and HashKeyEnd bound the shard's hash keys, inclusive.
	HashKeyStart, HashKeyEnd *big.Int

	// StartingSequence is the first sequence number of the shard.
	StartingSequence string

	// EndingSequence is set once the shard is closed (split, merged, or its
	// stream being deleted) and empty while it is open.
	EndingSequence string
}

// IsOpen reports whether the shard is still open (has no ending sequence).
func (s Shard) IsOpen() bool { return s.EndingSequence == "" }

// clone returns a deep copy, so that a Graph shares no memory with callers.
func (s Shard) clone() Shard {
	c := s
	c.ParentIDs = append([]string(nil), s.ParentIDs...)
	c.HashKeyStart = cloneInt(s.HashKeyStart)
	c.HashKeyEnd = cloneInt(s.HashKeyEnd)
	return c
}

func cloneInt(x *big.Int) *big.Int {
	if x == nil {
		return nil
	}
	return new(big.Int).Set(x)
}

// validate checks the fields a Graph relies on; i is the position in the
// input, or -1.
func (s Shard) validate(i int) error {
	bad := func(field, reason string) error {
		return &ShardError{Err: ErrInvalidShard, Index: i, ShardID: s.ID, Field: field, Reason: reason}
	}
	switch {
	case s.ID == "":
		return bad("ID", "missing")
	case s.HashKeyStart == nil:
		return bad("HashKeyStart", "missing")
	case s.HashKeyEnd == nil:
		return bad("HashKeyEnd", "missing")
	case s.HashKeyStart.Sign() < 0:
		return bad("HashKeyStart", s.HashKeyStart.String()+" is negative")
	case s.HashKeyEnd.Cmp(maxHashKey) > 0:
		return bad("HashKeyEnd", s.HashKeyEnd.String()+" is above 2^128-1")
	case s.HashKeyStart.Cmp(s.HashKeyEnd) > 0:
		return bad("HashKeyStart", s.HashKeyStart.String()+" is above HashKeyEnd "+s.HashKeyEnd.String())
	}
	return nil
}

// FromKinesis converts shards returned by ListShards (or DescribeStream) and
// checks them: every shard needs an id, a hash key range of decimal integers
// with 0 <= start <= end <= 2^128-1, and a sequence number range with a
// decimal starting sequence number. The first bad shard is reported as a
// *ShardError wrapping ErrInvalidShard, naming the shard and the field.
// Duplicate ids are not checked here (see NewChecked). Empty parent ids are
// dropped; the order of the parents (parent, then adjacent parent) is kept.
func FromKinesis(shards []types.Shard) ([]Shard, error) {
	out := make([]Shard, 0, len(shards))
	for i := range shards {
		s, err := fromKinesis(i, &shards[i])
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func fromKinesis(i int, k *types.Shard) (Shard, error) {
	s := Shard{ID: deref(k.ShardId)}
	bad := func(field, reason string) error {
		return &ShardError{Err: ErrInvalidShard, Index: i, ShardID: s.ID, Field: field, Reason: reason}
	}
	if s.ID == "" {
		return Shard{}, bad("ShardId", "missing")
	}
	for _, p := range []*string{k.ParentShardId, k.AdjacentParentShardId} {
		if deref(p) != "" {
			s.ParentIDs = append(s.ParentIDs, *p)
		}
	}
	if k.HashKeyRange == nil {
		return Shard{}, bad("HashKeyRange", "missing")
	}
	var err error
	if s.HashKeyStart, err = parseKey(k.HashKeyRange.StartingHashKey); err != nil {
		return Shard{}, bad("HashKeyRange.StartingHashKey", err.Error())
	}
	if s.HashKeyEnd, err = parseKey(k.HashKeyRange.EndingHashKey); err != nil {
		return Shard{}, bad("HashKeyRange.EndingHashKey", err.Error())
	}
	if s.HashKeyStart.Cmp(s.HashKeyEnd) > 0 {
		return Shard{}, bad("HashKeyRange", "starting hash key "+s.HashKeyStart.String()+
			" is above ending hash key "+s.HashKeyEnd.String())
	}
	if err := s.setSequences(k.SequenceNumberRange, bad); err != nil {
		return Shard{}, err
	}
	return s, nil
}

// setSequences copies the sequence number range, reporting problems via bad.
func (s *Shard) setSequences(r *types.SequenceNumberRange, bad func(field, reason string) error) error {
	if r == nil {
		return bad("SequenceNumberRange", "missing")
	}
	s.StartingSequence = deref(r.StartingSequenceNumber)
	if !isDecimal(s.StartingSequence) {
		return bad("SequenceNumberRange.StartingSequenceNumber", describe(r.StartingSequenceNumber))
	}
	s.EndingSequence = deref(r.EndingSequenceNumber)
	if r.EndingSequenceNumber != nil && !isDecimal(s.EndingSequence) {
		return bad("SequenceNumberRange.EndingSequenceNumber", describe(r.EndingSequenceNumber))
	}
	return nil
}

// keyError explains why a hash key was refused.
type keyError string

func (e keyError) Error() string { return string(e) }

// parseKey parses a decimal hash key in 0..2^128-1. Signs, spaces, and other
// bases are refused: Kinesis sends plain digits.
func parseKey(p *string) (*big.Int, error) {
	if p == nil || !isDecimal(*p) {
		return nil, keyError(describe(p))
	}
	x, ok := new(big.Int).SetString(*p, 10)
	if !ok {
		return nil, keyError(describe(p))
	}
	if x.Cmp(maxHashKey) > 0 {
		return nil, keyError(*p + " is above 2^128-1")
	}
	return x, nil
}

// describe says what is wrong with a value that is not a decimal integer.
func describe(p *string) string {
	switch {
	case p == nil:
		return "missing"
	case *p == "":
		return "empty"
	}
	v := *p
	if len(v) > 64 {
		v = v[:64] + "..."
	}
	return strconv.Quote(v) + " is not a decimal integer"
}

func isDecimal(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// copier deep-copies shards into a few shared allocations: copying n shards
// costs a handful of allocations instead of five per shard. Every copied
// slice is capped at its length, so appending to one never writes into
// another.
type copier struct {
	ints    []big.Int
	words   []big.Word
	parents []string
}

func newCopier(shards []Shard) *copier {
	words, parents := 0, 0
	for i := range shards {
		words += len(bits(shards[i].HashKeyStart)) + len(bits(shards[i].HashKeyEnd))
		parents += len(shards[i].ParentIDs)
	}
	return &copier{ints: make([]big.Int, 2*len(shards)), words: make([]big.Word, words), parents: make([]string, parents)}
}

// shard returns a deep copy of s.
func (c *copier) shard(s Shard) Shard {
	s.ParentIDs = take(&c.parents, s.ParentIDs)
	s.HashKeyStart, s.HashKeyEnd = c.int(s.HashKeyStart), c.int(s.HashKeyEnd)
	return s
}

func (c *copier) int(x *big.Int) *big.Int {
	if x == nil {
		return nil
	}
	z := &c.ints[0]
	c.ints = c.ints[1:]
	z.SetBits(take(&c.words, x.Bits()))
	if x.Sign() < 0 {
		z.Neg(z)
	}
	return z
}

func bits(x *big.Int) []big.Word {
	if x == nil {
		return nil
	}
	return x.Bits()
}

// take copies src to the front of *buf and returns the copy, capped.
func take[T any](buf *[]T, src []T) []T {
	n := len(src)
	dst := (*buf)[:n:n]
	copy(dst, src)
	*buf = (*buf)[n:]
	return dst
}
