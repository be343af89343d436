package main

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/lease"
)

// tracker counts what was produced and processed: every record id once
// (duplicates beyond), per-key order of first deliveries, and where each
// record was stored, so that a record never processed can be told lost (a
// checkpoint passed it) from not processed yet. What each worker holds, and
// each shard's lag, the view reads from the consumers' Status.
type tracker struct {
	mu           sync.Mutex
	seen         []uint32 // deliveries per record id
	stored       []place  // where each record id was stored
	producedN    int
	unique       int
	dups         int
	outOfOrder   int
	lastByKey    map[string]int
	lastProgress time.Time // when a record was last processed for the first time
}

// place is where a user record was stored: its shard and position.
type place struct {
	shard string
	pos   checkpoint.Position
}

// summary is the outcome. A record produced and not processed is lost when
// a checkpoint passed it (every record up to a checkpoint counts as
// processed: no worker will read it again), and otherwise only not
// processed yet; classify tells them apart.
type summary struct {
	produced, processed, lost, unprocessed, duplicates, outOfOrder int
}

func (s summary) line() string {
	line := fmt.Sprintf("produced %d, processed %d, lost %d, duplicates %d, out of order %d",
		s.produced, s.processed, s.lost, s.duplicates, s.outOfOrder)
	if s.unprocessed > 0 {
		line += fmt.Sprintf(", not processed yet %d", s.unprocessed)
	}
	return line
}

func newTracker(n int) *tracker {
	return &tracker{seen: make([]uint32, n), stored: make([]place, n), lastByKey: map[string]int{},
		lastProgress: time.Now()}
}

// produced notes that the records ids were stored in shard in the aggregate
// at sequence number seq, in this order (sub-sequence numbers 0, 1, …).
func (t *tracker) produced(ids []int, shard, seq string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, id := range ids {
		t.stored[id] = place{shard: shard, pos: checkpoint.At(seq, uint64(i))}
	}
	t.producedN += len(ids)
}

// record notes a processed batch.
func (t *tracker) record(b *consumer.Batch) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range b.Records {
		id, err := strconv.Atoi(string(r.Data))
		if err != nil || id < 0 || id >= len(t.seen) {
			continue // not ours
		}
		t.seen[id]++
		if t.seen[id] > 1 {
			t.dups++
			continue
		}
		t.unique++
		t.lastProgress = time.Now()
		key := r.PartitionKey
		if last, ok := t.lastByKey[key]; ok && id < last {
			t.outOfOrder++
		}
		t.lastByKey[key] = id
	}
}

// summary returns the counts so far; every record produced and not
// processed counts as not processed yet (see classify).
func (t *tracker) summary() summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	return summary{produced: t.producedN, processed: t.unique, unprocessed: t.producedN - t.unique,
		duplicates: t.dups, outOfOrder: t.outOfOrder}
}

// sinceProgress returns how long ago a record was last processed for the
// first time.
func (t *tracker) sinceProgress() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return time.Since(t.lastProgress)
}

// classify returns the summary with the records not processed split by the
// lease table's checkpoints: lost if their shard's checkpoint is at or
// after them (SHARD_END included), not processed yet otherwise.
func (t *tracker) classify(leases []lease.Lease) summary {
	cps := make(map[string]checkpoint.Position, len(leases))
	for _, l := range leases {
		cps[l.Key] = l.Checkpoint
	}
	s := t.summary()
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, n := range t.seen {
		p := t.stored[id]
		if n > 0 || p.shard == "" {
			continue // processed, or never produced
		}
		if cp, ok := cps[p.shard]; ok && (cp.IsShardEnd() || !cp.IsSentinel() && cp.Compare(p.pos) >= 0) {
			s.lost++
			s.unprocessed--
		}
	}
	return s
}
