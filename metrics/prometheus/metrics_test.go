package kclprom

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/lease"
)

// fakeStatus is a consumer's Status that the test changes.
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

// registered returns a Metrics in a pedantic registry, which checks that
// what is collected matches what is described.
func registered(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	m := New(Options{})
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(m))
	return m, reg
}

// series returns the value of every series of the metric name, keyed by its
// labels ("k=v,k=v", sorted as the registry sorts them); histograms give
// their sample count.
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[labelString(m)] = value(m)
		}
	}
	return out
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func processed(shard string, records int, err error) consumer.BatchProcessed {
	return consumer.BatchProcessed{Stream: "orders", Worker: "w1", Shard: shard, Records: records,
		Bytes: int64(records) * 100, Duration: 3 * time.Millisecond, Attempt: 1, Err: err}
}

func TestProcessedRecordsPerShard(t *testing.T) {
	m, reg := registered(t)
	m.OnShardState(consumer.ShardStateChange{Stream: "orders", Worker: "w1", Shard: "s-1", State: consumer.ShardStarting})
	require.Equal(t, map[string]float64{"shard=s-1,stream=orders,worker=w1": 0}, series(t, reg, "gokcl_records_processed_total"),
		"a started shard's counter exists at zero, so that rates cover its first batch")

	m.OnBatchProcessed(processed("s-1", 100, nil))
	m.OnBatchProcessed(processed("s-1", 50, errors.New("downstream down")))
	m.OnBatchProcessed(processed("s-1", 50, nil))
	misrouted := processed("s-2", 7, nil)
	misrouted.Misrouted = 3
	m.OnBatchProcessed(misrouted)

	require.Equal(t, map[string]float64{
		"shard=s-1,stream=orders,worker=w1": 150,
		"shard=s-2,stream=orders,worker=w1": 7,
	}, series(t, reg, "gokcl_records_processed_total"), "a failed call processed nothing")
	require.Equal(t, 15700.0, series(t, reg, "gokcl_bytes_processed_total")["shard=s-1,stream=orders,worker=w1"]+
		series(t, reg, "gokcl_bytes_processed_total")["shard=s-2,stream=orders,worker=w1"])
	require.Equal(t, 1.0, series(t, reg, "gokcl_process_errors_total")["shard=s-1,stream=orders,worker=w1"])
	require.Equal(t, map[string]float64{"stream=orders": 3}, series(t, reg, "gokcl_records_misrouted_total"))
	require.Equal(t, map[string]float64{"stream=orders": 4}, series(t, reg, "gokcl_process_duration_seconds"),
		"every call is timed, failed ones included")
}

func TestStoppedShardSeriesAreDeleted(t *testing.T) {
	m, reg := registered(t)
	for _, s := range []string{"s-1", "s-2"} {
		m.OnShardState(consumer.ShardStateChange{Stream: "orders", Worker: "w1", Shard: s, State: consumer.ShardStarting})
		m.OnBatchProcessed(processed(s, 10, nil))
	}
	m.OnShardState(consumer.ShardStateChange{Stream: "orders", Worker: "w1", Shard: "s-1", State: consumer.ShardStopped,
		Cause: fmt.Errorf("shard worker: %w", lease.ErrLeaseLost)})
	for _, name := range []string{"gokcl_records_processed_total", "gokcl_bytes_processed_total", "gokcl_process_errors_total"} {
		got := series(t, reg, name)
		require.NotContains(t, got, "shard=s-1,stream=orders,worker=w1", name)
		require.Contains(t, got, "shard=s-2,stream=orders,worker=w1", name)
	}
}

func TestFetchResults(t *testing.T) {
	m, reg := registered(t)
	m.OnBatchFetched(consumer.BatchFetched{Stream: "orders", Shard: "s-1", Records: 3, Latency: 20 * time.Millisecond})
	m.OnBatchFetched(consumer.BatchFetched{Stream: "orders", Shard: "s-1", Records: 0})
	m.OnFetchError(consumer.FetchError{Stream: "orders", Shard: "s-1", Throttled: true, Err: errors.New("slow down")})
	m.OnFetchError(consumer.FetchError{Stream: "orders", Shard: "s-1", ExpiredIterator: true})
	m.OnFetchError(consumer.FetchError{Stream: "orders", Shard: "s-1", Err: errors.New("reset")})
	require.Equal(t, map[string]float64{
		"result=success,stream=orders": 2, "result=throttled,stream=orders": 1,
		"result=expired_iterator,stream=orders": 1, "result=error,stream=orders": 1,
	}, series(t, reg, "gokcl_get_records_total"))
	require.Equal(t, map[string]float64{"stream=orders": 3}, series(t, reg, "gokcl_records_fetched_total"))
	require.Equal(t, map[string]float64{"stream=orders": 2}, series(t, reg, "gokcl_get_records_duration_seconds"))

	m.OnRecordsDropped(consumer.RecordsDropped{Stream: "orders", Shard: "s-1", Records: 4, Reason: consumer.DropMisrouted})
	require.Equal(t, map[string]float64{"reason=misrouted_aggregate,stream=orders": 4}, series(t, reg, "gokcl_records_dropped_total"))
}

