package kcltest

import (
	"fmt"
	"math/big"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Split closes an open shard and opens two children: the first with the
// hash keys below at, the second with the rest, as SplitShard with
// NewStartingHashKey at. A nil at splits the range in its middle. It returns
// the children's ids.
func (s *Stream) Split(shardID string, at *big.Int) (left, right string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.openShard(shardID)
	if err != nil {
		return "", "", err
	}
	first, last := p.start.Big(), p.end.Big()
	if at == nil {
		at = new(big.Int).Add(first, last)
		at.Add(at, big.NewInt(1)).Rsh(at, 1)
	}
	if at.Cmp(first) <= 0 || at.Cmp(last) > 0 {
		return "", "", invalidArgument(fmt.Sprintf("cannot split %s at %s: outside (%s, %s]", shardID, at, first, last))
	}
	s.close(p)
	l := s.addShard([]string{p.id}, p.start, keyOf(new(big.Int).Sub(at, big.NewInt(1))))
	r := s.addShard([]string{p.id}, keyOf(at), p.end)
	return l.id, r.id, nil
}

// Merge closes two open shards with adjacent hash key ranges and opens their
// child, as MergeShards: the child's ParentShardId is a, its
// AdjacentParentShardId b. It returns the child's id.
func (s *Stream) Merge(a, b string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sa, err := s.openShard(a)
	if err != nil {
		return "", err
	}
	sb, err := s.openShard(b)
	if err != nil {
		return "", err
	}
	lo, hi := sa, sb
	if lo.start.Compare(hi.start) > 0 {
		lo, hi = hi, lo
	}
	if next := lo.end.Big(); next.Add(next, big.NewInt(1)).Cmp(hi.start.Big()) != 0 {
		return "", invalidArgument(fmt.Sprintf("cannot merge %s and %s: their hash key ranges are not adjacent", a, b))
	}
	s.close(sa)
	s.close(sb)
	return s.addShard([]string{sa.id, sb.id}, lo.start, hi.end).id, nil
}

func (s *Stream) openShard(id string) (*shard, error) {
	sh := s.byID[id]
	switch {
	case s.deleted:
		return nil, s.streamNotFound(s.name)
	case sh == nil:
		return nil, s.shardNotFound(id)
	case sh.closed:
		return nil, &types.ResourceInUseException{Message: aws.String("shard " + id + " is closed")}
	}
	return sh, nil
}

// close closes sh: its last sequence number is the last handed out so far.
func (s *Stream) close(sh *shard) {
	sh.closed = true
	sh.closedAt = time.Now()
	sh.lastSeq = s.seq.Load()
}

// Trim removes a closed shard and its records from the stream at once, as
// retention eventually does. It returns an error for an unknown or open
// shard.
func (s *Stream) Trim(shardID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.byID[shardID]
	switch {
	case s.deleted:
		return s.streamNotFound(s.name)
	case sh == nil:
		return s.shardNotFound(shardID)
	case !sh.closed:
		return invalidArgument("cannot trim " + shardID + ": it is open")
	}
	s.remove(sh)
	return nil
}

func (s *Stream) remove(sh *shard) {
	delete(s.byID, sh.id)
	s.shards = slices.DeleteFunc(s.shards, func(x *shard) bool { return x == sh })
}

// expire applies retention: it drops the records older than the retention
// period, and the shards closed for longer than it. s.mu is held.
func (s *Stream) expire() {
	horizon := time.Now().Add(-s.options.retention)
	for _, sh := range slices.Clone(s.shards) {
		if sh.closed && !sh.closedAt.After(horizon) {
			s.remove(sh)
			continue
		}
		s.expireRecords(sh, horizon)
	}
}

// expireRecords drops sh's records that arrived at or before horizon.
func (s *Stream) expireRecords(sh *shard, horizon time.Time) {
	n := sort.Search(len(sh.log), func(i int) bool { return sh.log[i].arrival.After(horizon) })
	if n > 0 {
		sh.expiredSeq = sh.log[n-1].seq
		sh.log = slices.Delete(sh.log, 0, n)
	}
}
