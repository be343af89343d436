package kclotel

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/lease"
)

type fakeStatus struct {
	mu sync.Mutex
	st consumer.Status
}

func (f *fakeStatus) Status() consumer.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeStatus) set(st consumer.Status) {
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
}

// newMetrics returns a Metrics on an SDK meter provider read by hand.
func newMetrics(t *testing.T) (*Metrics, *sdkmetric.ManualReader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	m, err := New(Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m, r
}

// collect returns every data point of the instrument name, keyed by its
// attributes ("k=v,k=v", sorted); histograms give their count.
func collect(t *testing.T, r *sdkmetric.ManualReader, name string) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[attrString(p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[attrString(p.Attributes)] = float64(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[attrString(p.Attributes)] = float64(p.Count)
				}
			default:
				t.Fatalf("%s: unexpected data %T", name, m.Data)
			}
		}
	}
	return out
}

func attrString(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func processed(shard string, records int, err error) consumer.BatchProcessed {
	return consumer.BatchProcessed{Stream: "orders", Worker: "w1", Shard: shard, Records: records,
		Bytes: int64(records) * 100, Duration: 3 * time.Millisecond, Attempt: 1, Err: err}
}

func TestProcessedRecords(t *testing.T) {
	m, r := newMetrics(t)
	m.OnBatchProcessed(processed("s-1", 100, nil))
	m.OnBatchProcessed(processed("s-1", 50, errors.New("downstream down")))
	m.OnBatchProcessed(processed("s-1", 50, nil))
	m.OnBatchProcessed(processed("s-2", 7, nil))
	require.Equal(t, map[string]float64{
		"shard=s-1,stream=orders,worker=w1": 150,
		"shard=s-2,stream=orders,worker=w1": 7,
	}, collect(t, r, "gokcl.records.processed"))
	require.Equal(t, map[string]float64{
		"shard=s-1,stream=orders,worker=w1": 15000,
		"shard=s-2,stream=orders,worker=w1": 700,
	}, collect(t, r, "gokcl.bytes.processed"))
	require.Equal(t, map[string]float64{"shard=s-1,stream=orders,worker=w1": 1}, collect(t, r, "gokcl.process.errors"))
	require.Equal(t, map[string]float64{"stream=orders": 4}, collect(t, r, "gokcl.process.duration"))
}

func TestFetchAndLeaseInstruments(t *testing.T) {
	m, r := newMetrics(t)
	m.OnBatchFetched(consumer.BatchFetched{Stream: "orders", Records: 3, Latency: 20 * time.Millisecond})
	m.OnFetchError(consumer.FetchError{Stream: "orders", Throttled: true})
	m.OnRecordsDropped(consumer.RecordsDropped{Stream: "orders", Records: 4, Reason: consumer.DropMisrouted})
	lost := fmt.Errorf("refused: %w", lease.ErrLeaseLost)
	m.OnCheckpoint(lease.CheckpointWrite{Stream: "orders", Kind: lease.CheckpointShardEnd})
	m.OnCheckpoint(lease.CheckpointWrite{Stream: "orders", Kind: lease.CheckpointNow, Err: lost})
	m.OnRenewal(lease.Renewal{Stream: "orders", Err: errors.New("timeout")})
	m.OnLeaseEvent(lease.LeaseEvent{Stream: "orders", Worker: "w1", Kind: lease.LeaseTaken, Reason: lease.ReasonExpired})
	m.OnTakerCycle(lease.TakerCycle{Stream: "orders", Worker: "w1", Unfinished: 6, Workers: 3})
	m.OnTakerCycle(lease.TakerCycle{Stream: "orders", Worker: "w1", Err: errors.New("scan failed")})

	require.Equal(t, map[string]float64{"result=success,stream=orders": 1, "result=throttled,stream=orders": 1}, collect(t, r, "gokcl.get_records"))
	require.Equal(t, map[string]float64{"stream=orders": 3}, collect(t, r, "gokcl.records.fetched"))
	require.Equal(t, map[string]float64{"stream=orders": 1}, collect(t, r, "gokcl.get_records.duration"))
	require.Equal(t, map[string]float64{"reason=misrouted_aggregate,stream=orders": 4}, collect(t, r, "gokcl.records.dropped"))
	require.Equal(t, map[string]float64{
		"kind=shard_end,result=success,stream=orders": 1, "kind=now,result=lease_lost,stream=orders": 1,
	}, collect(t, r, "gokcl.checkpoints"))
	require.Equal(t, map[string]float64{"stream=orders": 2}, collect(t, r, "gokcl.checkpoint.duration"))
	require.Equal(t, map[string]float64{"result=error,stream=orders": 1}, collect(t, r, "gokcl.lease.renewals"))
	require.Equal(t, map[string]float64{"event=taken,reason=expired,stream=orders,worker=w1": 1}, collect(t, r, "gokcl.lease.events"))
	require.Equal(t, map[string]float64{"result=success,stream=orders": 1, "result=error,stream=orders": 1}, collect(t, r, "gokcl.taker.cycles"))
	require.Equal(t, map[string]float64{"stream=orders,worker=w1": 6}, collect(t, r, "gokcl.lease_table.leases"))
	require.Equal(t, map[string]float64{"stream=orders,worker=w1": 3}, collect(t, r, "gokcl.lease_table.workers"))
}

func held(worker string, shards ...consumer.ShardStatus) consumer.Status {
	return consumer.Status{Stream: "orders", WorkerID: worker, Running: true, Shards: shards, BufferedBytes: 4096, MaxBufferedBytes: 1 << 20}
}

func TestStatusGauges(t *testing.T) {
	m, r := newMetrics(t)
	w1, dup := &fakeStatus{}, &fakeStatus{}
	w1.set(held("w1",
		consumer.ShardStatus{ShardID: "s-1", State: consumer.ShardProcessing, MillisBehindLatest: 1500},
		consumer.ShardStatus{ShardID: "s-2", State: consumer.ShardWaitingForParents}))
	dup.set(held("w1", consumer.ShardStatus{ShardID: "s-1", MillisBehindLatest: 99}))
	m.watch(w1)
	m.watch(dup)
	require.Equal(t, map[string]float64{
		"shard=s-1,stream=orders,worker=w1": 1500,
		"shard=s-2,stream=orders,worker=w1": 0,
	}, collect(t, r, "gokcl.millis_behind_latest"), "a worker reported twice is observed once")
	require.Equal(t, map[string]float64{
		"shard=s-1,state=processing,stream=orders,worker=w1":          1,
		"shard=s-2,state=waiting_for_parents,stream=orders,worker=w1": 1,
	}, collect(t, r, "gokcl.shard.state"))
	require.Equal(t, map[string]float64{"stream=orders,worker=w1": 2}, collect(t, r, "gokcl.leases.held"))
	require.Equal(t, map[string]float64{"stream=orders,worker=w1": 4096}, collect(t, r, "gokcl.buffered_bytes"))
	require.Equal(t, map[string]float64{"stream=orders,worker=w1": 1 << 20}, collect(t, r, "gokcl.buffered_bytes.limit"))
	require.Equal(t, map[string]float64{"stream=orders,worker=w1": 1}, collect(t, r, "gokcl.healthy"))

	// s-1 is stolen: the next collection has no lag for it.
	st := held("w1", consumer.ShardStatus{ShardID: "s-2", State: consumer.ShardProcessing, MillisBehindLatest: 7})
	st.Problems = []string{"lease s-2 not renewed for 9s"}
	w1.set(st)
	require.Equal(t, map[string]float64{"shard=s-2,stream=orders,worker=w1": 7}, collect(t, r, "gokcl.millis_behind_latest"))
	require.Equal(t, map[string]float64{"stream=orders,worker=w1": 0}, collect(t, r, "gokcl.healthy"))

	m.unwatch(w1)
	m.unwatch(dup)
	require.Empty(t, collect(t, r, "gokcl.millis_behind_latest"))
}

func TestCloseStopsReadingStatus(t *testing.T) {
	r := sdkmetric.NewManualReader()
	m, err := New(Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))})
	require.NoError(t, err)
	w := &fakeStatus{}
	w.set(held("w1", consumer.ShardStatus{ShardID: "s-1"}))
	m.watch(w)
	require.Len(t, collect(t, r, "gokcl.millis_behind_latest"), 1)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close())
	require.Empty(t, collect(t, r, "gokcl.millis_behind_latest"))
}