func TestLeaseMetrics(t *testing.T) {
	m, reg := registered(t)
	lost := fmt.Errorf("lease s-1: checkpoint refused: %w", lease.ErrLeaseLost)
	m.OnCheckpoint(lease.CheckpointWrite{Stream: "orders", Worker: "w1", Shard: "s-1", Kind: lease.CheckpointNow, Latency: time.Millisecond})
	m.OnCheckpoint(lease.CheckpointWrite{Stream: "orders", Worker: "w1", Shard: "s-1", Kind: lease.CheckpointDeferred})
	m.OnCheckpoint(lease.CheckpointWrite{Stream: "orders", Worker: "w1", Shard: "s-1", Kind: lease.CheckpointNow, Err: lost})
	m.OnCheckpoint(lease.CheckpointWrite{Stream: "orders", Worker: "w1", Shard: "s-1", Kind: lease.CheckpointNow, Err: errors.New("timeout")})
	require.Equal(t, map[string]float64{
		"kind=now,result=success,stream=orders": 1, "kind=deferred,result=success,stream=orders": 1,
		"kind=now,result=lease_lost,stream=orders": 1, "kind=now,result=error,stream=orders": 1,
	}, series(t, reg, "gokcl_checkpoints_total"))
	require.Equal(t, map[string]float64{"stream=orders": 4}, series(t, reg, "gokcl_checkpoint_duration_seconds"))

	m.OnLeaseEvent(lease.LeaseEvent{Stream: "orders", Worker: "w1", Shard: "s-1", Kind: lease.LeaseStolen, Reason: lease.ReasonBalance, PreviousOwner: "w2"})
	m.OnLeaseEvent(lease.LeaseEvent{Stream: "orders", Worker: "w1", Shard: "s-1", Kind: lease.LeaseLost, Reason: lease.ReasonRefused, Err: lost})
	require.Equal(t, map[string]float64{
		"event=stolen,reason=balance,stream=orders,worker=w1": 1,
		"event=lost,reason=refused,stream=orders,worker=w1":   1,
	}, series(t, reg, "gokcl_lease_events_total"))

	m.OnRenewal(lease.Renewal{Stream: "orders", Worker: "w1", Shard: "s-1", Latency: 4 * time.Millisecond})
	m.OnRenewal(lease.Renewal{Stream: "orders", Worker: "w1", Shard: "s-1", Err: lost})
	require.Equal(t, map[string]float64{"result=success,stream=orders": 1, "result=lease_lost,stream=orders": 1},
		series(t, reg, "gokcl_lease_renewals_total"))

	m.OnTakerCycle(lease.TakerCycle{Stream: "orders", Worker: "w1", Duration: 30 * time.Millisecond, Leases: 9, Unfinished: 6, Workers: 3})
	m.OnTakerCycle(lease.TakerCycle{Stream: "orders", Worker: "w1", Err: errors.New("scan failed")})
	require.Equal(t, map[string]float64{"result=success,stream=orders": 1, "result=error,stream=orders": 1}, series(t, reg, "gokcl_taker_cycles_total"))
	require.Equal(t, map[string]float64{"stream=orders,worker=w1": 6}, series(t, reg, "gokcl_lease_table_leases"),
		"a failed scan leaves the last figure")
	require.Equal(t, map[string]float64{"stream=orders,worker=w1": 3}, series(t, reg, "gokcl_lease_table_workers"))
}

func heldStatus(worker string, shards ...consumer.ShardStatus) consumer.Status {
	return consumer.Status{Stream: "orders", App: "billing", WorkerID: worker, Running: true, Shards: shards,
		BufferedBytes: 4096, MaxBufferedBytes: 1 << 20}
}

