package shardgraph

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

const benchShards = 10_000

// benchShapes are the histories benchmarked: 10,000 shards grown from a
// 4-shard stream by random splits and merges (nothing trimmed). "wide" favours
// splits up to 1,000 open shards (tens of generations); "deep" splits and
// merges equally with at most 64 open shards (thousands of generations, the
// worst case for draining).
var benchShapes = []struct {
	name          string
	maxOpen       int
	splitsPerFour int // splits out of four operations, below maxOpen
}{{"wide", 1000, 3}, {"deep", 64, 2}}

// benchHistory returns the shards of a history and the set of closed ones.
func benchHistory(maxOpen, splitsPerFour int) ([]Shard, map[string]bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := newHistory(4)
	for len(h.shards) < benchShards {
		if len(h.open) == 1 || len(h.open) < maxOpen && rng.IntN(4) < splitsPerFour {
			h.randomSplit(rng)
			continue
		}
		i := rng.IntN(len(h.open) - 1)
		h.merge(h.open[i], h.open[i+1])
	}
	closed := make(map[string]bool)
	for id, s := range h.shards {
		if !s.IsOpen() {
			closed[id] = true
		}
	}
	return h.list(), closed
}

func forEachShape(b *testing.B, run func(b *testing.B, shards []Shard, closed map[string]bool)) {
	for _, shape := range benchShapes {
		shards, closed := benchHistory(shape.maxOpen, shape.splitsPerFour)
		b.Run(fmt.Sprintf("%s/shards=%d", shape.name, len(shards)), func(b *testing.B) {
			b.ReportAllocs()
			run(b, shards, closed)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(shards)), "ns/shard")
		})
	}
}

// BenchmarkNewReady builds the graph of a 10,000-shard history and asks
// which shards are ready once the closed ones are done: what the Coordinator
// does after each ListShards.
func BenchmarkNewReady(b *testing.B) {
	forEachShape(b, func(b *testing.B, shards []Shard, closed map[string]bool) {
		done := func(id string) bool { return closed[id] }
		for b.Loop() {
			if len(New(shards).Ready(done)) == 0 {
				b.Fatal("nothing ready")
			}
		}
	})
}

// BenchmarkReady asks an existing 10,000-shard graph which shards are ready.
func BenchmarkReady(b *testing.B) {
	forEachShape(b, func(b *testing.B, shards []Shard, closed map[string]bool) {
		g := New(shards)
		done := func(id string) bool { return closed[id] }
		for b.Loop() {
			g.Ready(done)
		}
	})
}

// BenchmarkDrainWaves processes a whole 10,000-shard history from the trim
// horizon: Ready, mark the whole answer done, Ready again, until nothing is
// left. Each Ready is linear, so a drain costs shards × waves.
func BenchmarkDrainWaves(b *testing.B) {
	forEachShape(b, func(b *testing.B, shards []Shard, _ map[string]bool) {
		g := New(shards)
		var waves int
		for b.Loop() {
			done := make(map[string]bool, len(shards))
			isDone := func(id string) bool { return done[id] }
			waves = 0
			for ready := g.Ready(isDone); len(ready) > 0; ready = g.Ready(isDone) {
				waves++
				for _, id := range ready {
					done[id] = true
				}
			}
			if len(done) != len(shards) {
				b.Fatalf("drained %d of %d shards", len(done), len(shards))
			}
		}
		b.ReportMetric(float64(waves), "waves")
	})
}

// BenchmarkCoverage checks the open shards of a 10,000-shard history.
func BenchmarkCoverage(b *testing.B) {
	forEachShape(b, func(b *testing.B, shards []Shard, _ map[string]bool) {
		g := New(shards)
		for b.Loop() {
			if err := g.Coverage(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
