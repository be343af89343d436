package kclotel

import (
	"errors"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/gokcl/kcl/consumer"
)

// ScopeName is the instrumentation scope of the instruments: the meter's
// name.
const ScopeName = "github.com/gokcl/kcl/metrics/otel"

// Options configures Metrics. Zero values take the documented defaults.
type Options struct {
	// MeterProvider makes the meter. Default: otel.GetMeterProvider(), the
	// global one.
	MeterProvider metric.MeterProvider
	// DurationBuckets are the explicit bucket boundaries, in seconds, of the
	// duration histograms. Default: the SDK's.
	DurationBuckets []float64
}

// Metrics records gokcl's measurements as OpenTelemetry instruments, fed by
// the consumer's hooks and by the Status of each consumer it watches. Set it
// in consumer.Config.Hooks; one Metrics may serve any number of consumers.
// Its methods are safe for concurrent use.
type Metrics struct {
	recordsProcessed, bytesProcessed, processErrors, recordsDropped metric.Int64Counter
	recordsMisrouted                                                metric.Int64Counter
	getRecords, recordsFetched                                      metric.Int64Counter
	checkpoints, leaseEvents, renewals, takerCycles                 metric.Int64Counter

	processDuration, getRecordsDuration, checkpointDuration metric.Float64Histogram
	renewalDuration, takerDuration                          metric.Float64Histogram

	tableLeases, tableWorkers metric.Int64Gauge

	lag, shardState, leasesHeld, buffered, maxBuffered, healthy metric.Int64ObservableGauge
	registration                                                metric.Registration

	attrs attrCache

	mu      sync.Mutex
	sources []statusSource
}

// New makes the instruments on the meter ScopeName of o.MeterProvider. It
// fails only if the provider refuses an instrument.
func New(o Options) (*Metrics, error) {
	mp := o.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	b := builder{meter: mp.Meter(ScopeName), buckets: o.DurationBuckets}
	m := &Metrics{
		recordsProcessed: b.counter("gokcl.records.processed", "{record}", "User records processed (ProcessRecords returned nil), per shard."),
		bytesProcessed:   b.counter("gokcl.bytes.processed", "By", "Payload bytes of the user records processed, per shard."),
		processErrors:    b.counter("gokcl.process.errors", "{call}", "ProcessRecords calls that failed (the batch is delivered again), per shard."),
		recordsDropped:   b.counter("gokcl.records.dropped", "{record}", "User records fetched and dropped rather than delivered, by reason."),
		recordsMisrouted: b.counter("gokcl.records.misrouted", "{record}", "User records of KPL aggregates whose hash keys are outside their shard's range, delivered all the same."),
		getRecords:       b.counter("gokcl.get_records", "{call}", "GetRecords calls (or fan-out events), by result: success, throttled, expired_iterator, error."),
		recordsFetched:   b.counter("gokcl.records.fetched", "{record}", "Kinesis records fetched (before KPL deaggregation)."),
		checkpoints:      b.counter("gokcl.checkpoints", "{write}", "Checkpoint writes, by kind and result (success, lease_lost, error)."),
		leaseEvents:      b.counter("gokcl.lease.events", "{event}", "Changes in the leases a worker holds, by event and reason."),
		renewals:         b.counter("gokcl.lease.renewals", "{write}", "Lease renewal writes, by result."),
		takerCycles:      b.counter("gokcl.taker.cycles", "{cycle}", "Taker cycles, by result."),

		processDuration:    b.histogram("gokcl.process.duration", "Duration of ProcessRecords calls, failed ones included."),
		getRecordsDuration: b.histogram("gokcl.get_records.duration", "Duration of successful GetRecords calls (with fan-out: the wait for an event)."),
		checkpointDuration: b.histogram("gokcl.checkpoint.duration", "Duration of checkpoint writes."),
		renewalDuration:    b.histogram("gokcl.lease.renewal.duration", "Duration of lease renewal writes."),
		takerDuration:      b.histogram("gokcl.taker.cycle.duration", "Duration of taker cycles."),

		tableLeases:  b.gauge("gokcl.lease_table.leases", "{lease}", "Unfinished leases in the lease table at the worker's last scan."),
		tableWorkers: b.gauge("gokcl.lease_table.workers", "{worker}", "Workers holding a live lease (or with a live worker row) at the worker's last scan, itself included."),

		lag: b.observable("gokcl.millis_behind_latest", "ms", "How far behind the newest record of the shard processing is: the last GetRecords "+
			"response's MillisBehindLatest, growing with time while a batch is being processed. Only shards the worker holds."),
		shardState:  b.observable("gokcl.shard.state", "1", "1 for the state (attribute state) a held shard is in."),
		leasesHeld:  b.observable("gokcl.leases.held", "{lease}", "Leases the worker holds."),
		buffered:    b.observable("gokcl.buffered_bytes", "By", "Record bytes fetched and not yet processed (the memory budget in use)."),
		maxBuffered: b.observable("gokcl.buffered_bytes.limit", "By", "The memory budget: MaxBufferedBytes."),
		healthy:     b.observable("gokcl.healthy", "1", "1 while the consumer runs and its leases are renewed in time, else 0."),
	}
	if b.err != nil {
		return nil, b.err
	}
	reg, err := b.meter.RegisterCallback(m.observe, m.lag, m.shardState, m.leasesHeld, m.buffered, m.maxBuffered, m.healthy)
	if err != nil {
		return nil, err
	}
	m.registration = reg
	return m, nil
}

// Close unregisters the callback that reads the consumers' Status; the
// instruments then report nothing more from it. Idempotent.
func (m *Metrics) Close() error {
	m.mu.Lock()
	reg := m.registration
	m.registration = nil
	m.mu.Unlock()
	if reg == nil {
		return nil
	}
	return reg.Unregister()
}

// builder makes instruments, keeping the first error.
type builder struct {
	meter   metric.Meter
	buckets []float64
	err     error
}

func (b *builder) keep(err error) {
	b.err = errors.Join(b.err, err)
}

func (b *builder) counter(name, unit, desc string) metric.Int64Counter {
	c, err := b.meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.keep(err)
	return c
}

func (b *builder) histogram(name, desc string) metric.Float64Histogram {
	opts := []metric.Float64HistogramOption{metric.WithUnit("s"), metric.WithDescription(desc)}
	if b.buckets != nil {
		opts = append(opts, metric.WithExplicitBucketBoundaries(b.buckets...))
	}
	h, err := b.meter.Float64Histogram(name, opts...)
	b.keep(err)
	return h
}

func (b *builder) gauge(name, unit, desc string) metric.Int64Gauge {
	g, err := b.meter.Int64Gauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.keep(err)
	return g
}

func (b *builder) observable(name, unit, desc string) metric.Int64ObservableGauge {
	g, err := b.meter.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.keep(err)
	return g
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

// unwatch removes a consumer.
func (m *Metrics) unwatch(s statusSource) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, x := range m.sources {
		if x == s {
			m.sources = append(m.sources[:i], m.sources[i+1:]...)
			return
		}
	}
}
