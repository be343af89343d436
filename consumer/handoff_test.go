package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/stretchr/testify/require"

	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// calls counts lifecycle calls per worker.
type calls struct {
	mu sync.Mutex
	n  map[string]int // "<worker> <call>"
}

func (c *calls) note(worker, what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[worker+" "+what]++
}

func (c *calls) get(worker, what string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[worker+" "+what]
}

// handOffProc processes into a collector and counts ShutdownRequested and
// LeaseLost per worker.
type handOffProc struct {
	worker string
	col    *collector
	calls  *calls
}

func (p *handOffProc) ProcessRecords(_ context.Context, b *Batch) error {
	p.col.add(b)
	return nil
}

func (p *handOffProc) ShutdownRequested(context.Context, ShardInfo) error {
	p.calls.note(p.worker, "shutdown")
	return nil
}

func (p *handOffProc) LeaseLost(context.Context, ShardInfo) { p.calls.note(p.worker, "lost") }

// produce writes a record every interval until stop is closed; it returns
// how many it wrote.
func produce(stream *kcltest.Stream, every time.Duration, stop <-chan struct{}) <-chan int {
	n := make(chan int, 1)
	go func() {
		i := 0
		for {
			select {
			case <-stop:
				n <- i
				return
			case <-time.After(every):
			}
			putPlain1(stream, i)
			i++
		}
	}()
	return n
}

func putPlain1(stream *kcltest.Stream, i int) {
	if _, err := stream.Put(fmt.Sprintf("key-%d", i%40), "", []byte(fmt.Sprintf("r-%d", i))); err != nil {
		panic(err)
	}
}

func owners(t *testing.T, store lease.Store) (map[string]int, bool) {
	o := map[string]int{}
	pending := false
	for _, l := range allLeases(t, store) {
		if !l.Finished() {
			o[l.Owner]++
		}
		pending = pending || l.CheckpointOwner != ""
	}
	return o, pending
}

// Scale-out while records flow: the new workers' shards move by hand-off.
// The holder's shard workers finish their batch, hear ShutdownRequested and
// checkpoint; the new owners start after that checkpoint. No record is
// processed twice and nobody hears LeaseLost.
func TestScaleOutHandsLeasesOverWithoutDuplicates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 8)
		store := lease.NewMemoryStore()
		col := newCollector()
		var cs calls
		cfg := func(id string) Config {
			return testConfig(stream, store, id, func(string) RecordProcessor {
				return &handOffProc{worker: id, col: col, calls: &cs}
			})
		}
		stop := make(chan struct{})
		produced := produce(stream, 5*time.Millisecond, stop)
		rs := []*running{start(t, cfg("w1"))}
		waitFor(t, time.Minute, "w1 to own every lease", func() bool { o, _ := owners(t, store); return o["w1"] == 8 })
		time.Sleep(2 * time.Second)

		for _, id := range []string{"w2", "w3", "w4"} {
			rs = append(rs, start(t, cfg(id)))
		}
		waitFor(t, time.Minute, "2 leases each, no hand-off pending", func() bool {
			o, pending := owners(t, store)
			return !pending && o["w1"] == 2 && o["w2"] == 2 && o["w3"] == 2 && o["w4"] == 2
		})
		time.Sleep(2 * time.Second)
		close(stop)
		n := <-produced
		waitFor(t, time.Minute, "every record", func() bool { return col.unique() == n })
		for _, r := range rs {
			r.stop(t)
		}
		require.Zero(t, col.duplicates(), "a hand-off processes nothing twice")
		for _, id := range []string{"w1", "w2", "w3", "w4"} {
			require.Zero(t, cs.get(id, "lost"), "%s heard LeaseLost", id)
		}
		require.Equal(t, 6+2, cs.get("w1", "shutdown"), "6 hand-offs, and w1's own 2 at its shutdown")
	})
}

