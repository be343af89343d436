package kclprom

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gokcl/kcl/consumer"
)

// Options configures Metrics. Zero values take the documented defaults.
type Options struct {
	// ConstLabels are added to every metric, such as {"service": "billing"}.
	// Default: none.
	ConstLabels prometheus.Labels
	// DurationBuckets are the buckets, in seconds, of the duration
	// histograms (processing, GetRecords, checkpoint and renewal writes,
	// taker cycles). Default: prometheus.DefBuckets (5ms to 10s).
	DurationBuckets []float64
}

// Metrics is a set of gokcl's Prometheus metrics, fed by the consumer's
// hooks and by the Status of each consumer it watches. It is a
// prometheus.Collector: register it once, and pass it in Config.Hooks of
// every consumer whose metrics it should carry; one Metrics may serve any
// number of consumers, on any streams. Its methods are safe for concurrent
// use.
type Metrics struct {
	recordsProcessed *prometheus.CounterVec
	bytesProcessed   *prometheus.CounterVec
	processErrors    *prometheus.CounterVec
	processDuration  *prometheus.HistogramVec
	recordsDropped   *prometheus.CounterVec
	recordsMisrouted *prometheus.CounterVec

	getRecords         *prometheus.CounterVec
	getRecordsDuration *prometheus.HistogramVec
	recordsFetched     *prometheus.CounterVec

	checkpoints        *prometheus.CounterVec
	checkpointDuration *prometheus.HistogramVec

	leaseEvents     *prometheus.CounterVec
	renewals        *prometheus.CounterVec
	renewalDuration *prometheus.HistogramVec
	takerCycles     *prometheus.CounterVec
	takerDuration   *prometheus.HistogramVec
	tableLeases     *prometheus.GaugeVec
	tableWorkers    *prometheus.GaugeVec

	status statusDescs

	mu      sync.Mutex
	sources []statusSource // the consumers watched, in the order they started
}

// Label names.
const (
	lStream = "stream"
	lWorker = "worker"
	lShard  = "shard"
)

// New returns a Metrics; register it with a prometheus.Registerer and set it
// in consumer.Config.Hooks.
func New(o Options) *Metrics {
	if o.DurationBuckets == nil {
		o.DurationBuckets = prometheus.DefBuckets
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gokcl_" + name, Help: help, ConstLabels: o.ConstLabels}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gokcl_" + name, Help: help, ConstLabels: o.ConstLabels}, labels)
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gokcl_" + name, Help: help,
			ConstLabels: o.ConstLabels, Buckets: o.DurationBuckets}, labels)
	}
	return &Metrics{
		recordsProcessed: counter("records_processed_total", "User records processed (ProcessRecords returned nil), per shard held.", lStream, lWorker, lShard),
		bytesProcessed:   counter("bytes_processed_total", "Payload bytes of the user records processed, per shard held.", lStream, lWorker, lShard),
		processErrors:    counter("process_errors_total", "ProcessRecords calls that failed (the batch is delivered again), per shard held.", lStream, lWorker, lShard),
		processDuration:  histogram("process_duration_seconds", "Duration of ProcessRecords calls, failed ones included.", lStream),
		recordsDropped:   counter("records_dropped_total", "User records fetched and dropped rather than delivered, by reason.", lStream, "reason"),
		recordsMisrouted: counter("records_misrouted_total", "User records of KPL aggregates whose hash keys are outside their shard's range, delivered all the same.", lStream),

		getRecords:         counter("get_records_total", "GetRecords calls (or fan-out events), by result: success, throttled, expired_iterator, error.", lStream, "result"),
		getRecordsDuration: histogram("get_records_duration_seconds", "Duration of successful GetRecords calls (with fan-out: the wait for an event).", lStream),
		recordsFetched:     counter("records_fetched_total", "Kinesis records fetched (before KPL deaggregation).", lStream),

		checkpoints:        counter("checkpoints_total", "Checkpoint writes to the lease table, by kind (now, deferred, shard_end, before_release) and result (success, lease_lost, error).", lStream, "kind", "result"),
		checkpointDuration: histogram("checkpoint_duration_seconds", "Duration of checkpoint writes.", lStream),

		leaseEvents:     counter("lease_events_total", "Changes in the leases a worker holds, by event (taken, stolen, lost, released, renewal_failed, hand_off_asked, handed_off) and reason.", lStream, lWorker, "event", "reason"),
		renewals:        counter("lease_renewals_total", "Lease renewal writes, by result (success, lease_lost, error).", lStream, "result"),
		renewalDuration: histogram("lease_renewal_duration_seconds", "Duration of lease renewal writes.", lStream),
		takerCycles:     counter("taker_cycles_total", "Taker cycles (a lease table scan and its takes), by result (success, error).", lStream, "result"),
		takerDuration:   histogram("taker_cycle_duration_seconds", "Duration of taker cycles.", lStream),
		tableLeases:     gauge("lease_table_leases", "Unfinished leases in the lease table at the worker's last scan.", lStream, lWorker),
		tableWorkers:    gauge("lease_table_workers", "Workers holding a live lease (or with a live worker row) at the worker's last scan, itself included.", lStream, lWorker),

		status: newStatusDescs(o.ConstLabels),
	}
}

func (m *Metrics) vecs() []prometheus.Collector {
	return []prometheus.Collector{
		m.recordsProcessed, m.bytesProcessed, m.processErrors, m.processDuration, m.recordsDropped, m.recordsMisrouted,
		m.getRecords, m.getRecordsDuration, m.recordsFetched,
		m.checkpoints, m.checkpointDuration,
		m.leaseEvents, m.renewals, m.renewalDuration, m.takerCycles, m.takerDuration, m.tableLeases, m.tableWorkers,
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range m.vecs() {
		v.Describe(ch)
	}
	m.status.describe(ch)
}

// Collect implements prometheus.Collector: the counters and histograms fed
// by the hooks, and the gauges read from the Status of every consumer
// watched.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, v := range m.vecs() {
		v.Collect(ch)
	}
	m.mu.Lock()
	sources := append([]statusSource(nil), m.sources...)
	m.mu.Unlock()
	m.status.collect(ch, sources)
}

// statusSource is what Metrics reads gauges from: a *consumer.Consumer.
type statusSource interface {
	Status() consumer.Status
}

// watch adds a consumer whose Status is read at each collection.
func (m *Metrics) watch(s statusSource) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources = append(m.sources, s)
}

// unwatch removes a consumer, and the series of its worker that its Status
// does not carry.
func (m *Metrics) unwatch(s statusSource, stream, worker string) {
	m.mu.Lock()
	for i, x := range m.sources {
		if x == s {
			m.sources = append(m.sources[:i], m.sources[i+1:]...)
			break
		}
	}
	m.mu.Unlock()
	labels := prometheus.Labels{lStream: stream, lWorker: worker}
	for _, v := range []*prometheus.MetricVec{m.recordsProcessed.MetricVec, m.bytesProcessed.MetricVec,
		m.processErrors.MetricVec, m.tableLeases.MetricVec, m.tableWorkers.MetricVec} {
		v.DeletePartialMatch(labels)
	}
}
