package consumer_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// measuredStream is the fake stream, measuring the bytes of the records
// GetRecords returned that no ProcessRecords call has finished with yet:
// payload plus a Record value each (the records are plain), as the budget
// counts them.
type measuredStream struct {
	*kcltest.Stream
	out, peak atomic.Int64
}

func (s *measuredStream) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	res, err := s.Stream.GetRecords(ctx, in, opts...)
	if err == nil {
		var n int64
		for _, r := range res.Records {
			n += int64(len(r.Data)) + RecordSize
		}
		s.add(n)
	}
	return res, err
}

func (s *measuredStream) add(n int64) {
	now := s.out.Add(n)
	for {
		p := s.peak.Load()
		if now <= p || s.peak.CompareAndSwap(p, now) {
			return
		}
	}
}

func (s *measuredStream) processed(b *Batch) {
	var n int64
	for _, r := range b.Records {
		n += int64(len(r.Data)) + RecordSize
	}
	s.add(-n)
}

func TestMaxBufferedBytesBoundsManyShardsOfBigRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 200 shards of four 256 KiB records each, an 8 MiB budget, and
		// processors stuck at first: the first response of every shard
		// holds all four records (1 MiB), so reserving less than the worst
		// case before the call buffers up to 200 MiB.
		const shards, perShard, size = 200, 4, 256 << 10
		const budget = 8 << 20
		stream := &measuredStream{Stream: newStream(testStream, shards)}
		payload := make([]byte, size)
		for i := range shards {
			for range perShard {
				stream.Put("k", hashIn(int64(i), shards), payload) // the first key of shard i
			}
		}
		gate := make(chan struct{})
		var delivered atomic.Int64
		proc := RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
			stream.processed(b)
			delivered.Add(int64(len(b.Records)))
			return nil
		})
		cfg := testConfig(stream.Stream, lease.NewMemoryStore(), "w1", func(string) RecordProcessor { return proc })
		cfg.Kinesis = stream
		cfg.MaxBufferedBytes = budget
		r := start(t, cfg)
		time.Sleep(30 * time.Second) // every shard leased, every fetcher blocked
		synctest.Wait()
		require.LessOrEqual(t, stream.peak.Load(), int64(budget), "bytes buffered while the processors are stuck")
		close(gate)
		waitFor(t, 10*time.Minute, "every record", func() bool { return delivered.Load() == shards*perShard })
		r.stop(t)
		t.Logf("peak bytes buffered: %d of %d", stream.peak.Load(), budget)
		require.LessOrEqual(t, stream.peak.Load(), int64(budget), "peak bytes buffered")
		require.Zero(t, r.c.BufferedBytes(), "every byte returned")
	})
}

func TestAggregatesBiggerThanTheBudgetArriveInParts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Aggregates of 20,000 one-byte user records: 140 kB of payload,
		// but 20,000 Records (over 2 MB) once unpacked, more than the
		// budget. They are delivered in parts, each within the budget.
		const perAggregate, aggregates = 20000, 3
		stream := newStream(testStream, 1)
		for range aggregates {
			var agg deagg.Aggregator
			for i := range perAggregate {
				if r, err := agg.Add("k", "", []byte{byte(i)}); err != nil || r != nil {
					t.Fatalf("aggregate of %d records did not stay whole: %v", perAggregate, err)
				}
			}
			r := agg.Flush()
			stream.Put(r.PartitionKey, r.ExplicitHashKey, r.Data)
		}
		var mu sync.Mutex
		var got []checkpoint.Position
		var biggest int
		proc := RecordProcessorFunc(func(_ context.Context, b *Batch) error {
			mu.Lock()
			defer mu.Unlock()
			biggest = max(biggest, len(b.Records))
			for _, r := range b.Records {
				got = append(got, r.Position())
			}
			return nil
		})
		cfg := testConfig(stream, lease.NewMemoryStore(), "w1", func(string) RecordProcessor { return proc })
		cfg.MaxBufferedBytes = 2 << 20
		r := start(t, cfg)
		waitFor(t, time.Minute, "every user record", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) == perAggregate*aggregates
		})
		r.stop(t)
		mu.Lock()
		defer mu.Unlock()
		require.LessOrEqual(t, int64(biggest)*RecordSize, cfg.MaxBufferedBytes, "the Records of one batch fit in the budget")
		require.Less(t, biggest, perAggregate, "an aggregate came in parts")
		for i := 1; i < len(got); i++ {
			require.Equal(t, 1, got[i].Compare(got[i-1]), "in order, once each: %v after %v", got[i], got[i-1])
		}
	})
}

func TestStuckProcessorHoldsAtMostTwoBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Plenty to read and a budget that allows read-ahead: while the
		// processor is stuck on its first batch, the fetcher may fetch one
		// batch ahead, and no more.
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 1000, 10)
		stuck := make(chan struct{})
		var batches atomic.Int32
		proc := RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
			batches.Add(1)
			select {
			case <-stuck:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		r := start(t, testConfig(stream, lease.NewMemoryStore(), "w1", func(string) RecordProcessor { return proc }))
		waitFor(t, time.Minute, "the first batch", func() bool { return batches.Load() == 1 })
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Equal(t, 2, stream.Calls("GetRecords"), "batches fetched: one in the processor, one read ahead")
		close(stuck)
		r.stop(t)
	})
}