// A manual checkpointer checkpoints in ShutdownRequested; the new owner
// starts after that checkpoint.
func TestHandOffLetsAManualCheckpointerCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		store := lease.NewMemoryStore()
		col := newCollector()
		newProc := func(string) RecordProcessor { return &manualProc{col: col} }
		stop := make(chan struct{})
		produced := produce(stream, 10*time.Millisecond, stop)
		c1 := testConfig(stream, store, "w1", newProc)
		c1.ManualCheckpoint = true
		r1 := start(t, c1)
		waitFor(t, time.Minute, "w1 to own both leases", func() bool { o, _ := owners(t, store); return o["w1"] == 2 })
		time.Sleep(time.Second)
		c2 := c1
		c2.WorkerID = "w2"
		r2 := start(t, c2)
		waitFor(t, time.Minute, "one lease each", func() bool {
			o, pending := owners(t, store)
			return !pending && o["w1"] == 1 && o["w2"] == 1
		})
		time.Sleep(time.Second)
		close(stop)
		n := <-produced
		waitFor(t, time.Minute, "every record", func() bool { return col.unique() == n })
		r1.stop(t)
		r2.stop(t)
		require.Zero(t, col.duplicates())
	})
}

// manualProc checkpoints only when asked to shut down, at the last record
// it processed.
type manualProc struct {
	col  *collector
	last *Batch
}

func (p *manualProc) ProcessRecords(_ context.Context, b *Batch) error {
	p.col.add(b)
	p.last = b
	return nil
}

func (p *manualProc) ShutdownRequested(ctx context.Context, _ ShardInfo) error {
	if p.last == nil {
		return nil
	}
	return p.last.Checkpoint(ctx)
}

// A lone worker on a new application owns its leases as soon as its shard
// syncer created them, not a taker cycle later, and reads at once. Every
// call to the stream and the table takes 5ms here, so that the taker's first
// scan comes before the leases exist, as it does against real services.
func TestLoneWorkerStartsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 4)
		putPlain(stream, "x", 40, 40)
		store := &slowStore{MemoryStore: lease.NewMemoryStore()}
		col := newCollector()
		cfg := testConfig(stream, store, "w1", col.processor())
		cfg.Kinesis = slowKinesis{stream}
		cfg.FailoverTime, cfg.TakerInterval = 10*time.Second, 5*time.Second
		started := time.Now()
		r := start(t, cfg)
		waitFor(t, time.Minute, "40 records", func() bool { return col.unique() == 40 })
		took := time.Since(started)
		r.stop(t)
		t.Logf("spawn → every record processed: %v (store and stream calls of %v)", took, callLatency)
		require.Less(t, took, 200*time.Millisecond, "a few round trips, not the 5s taker cycle")
	})
}

// callLatency is how long every call of slowStore and slowKinesis takes.
const callLatency = 5 * time.Millisecond

// slowStore is a MemoryStore whose every call takes callLatency.
type slowStore struct{ *lease.MemoryStore }

func (s *slowStore) List(ctx context.Context) ([]lease.Lease, error) {
	time.Sleep(callLatency)
	return s.MemoryStore.List(ctx)
}

func (s *slowStore) ListAll(ctx context.Context) ([]lease.Lease, []lease.Worker, error) {
	time.Sleep(callLatency)
	return s.MemoryStore.ListAll(ctx)
}

func (s *slowStore) Create(ctx context.Context, l lease.Lease) error {
	time.Sleep(callLatency)
	return s.MemoryStore.Create(ctx, l)
}

func (s *slowStore) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	time.Sleep(callLatency)
	return s.MemoryStore.Renew(ctx, l)
}

func (s *slowStore) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	time.Sleep(callLatency)
	return s.MemoryStore.Take(ctx, l, owner)
}

func (s *slowStore) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	time.Sleep(callLatency)
	return s.MemoryStore.Release(ctx, l)
}

func (s *slowStore) UpdateCheckpoint(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	time.Sleep(callLatency)
	return s.MemoryStore.UpdateCheckpoint(ctx, l)
}

func (s *slowStore) Get(ctx context.Context, key string) (lease.Lease, error) {
	time.Sleep(callLatency)
	return s.MemoryStore.Get(ctx, key)
}

func (s *slowStore) HandOff(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	time.Sleep(callLatency)
	return s.MemoryStore.HandOff(ctx, l, to)
}

func (s *slowStore) Heartbeat(ctx context.Context, id string) (lease.Worker, error) {
	time.Sleep(callLatency)
	return s.MemoryStore.Heartbeat(ctx, id)
}

// slowKinesis is a stream whose every call takes callLatency.
type slowKinesis struct{ s *kcltest.Stream }

func (k slowKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	time.Sleep(callLatency)
	return k.s.ListShards(ctx, in, opts...)
}

func (k slowKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, opts ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	time.Sleep(callLatency)
	return k.s.GetShardIterator(ctx, in, opts...)
}

func (k slowKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	time.Sleep(callLatency)
	return k.s.GetRecords(ctx, in, opts...)
}