// Once a shard's attributes are in use, recording a batch allocates
// nothing, with the SDK behind the instruments.
func TestRecordingDoesNotAllocate(t *testing.T) {
	m, _ := newMetrics(t)
	b := processed("s-1", 500, nil)
	f := consumer.BatchFetched{Stream: "orders", Worker: "w1", Shard: "s-1", Records: 5}
	m.OnBatchProcessed(b)
	m.OnBatchFetched(f)
	allocs := testing.AllocsPerRun(200, func() {
		m.OnBatchProcessed(b)
		m.OnBatchFetched(f)
	})
	require.Zero(t, allocs)
}

func TestStoppedShardAttributesForgotten(t *testing.T) {
	m, _ := newMetrics(t)
	m.OnBatchProcessed(processed("s-1", 1, nil))
	key := attrKey{kind: kShard, a: "orders", b: "w1", c: "s-1"}
	m.attrs.mu.RLock()
	_, ok := m.attrs.opts[key]
	m.attrs.mu.RUnlock()
	require.True(t, ok)
	m.OnShardState(consumer.ShardStateChange{Stream: "orders", Worker: "w1", Shard: "s-1", State: consumer.ShardStopped})
	m.attrs.mu.RLock()
	_, ok = m.attrs.opts[key]
	m.attrs.mu.RUnlock()
	require.False(t, ok)
}

