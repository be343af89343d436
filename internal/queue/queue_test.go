package queue

import (
	"slices"
	"sync"
	"testing"
)

func TestOrderAndWakeUp(t *testing.T) {
	q := New[int]()
	if got := q.Drain(); got != nil {
		t.Fatalf("empty queue drained %v", got)
	}
	q.Push(1)
	q.Push(2) // does not block although the token of 1 is still there
	<-q.Ready()
	if got := q.Drain(); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("drained %v, want [1 2]", got)
	}
	select {
	case <-q.Ready():
		t.Fatal("a token without a push since the drain")
	default:
	}
}

func TestConcurrentPushersLoseNothing(t *testing.T) {
	q := New[int]()
	const pushers, each = 8, 1000
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			for i := range each {
				q.Push(p*each + i)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var got []int
	for finished := false; !finished; {
		select {
		case <-q.Ready():
		case <-done:
			finished = true
		}
		got = append(got, q.Drain()...)
	}
	if len(got) != pushers*each {
		t.Fatalf("got %d items, want %d", len(got), pushers*each)
	}
	// Each pusher's items stay in its order.
	last := make([]int, pushers)
	for i := range last {
		last[i] = -1
	}
	for _, v := range got {
		p, i := v/each, v%each
		if i <= last[p] {
			t.Fatalf("pusher %d: %d after %d", p, i, last[p])
		}
		last[p] = i
	}
}
