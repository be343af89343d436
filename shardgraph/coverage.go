package shardgraph

import (
	"math/big"
	"slices"
)

// Coverage checks that the open shards cover the hash keys 0 to 2^128-1
// exactly once: no gap, no overlap. It reports the lowest problem as a
// *CoverageError naming the shards and the keys, wrapping ErrGap or
// ErrOverlap; a graph without shards gives ErrNoShards (which also matches
// ErrGap), and one without open shards (a stream being deleted) gives ErrGap
// for the whole key space. An open shard without hash keys gives a
// *ShardError wrapping ErrInvalidShard.
//
// A ListShards taken in the middle of a reshard can miss shards; on ErrGap
// the caller should list the shards again.
func (g *Graph) Coverage() error {
	if len(g.shards) == 0 {
		return &CoverageError{Err: ErrNoShards, From: new(big.Int), To: MaxHashKey()}
	}
	open, err := g.openByKey()
	if err != nil {
		return err
	}
	next, below := new(big.Int), "" // next is the lowest key not yet covered
	for _, s := range open {
		if err := checkAdjacent(below, next, s); err != nil {
			return err
		}
		next.Add(s.HashKeyEnd, big.NewInt(1)) // validate ensured end >= start
		below = s.ID
	}
	if next.Cmp(maxHashKey) <= 0 {
		return &CoverageError{Err: ErrGap, Below: below, From: next, To: MaxHashKey()}
	}
	return nil
}

// openByKey returns the open shards sorted by starting key, then by id.
func (g *Graph) openByKey() ([]*Shard, error) {
	var open []*Shard
	for i := range g.shards {
		s := &g.shards[i]
		if !s.IsOpen() {
			continue
		}
		if err := s.validate(-1); err != nil {
			return nil, err
		}
		open = append(open, s)
	}
	slices.SortStableFunc(open, func(a, b *Shard) int { return a.HashKeyStart.Cmp(b.HashKeyStart) })
	return open, nil
}

// checkAdjacent checks that s starts exactly at next, the first key above
// shard below (named "" when s should start at key 0).
func checkAdjacent(below string, next *big.Int, s *Shard) error {
	switch s.HashKeyStart.Cmp(next) {
	case 1:
		to := new(big.Int).Sub(s.HashKeyStart, big.NewInt(1))
		return &CoverageError{Err: ErrGap, Below: below, Above: s.ID, From: new(big.Int).Set(next), To: to}
	case -1:
		to := new(big.Int).Sub(next, big.NewInt(1))
		if s.HashKeyEnd.Cmp(to) < 0 {
			to.Set(s.HashKeyEnd)
		}
		return &CoverageError{Err: ErrOverlap, Below: below, Above: s.ID, From: cloneInt(s.HashKeyStart), To: to}
	}
	return nil
}
