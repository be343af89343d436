package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/efotest"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// hookLog records every consumer hook event, and checkpoint writes.
type hookLog struct {
	mu          sync.Mutex
	started     []*Consumer
	stopped     []*Consumer
	fetched     []BatchFetched
	fetchErrors []FetchError
	processed   []BatchProcessed
	dropped     []RecordsDropped
	states      map[string][]ShardStateChange
	checkpoints []lease.CheckpointWrite
}

func newHookLog() *hookLog { return &hookLog{states: map[string][]ShardStateChange{}} }

func (h *hookLog) lock() func() { h.mu.Lock(); return h.mu.Unlock }

func (h *hookLog) OnConsumerStarted(c *Consumer) { defer h.lock()(); h.started = append(h.started, c) }
func (h *hookLog) OnConsumerStopped(c *Consumer) { defer h.lock()(); h.stopped = append(h.stopped, c) }
func (h *hookLog) OnBatchFetched(e BatchFetched) { defer h.lock()(); h.fetched = append(h.fetched, e) }
func (h *hookLog) OnFetchError(e FetchError) {
	defer h.lock()()
	h.fetchErrors = append(h.fetchErrors, e)
}
func (h *hookLog) OnBatchProcessed(e BatchProcessed) {
	defer h.lock()()
	h.processed = append(h.processed, e)
}
func (h *hookLog) OnRecordsDropped(e RecordsDropped) {
	defer h.lock()()
	h.dropped = append(h.dropped, e)
}
func (h *hookLog) OnCheckpoint(e lease.CheckpointWrite) {
	defer h.lock()()
	h.checkpoints = append(h.checkpoints, e)
}
func (h *hookLog) OnShardState(e ShardStateChange) {
	defer h.lock()()
	h.states[e.Shard] = append(h.states[e.Shard], e)
}

// stateNames returns the states a shard went through, in order.
func (h *hookLog) stateNames(shard string) []string {
	defer h.lock()()
	var out []string
	for _, e := range h.states[shard] {
		out = append(out, e.State.String())
	}
	return out
}

// processedOK sums the records of the batches processed without error.
func (h *hookLog) processedOK() int {
	defer h.lock()()
	n := 0
	for _, e := range h.processed {
		if e.Err == nil {
			n += e.Records
		}
	}
	return n
}

func (h *hookLog) droppedRecords() int {
	defer h.lock()()
	n := 0
	for _, e := range h.dropped {
		n += e.Records
	}
	return n
}

const shard0, shard1 = "shardId-000000000000", "shardId-000000000001"

func TestHooksHearTheConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		putPlain(stream, "r", 50, 10)
		stream.FailNext(kcltest.OpGetRecords, kcltest.ThrottlingError())
		col := newCollector()
		var failed atomic.Bool
		h := newHookLog()
		cfg := testConfig(stream, lease.NewMemoryStore(), "w1", func(string) RecordProcessor {
			return RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
				if !failed.Swap(true) {
					return errors.New("downstream down")
				}
				col.add(b)
				return nil
			})
		})
		cfg.Hooks = []Hook{h, nil}
		r := start(t, cfg)
		waitFor(t, time.Minute, "every record", func() bool { return col.unique() == 50 })
		time.Sleep(time.Second) // the last checkpoints
		r.stop(t)

		require.Equal(t, []*Consumer{r.c}, h.started)
		require.Equal(t, []*Consumer{r.c}, h.stopped)
		require.Equal(t, 50, h.processedOK(), "each record counted once, the failed call's none")
		var bytes, want int64
		for _, e := range h.processed {
			if e.Err == nil {
				bytes += e.Bytes
			}
		}
		for _, recs := range col.records {
			for _, rec := range recs {
				want += int64(len(rec.Data))
			}
		}
		require.Equal(t, want, bytes)
		var failures []BatchProcessed
		for _, e := range h.processed {
			require.Equal(t, testStream, e.Stream)
			require.Equal(t, "w1", e.Worker)
			require.Contains(t, []string{shard0, shard1}, e.Shard)
			if e.Err != nil {
				failures = append(failures, e)
			}
		}
		require.Len(t, failures, 1)
		require.Equal(t, 1, failures[0].Attempt)
		retried := slices.ContainsFunc(h.processed, func(e BatchProcessed) bool {
			return e.Shard == failures[0].Shard && e.Attempt == 2 && e.Err == nil
		})
		require.True(t, retried, "the failed batch is delivered again, attempt 2")

		fetchedRecords := 0
		for _, e := range h.fetched {
			fetchedRecords += e.Records
		}
		require.Equal(t, 50, fetchedRecords)
		require.Len(t, h.fetchErrors, 1)
		require.True(t, h.fetchErrors[0].Throttled)
		require.Equal(t, "throttled", h.fetchErrors[0].Result())
		require.Equal(t, 1, h.fetchErrors[0].Attempt)

		for _, s := range []string{shard0, shard1} {
			require.Equal(t, []string{"starting", "initializing", "processing", "shutting_down", "stopped"}, h.stateNames(s), s)
			require.NoError(t, h.states[s][len(h.states[s])-1].Cause)
		}
		require.NotEmpty(t, h.checkpoints, "the lease manager's hooks are the consumer's")
		require.Equal(t, testStream, h.checkpoints[0].Stream)
	})
}

func TestHookStoppedHearsALostLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		store := lease.NewMemoryStore()
		h := newHookLog()
		cfg := testConfig(stream, store, "w1", newCollector().processor())
		cfg.Hooks = []Hook{h}
		start(t, cfg)
		waitFor(t, time.Minute, "the shard processing", func() bool { return len(h.stateNames(shard0)) >= 3 })
		// Another worker takes the lease behind w1's back.
		l := leaseOf(t, store, shard0)
		_, err := store.Take(context.Background(), l, "thief")
		require.NoError(t, err)
		waitFor(t, time.Minute, "the worker stopped", func() bool {
			names := h.stateNames(shard0)
			return names[len(names)-1] == "stopped"
		})
		h.mu.Lock()
		last := h.states[shard0][len(h.states[shard0])-1]
		h.mu.Unlock()
		require.ErrorIs(t, last.Cause, ErrLeaseLost)
	})
}

func TestHookDroppedRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		putMixedAggregates(t, stream, 3, 20)
		for _, drop := range []bool{false, true} {
			h := newHookLog()
			cfg := testConfig(stream, lease.NewMemoryStore(), "w1", newCollector().processor())
			cfg.DropMisroutedAggregates, cfg.Hooks = drop, []Hook{h}
			r := start(t, cfg)
			waitFor(t, time.Minute, fmt.Sprintf("the aggregates (drop %v)", drop), func() bool {
				if drop {
					return h.droppedRecords() == 60
				}
				return h.processedOK() == 60
			})
			r.stop(t)
			misrouted := 0
			for _, e := range h.processed {
				misrouted += e.Misrouted
			}
			if drop {
				for _, e := range h.dropped {
					require.Equal(t, RecordsDropped{Stream: testStream, Worker: "w1", Shard: shard0, Records: e.Records, Reason: DropMisrouted}, e)
				}
				require.Zero(t, misrouted)
			} else {
				require.Empty(t, h.dropped)
				require.Equal(t, 30, misrouted, "half of each aggregate's keys are shard 1's")
			}
		}
	})
}

