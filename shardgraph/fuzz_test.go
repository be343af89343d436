package shardgraph

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// FuzzFromKinesis feeds arbitrary hash keys and sequence numbers to
// FromKinesis: it must never panic, must refuse with a *ShardError, and must
// keep exactly what it accepts.
func FuzzFromKinesis(f *testing.F) {
	f.Add("0", maxKey, "1", "")
	f.Add("170141183460469231731687303715884105728", maxKey, "49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692540925702759324208523137515618")
	f.Add("-1", "5", "1", "")
	f.Add("007", "8", "1", "2")
	f.Add("5", "4", "1", "")
	f.Add("340282366920938463463374607431768211456", "340282366920938463463374607431768211456", "1", "")
	f.Add("1e9", "0x10", "abc", "")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, start, end, seqStart, seqEnd string) {
		var ending *string
		if seqEnd != "" {
			ending = aws.String(seqEnd)
		}
		in := kshard(id(0), start, end, seqStart, ending)
		got, err := FromKinesis([]types.Shard{in})
		if err != nil {
			var se *ShardError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidShard) || se.ShardID != id(0) || se.Field == "" {
				t.Fatalf("error %v is not a *ShardError naming the shard and the field", err)
			}
			return
		}
		s := got[0]
		if s.HashKeyStart.Sign() < 0 || s.HashKeyStart.Cmp(s.HashKeyEnd) > 0 || s.HashKeyEnd.Cmp(maxHashKey) > 0 {
			t.Fatalf("accepted keys %v..%v outside 0 <= start <= end <= 2^128-1", s.HashKeyStart, s.HashKeyEnd)
		}
		if !sameNumber(s.HashKeyStart, start) || !sameNumber(s.HashKeyEnd, end) {
			t.Fatalf("keys %q..%q parsed as %v..%v", start, end, s.HashKeyStart, s.HashKeyEnd)
		}
		if s.StartingSequence != seqStart || s.EndingSequence != seqEnd || s.ID != id(0) {
			t.Fatalf("shard %+v does not keep the input", s)
		}
		if _, err := NewChecked(got); err != nil {
			t.Fatalf("NewChecked refuses what FromKinesis accepted: %v", err)
		}
	})
}

// sameNumber reports whether x is the number written in decimal as s.
func sameNumber(x *big.Int, s string) bool {
	trimmed := strings.TrimLeft(s, "0")
	if trimmed == "" {
		trimmed = "0"
	}
	return x.String() == trimmed
}

// FuzzNew builds graphs of arbitrary shape, including cycles, self parents,
// repeated ids and overlapping ranges: New, Ready, Coverage and the lineage
// walks must not panic, Ready must stay consistent with Parents, and when
// NewChecked accepts the shards, draining with Ready must visit them all.
func FuzzNew(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1, 0, 2, 2, 0})
	f.Add([]byte{0, 1, 9, 1, 0, 9, 2, 1, 0})
	f.Add([]byte{3, 3, 3, 3, 3, 3, 1, 2, 250})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		shards := decodeShards(data)
		g := New(shards)
		_ = g.Coverage()
		done := map[string]bool{}
		for range g.Len() + 1 {
			ready := g.Ready(func(id string) bool { return done[id] })
			for _, r := range ready {
				for _, p := range g.Parents(r) {
					if _, present := g.Shard(p); present && !done[p] {
						t.Fatalf("Ready offered %s before its parent %s", r, p)
					}
				}
				done[r] = true
			}
			if len(ready) == 0 {
				break
			}
		}
		for _, id := range append(g.Open(), g.Closed()...) {
			g.Descendants(id)
			g.Ancestors(id)
		}
		if _, err := NewChecked(shards); err == nil && len(done) != g.Len() {
			t.Fatalf("NewChecked accepted shards that Ready drains only %d of %d", len(done), g.Len())
		}
	})
}

// decodeShards turns bytes into shards, three bytes each: the shard number,
// its parents' numbers (0 for none, n for shard n-1), and its range and state.
func decodeShards(data []byte) []Shard {
	var out []Shard
	for ; len(data) >= 3; data = data[3:] {
		s := Shard{ID: id(int(data[0] % 16)), StartingSequence: "1"}
		for _, p := range []byte{data[1] % 17, data[1] / 17 % 17} {
			if p > 0 {
				s.ParentIDs = append(s.ParentIDs, id(int(p-1)))
			}
		}
		from, to := int64(data[2]%8), int64(data[2]/8%8)
		s.HashKeyStart, s.HashKeyEnd = keyAt(min(from, to), 8), new(big.Int).Sub(keyAt(max(from, to)+1, 8), big.NewInt(1))
		if data[2]&64 != 0 {
			s.EndingSequence = "2"
		}
		out = append(out, s)
	}
	return out
}