func TestCustomBuckets(t *testing.T) {
	r := sdkmetric.NewManualReader()
	m, err := New(Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)), DurationBuckets: []float64{0.1, 1}})
	require.NoError(t, err)
	defer m.Close()
	m.OnBatchProcessed(processed("s-1", 1, nil))
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, x := range sm.Metrics {
			if x.Name == "gokcl.process.duration" {
				require.Equal(t, []float64{0.1, 1}, x.Data.(metricdata.Histogram[float64]).DataPoints[0].Bounds)
				require.Equal(t, "s", x.Unit)
			}
		}
	}
}

// A multi-stream consumer's Status names no stream of its own, and shard ids
// repeat from stream to stream: each shard's lag and state carry the
// shard's stream, so that two streams' shardId-000000000000 are two data
// points rather than one overwriting the other.
func TestMultiStreamShardsCarryTheirStream(t *testing.T) {
	m, r := newMetrics(t)
	w := &fakeStatus{}
	w.set(consumer.Status{WorkerID: "w1", Running: true, Shards: []consumer.ShardStatus{
		{Stream: "orders", StreamID: "123456789012:orders:1", ShardID: "shardId-000000000000", State: consumer.ShardProcessing, MillisBehindLatest: 1500},
		{Stream: "payments", StreamID: "123456789012:payments:1", ShardID: "shardId-000000000000", State: consumer.ShardWaitingForParents, MillisBehindLatest: 20},
	}})
	m.watch(w)
	require.Equal(t, map[string]float64{
		"shard=shardId-000000000000,stream=orders,worker=w1":   1500,
		"shard=shardId-000000000000,stream=payments,worker=w1": 20,
	}, collect(t, r, "gokcl.millis_behind_latest"))
	require.Equal(t, map[string]float64{
		"shard=shardId-000000000000,state=processing,stream=orders,worker=w1":            1,
		"shard=shardId-000000000000,state=waiting_for_parents,stream=payments,worker=w1": 1,
	}, collect(t, r, "gokcl.shard.state"))
	require.Equal(t, map[string]float64{"stream=,worker=w1": 2}, collect(t, r, "gokcl.leases.held"))
}
