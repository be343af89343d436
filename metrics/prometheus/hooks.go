package kclprom

import (
	"errors"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/lease"
)

// The hooks Metrics implements; the consumer finds them by type assertion.
var (
	_ consumer.HookConsumerStarted = (*Metrics)(nil)
	_ consumer.HookConsumerStopped = (*Metrics)(nil)
	_ consumer.HookBatchFetched    = (*Metrics)(nil)
	_ consumer.HookFetchError      = (*Metrics)(nil)
	_ consumer.HookBatchProcessed  = (*Metrics)(nil)
	_ consumer.HookRecordsDropped  = (*Metrics)(nil)
	_ consumer.HookShardState      = (*Metrics)(nil)
	_ lease.HookLeaseEvent         = (*Metrics)(nil)
	_ lease.HookRenewal            = (*Metrics)(nil)
	_ lease.HookCheckpoint         = (*Metrics)(nil)
	_ lease.HookTakerCycle         = (*Metrics)(nil)
)

// OnConsumerStarted implements consumer.HookConsumerStarted: the consumer's
// Status is read at each collection from now on.
func (m *Metrics) OnConsumerStarted(c *consumer.Consumer) { m.watch(c) }

// OnConsumerStopped implements consumer.HookConsumerStopped: the
// consumer's series are deleted.
func (m *Metrics) OnConsumerStopped(c *consumer.Consumer) {
	st := c.Status()
	m.unwatch(c, st.Stream, st.WorkerID)
}

// OnBatchFetched implements consumer.HookBatchFetched.
func (m *Metrics) OnBatchFetched(e consumer.BatchFetched) {
	m.getRecords.WithLabelValues(e.Stream, "success").Inc()
	m.getRecordsDuration.WithLabelValues(e.Stream).Observe(e.Latency.Seconds())
	m.recordsFetched.WithLabelValues(e.Stream).Add(float64(e.Records))
}

// OnFetchError implements consumer.HookFetchError.
func (m *Metrics) OnFetchError(e consumer.FetchError) {
	m.getRecords.WithLabelValues(e.Stream, e.Result()).Inc()
}

// OnBatchProcessed implements consumer.HookBatchProcessed.
func (m *Metrics) OnBatchProcessed(e consumer.BatchProcessed) {
	m.processDuration.WithLabelValues(e.Stream).Observe(e.Duration.Seconds())
	if e.Err != nil {
		m.processErrors.WithLabelValues(e.Stream, e.Worker, e.Shard).Inc()
		return
	}
	m.recordsProcessed.WithLabelValues(e.Stream, e.Worker, e.Shard).Add(float64(e.Records))
	m.bytesProcessed.WithLabelValues(e.Stream, e.Worker, e.Shard).Add(float64(e.Bytes))
	if e.Misrouted > 0 {
		m.recordsMisrouted.WithLabelValues(e.Stream).Add(float64(e.Misrouted))
	}
}

// OnRecordsDropped implements consumer.HookRecordsDropped.
func (m *Metrics) OnRecordsDropped(e consumer.RecordsDropped) {
	m.recordsDropped.WithLabelValues(e.Stream, e.Reason.String()).Add(float64(e.Records))
}

// OnShardState implements consumer.HookShardState. A shard's series start
// at zero when its worker starts, so that rates cover its first batch, and
// are deleted when the worker stops: a shard this worker no longer holds
// shows no stale figures.
func (m *Metrics) OnShardState(e consumer.ShardStateChange) {
	switch e.State {
	case consumer.ShardStarting:
		m.recordsProcessed.WithLabelValues(e.Stream, e.Worker, e.Shard)
		m.bytesProcessed.WithLabelValues(e.Stream, e.Worker, e.Shard)
		m.processErrors.WithLabelValues(e.Stream, e.Worker, e.Shard)
	case consumer.ShardStopped:
		m.recordsProcessed.DeleteLabelValues(e.Stream, e.Worker, e.Shard)
		m.bytesProcessed.DeleteLabelValues(e.Stream, e.Worker, e.Shard)
		m.processErrors.DeleteLabelValues(e.Stream, e.Worker, e.Shard)
	}
}

// OnLeaseEvent implements lease.HookLeaseEvent.
func (m *Metrics) OnLeaseEvent(e lease.LeaseEvent) {
	m.leaseEvents.WithLabelValues(e.Stream, e.Worker, e.Kind.String(), e.Reason.String()).Inc()
}

// OnRenewal implements lease.HookRenewal.
func (m *Metrics) OnRenewal(e lease.Renewal) {
	m.renewals.WithLabelValues(e.Stream, result(e.Err)).Inc()
	m.renewalDuration.WithLabelValues(e.Stream).Observe(e.Latency.Seconds())
}

// OnCheckpoint implements lease.HookCheckpoint.
func (m *Metrics) OnCheckpoint(e lease.CheckpointWrite) {
	m.checkpoints.WithLabelValues(e.Stream, e.Kind.String(), result(e.Err)).Inc()
	m.checkpointDuration.WithLabelValues(e.Stream).Observe(e.Latency.Seconds())
}

// OnTakerCycle implements lease.HookTakerCycle.
func (m *Metrics) OnTakerCycle(e lease.TakerCycle) {
	m.takerDuration.WithLabelValues(e.Stream).Observe(e.Duration.Seconds())
	if e.Err != nil {
		m.takerCycles.WithLabelValues(e.Stream, "error").Inc()
		return
	}
	m.takerCycles.WithLabelValues(e.Stream, "success").Inc()
	m.tableLeases.WithLabelValues(e.Stream, e.Worker).Set(float64(e.Unfinished))
	m.tableWorkers.WithLabelValues(e.Stream, e.Worker).Set(float64(e.Workers))
}

// result names a write's outcome for the result label.
func result(err error) string {
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, lease.ErrLeaseLost):
		return "lease_lost"
	}
	return "error"
}