func TestStatusGauges(t *testing.T) {
	m, reg := registered(t)
	w1, w2 := &fakeStatus{}, &fakeStatus{}
	w1.set(heldStatus("w1",
		consumer.ShardStatus{ShardID: "s-1", State: consumer.ShardProcessing, MillisBehindLatest: 1500},
		consumer.ShardStatus{ShardID: "s-2", State: consumer.ShardWaitingForParents}))
	w2.set(heldStatus("w2", consumer.ShardStatus{ShardID: "s-3", State: consumer.ShardProcessing, MillisBehindLatest: 20}))
	m.watch(w1)
	m.watch(w2)

	require.Equal(t, map[string]float64{
		"shard=s-1,stream=orders,worker=w1": 1500,
		"shard=s-2,stream=orders,worker=w1": 0,
		"shard=s-3,stream=orders,worker=w2": 20,
	}, series(t, reg, "gokcl_millis_behind_latest"))
	require.Equal(t, map[string]float64{"stream=orders,worker=w1": 2, "stream=orders,worker=w2": 1}, series(t, reg, "gokcl_leases_held"))
	require.Equal(t, map[string]float64{
		"shard=s-1,state=processing,stream=orders,worker=w1":          1,
		"shard=s-2,state=waiting_for_parents,stream=orders,worker=w1": 1,
		"shard=s-3,state=processing,stream=orders,worker=w2":          1,
	}, series(t, reg, "gokcl_shard_state"))
	require.Equal(t, 4096.0, series(t, reg, "gokcl_buffered_bytes")["stream=orders,worker=w1"])
	require.Equal(t, float64(1<<20), series(t, reg, "gokcl_max_buffered_bytes")["stream=orders,worker=w1"])
	require.Equal(t, 1.0, series(t, reg, "gokcl_healthy")["stream=orders,worker=w1"])

	// w2 steals s-1: it leaves w1's Status, and so w1's series.
	w1.set(heldStatus("w1", consumer.ShardStatus{ShardID: "s-2", State: consumer.ShardProcessing}))
	st := heldStatus("w2",
		consumer.ShardStatus{ShardID: "s-1", State: consumer.ShardStarting},
		consumer.ShardStatus{ShardID: "s-3", State: consumer.ShardProcessing, MillisBehindLatest: 20})
	st.Problems = []string{"lease s-3 not renewed for 9s"}
	w2.set(st)
	require.Equal(t, map[string]float64{
		"shard=s-1,stream=orders,worker=w2": 0,
		"shard=s-2,stream=orders,worker=w1": 0,
		"shard=s-3,stream=orders,worker=w2": 20,
	}, series(t, reg, "gokcl_millis_behind_latest"))
	require.Equal(t, 0.0, series(t, reg, "gokcl_healthy")["stream=orders,worker=w2"])

	m.unwatch(w2, "orders", "w2")
	require.Equal(t, map[string]float64{"stream=orders,worker=w1": 1}, series(t, reg, "gokcl_leases_held"))
}

// A WorkerID reused by two consumers of one process must not make the
// registry refuse every metric.
func TestDuplicateWorkerReportedOnce(t *testing.T) {
	m, reg := registered(t)
	a, b := &fakeStatus{}, &fakeStatus{}
	a.set(heldStatus("w1", consumer.ShardStatus{ShardID: "s-1", MillisBehindLatest: 5}))
	b.set(heldStatus("w1", consumer.ShardStatus{ShardID: "s-1", MillisBehindLatest: 9}))
	m.watch(a)
	m.watch(b)
	require.Equal(t, map[string]float64{"shard=s-1,stream=orders,worker=w1": 5}, series(t, reg, "gokcl_millis_behind_latest"))
}

func TestUnwatchDeletesTheWorkersSeries(t *testing.T) {
	m, reg := registered(t)
	w := &fakeStatus{}
	w.set(heldStatus("w1"))
	m.watch(w)
	m.OnBatchProcessed(processed("s-1", 10, nil))
	m.OnTakerCycle(lease.TakerCycle{Stream: "orders", Worker: "w1", Unfinished: 4, Workers: 2})
	m.unwatch(w, "orders", "w1")
	for _, name := range []string{"gokcl_records_processed_total", "gokcl_lease_table_leases", "gokcl_lease_table_workers", "gokcl_healthy"} {
		require.Empty(t, series(t, reg, name), name)
	}
}

func TestMetricsFollowPrometheusConventions(t *testing.T) {
	m, _ := registered(t)
	w := &fakeStatus{}
	w.set(heldStatus("w1", consumer.ShardStatus{ShardID: "s-1"}))
	m.watch(w)
	m.OnBatchProcessed(processed("s-1", 10, nil))
	m.OnBatchFetched(consumer.BatchFetched{Stream: "orders"})
	m.OnCheckpoint(lease.CheckpointWrite{Stream: "orders", Kind: lease.CheckpointNow})
	m.OnRenewal(lease.Renewal{Stream: "orders"})
	m.OnTakerCycle(lease.TakerCycle{Stream: "orders", Worker: "w1"})
	m.OnLeaseEvent(lease.LeaseEvent{Stream: "orders", Worker: "w1", Kind: lease.LeaseTaken})
	m.OnRecordsDropped(consumer.RecordsDropped{Stream: "orders", Reason: consumer.DropMisrouted})
	problems, err := testutil.CollectAndLint(m)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestConstLabelsAndBuckets(t *testing.T) {
	m := New(Options{ConstLabels: prometheus.Labels{"service": "billing"}, DurationBuckets: []float64{0.1, 1}})
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(m))
	m.OnBatchProcessed(processed("s-1", 1, nil))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "gokcl_process_duration_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			require.Len(t, h.GetBucket(), 2)
			require.Equal(t, "service=billing,stream=orders", labelString(mf.GetMetric()[0]))
		}
	}
}