// With enhanced fan-out the hooks hear every event, marked FanOut, with the
// wait for it as its latency; and a refused subscription as a fetch error.
func TestHooksHearFanOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 10, 5)
		var refused atomic.Bool
		k, _ := newFanOut(stream, efotest.Options{Heartbeat: time.Hour, Fault: func(p efotest.FaultPoint) error {
			if p.Op == "SubscribeToShard" && !refused.Swap(true) {
				return &types.ResourceInUseException{Message: aws.String("another subscription is open")}
			}
			return nil
		}})
		col := newCollector()
		h := newHookLog()
		cfg := fanOutConfig(k, lease.NewMemoryStore(), "w1", col.processor())
		cfg.Hooks = []Hook{h}
		r := start(t, cfg)
		waitFor(t, time.Minute, "10 records", func() bool { return col.unique() == 10 })
		const idle = 3 * time.Second
		time.Sleep(idle)
		putPlain(stream, "y", 10, 5)
		waitFor(t, time.Minute, "20 records", func() bool { return col.unique() == 20 })
		r.stop(t)

		records := 0
		var waited time.Duration
		for _, e := range h.fetched {
			require.True(t, e.FanOut, "every batch came from an event")
			require.Equal(t, shard0, e.Shard)
			records += e.Records
			waited = max(waited, e.Latency)
		}
		require.Equal(t, 20, records)
		require.GreaterOrEqual(t, waited, idle, "the latency of an event is the wait for it")
		require.Len(t, h.fetchErrors, 1)
		require.True(t, h.fetchErrors[0].FanOut)
		require.Equal(t, 1, h.fetchErrors[0].Attempt)
		require.Equal(t, "error", h.fetchErrors[0].Result())
	})
}

// leaseEvents records the lease events a consumer's hooks hear.
type leaseEvents struct {
	mu sync.Mutex
	ev []string // "kind/reason shard"
}

func (l *leaseEvents) OnLeaseEvent(e lease.LeaseEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e.Kind.String()+"/"+e.Reason.String()+" "+e.Shard)
}

func (l *leaseEvents) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ev)
}

// A shard worker handing its lease over is handing_off (in Status, with the
// worker it goes to, and for the hooks), then stopped without a cause; the
// lease events say handed off on the holder and taken by hand-off on the
// new owner, and nobody lost anything.
func TestHooksHearAHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		putPlain(stream, "r", 40, 10)
		store := lease.NewMemoryStore()
		col := newCollector()
		release := make(chan struct{})
		h1, l1, l2 := newHookLog(), &leaseEvents{}, &leaseEvents{}
		c1 := testConfig(stream, store, "w1", func(string) RecordProcessor { return &slowShutdown{col: col, release: release} })
		c1.Hooks = []Hook{h1, l1}
		r1 := start(t, c1)
		waitFor(t, time.Minute, "w1 to process every record", func() bool { return col.unique() == 40 })

		c2 := testConfig(stream, store, "w2", col.processor())
		c2.Hooks = []Hook{l2}
		r2 := start(t, c2)
		var moved ShardStatus
		waitFor(t, time.Minute, "a shard of w1 handing off", func() bool {
			for _, s := range r1.c.Status().Shards {
				if s.State == ShardHandingOff {
					moved = s
					return true
				}
			}
			return false
		})
		require.Equal(t, "w2", moved.HandOffTo)
		close(release)
		waitFor(t, time.Minute, "w2 to hold the shard", func() bool {
			st := r2.c.Status()
			return len(st.Shards) == 1 && st.Shards[0].ShardID == moved.ShardID
		})
		r1.stop(t)
		r2.stop(t)

		require.Equal(t, []string{"starting", "initializing", "processing", "handing_off", "stopped"}, h1.stateNames(moved.ShardID))
		h1.mu.Lock()
		require.NoError(t, h1.states[moved.ShardID][4].Cause)
		h1.mu.Unlock()
		require.Subset(t, l1.get(), []string{"hand_off_asked/hand_off " + moved.ShardID, "handed_off/hand_off " + moved.ShardID})
		require.Contains(t, l2.get(), "taken/hand_off "+moved.ShardID)
		for _, e := range append(l1.get(), l2.get()...) {
			require.NotContains(t, e, "lost/")
		}
	})
}

// slowShutdown processes into a collector, and returns from
// ShutdownRequested only once release is closed.
type slowShutdown struct {
	col     *collector
	release <-chan struct{}
}

func (p *slowShutdown) ProcessRecords(_ context.Context, b *Batch) error {
	p.col.add(b)
	return nil
}

func (p *slowShutdown) ShutdownRequested(ctx context.Context, _ ShardInfo) error {
	select {
	case <-p.release:
	case <-ctx.Done():
	}
	return nil
}
