package main

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/gokcl/kcl/consumer"
)

// tracker counts what was produced and processed: every record id once
// (duplicates beyond), and per-key order of first deliveries. What each
// worker holds, and each shard's lag, the view reads from the consumers'
// Status.
type tracker struct {
	mu         sync.Mutex
	seen       []uint32 // deliveries per record id
	producedN  int
	unique     int
	dups       int
	outOfOrder int
	lastByKey  map[string]int
}

type summary struct {
	produced, processed, lost, duplicates, outOfOrder int
}

func (s summary) line() string {
	return fmt.Sprintf("produced %d, processed %d, lost %d, duplicates %d, out of order %d",
		s.produced, s.processed, s.lost, s.duplicates, s.outOfOrder)
}

func newTracker(n int) *tracker {
	return &tracker{seen: make([]uint32, n), lastByKey: map[string]int{}}
}

func (t *tracker) produced(n int) {
	t.mu.Lock()
	t.producedN += n
	t.mu.Unlock()
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
		key := r.PartitionKey
		if last, ok := t.lastByKey[key]; ok && id < last {
			t.outOfOrder++
		}
		t.lastByKey[key] = id
	}
}

func (t *tracker) summary() summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	return summary{produced: t.producedN, processed: t.unique, lost: t.producedN - t.unique,
		duplicates: t.dups, outOfOrder: t.outOfOrder}
}
