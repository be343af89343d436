package kclotel

import (
	"context"
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

// Hooks have no context of their own; measurements carry none.
var bg = context.Background()

// OnConsumerStarted implements consumer.HookConsumerStarted: the
// consumer's Status is read at each collection from now on.
func (m *Metrics) OnConsumerStarted(c *consumer.Consumer) { m.watch(c) }

// OnConsumerStopped implements consumer.HookConsumerStopped.
func (m *Metrics) OnConsumerStopped(c *consumer.Consumer) { m.unwatch(c) }

// OnBatchFetched implements consumer.HookBatchFetched.
func (m *Metrics) OnBatchFetched(e consumer.BatchFetched) {
	m.getRecords.Add(bg, 1, m.attrs.get(attrKey{kind: kStreamResult, a: e.Stream, b: "success"}).add...)
	s := m.attrs.get(attrKey{kind: kStream, a: e.Stream})
	m.getRecordsDuration.Record(bg, e.Latency.Seconds(), s.rec...)
	m.recordsFetched.Add(bg, int64(e.Records), s.add...)
}

// OnFetchError implements consumer.HookFetchError.
func (m *Metrics) OnFetchError(e consumer.FetchError) {
	m.getRecords.Add(bg, 1, m.attrs.get(attrKey{kind: kStreamResult, a: e.Stream, b: e.Result()}).add...)
}

// OnBatchProcessed implements consumer.HookBatchProcessed.
func (m *Metrics) OnBatchProcessed(e consumer.BatchProcessed) {
	m.processDuration.Record(bg, e.Duration.Seconds(), m.attrs.get(attrKey{kind: kStream, a: e.Stream}).rec...)
	shard := m.attrs.get(attrKey{kind: kShard, a: e.Stream, b: e.Worker, c: e.Shard})
	if e.Err != nil {
		m.processErrors.Add(bg, 1, shard.add...)
		return
	}
	m.recordsProcessed.Add(bg, int64(e.Records), shard.add...)
	m.bytesProcessed.Add(bg, e.Bytes, shard.add...)
	if e.Misrouted > 0 {
		m.recordsMisrouted.Add(bg, int64(e.Misrouted), m.attrs.get(attrKey{kind: kStream, a: e.Stream}).add...)
	}
}

// OnRecordsDropped implements consumer.HookRecordsDropped.
func (m *Metrics) OnRecordsDropped(e consumer.RecordsDropped) {
	m.recordsDropped.Add(bg, int64(e.Records), m.attrs.get(attrKey{kind: kDropped, a: e.Stream, b: e.Reason.String()}).add...)
}

// OnShardState implements consumer.HookShardState: the attribute set of a
// stopped shard is forgotten. (OpenTelemetry cannot delete a counter's
// series; the shard's gauges, read from the Status, end with the lease.)
func (m *Metrics) OnShardState(e consumer.ShardStateChange) {
	if e.State == consumer.ShardStopped {
		m.attrs.forget(attrKey{kind: kShard, a: e.Stream, b: e.Worker, c: e.Shard})
	}
}

// OnLeaseEvent implements lease.HookLeaseEvent.
func (m *Metrics) OnLeaseEvent(e lease.LeaseEvent) {
	m.leaseEvents.Add(bg, 1, m.attrs.get(attrKey{kind: kLeaseEvent, a: e.Stream, b: e.Worker, c: e.Kind.String(), d: e.Reason.String()}).add...)
}

// OnRenewal implements lease.HookRenewal.
func (m *Metrics) OnRenewal(e lease.Renewal) {
	m.renewals.Add(bg, 1, m.attrs.get(attrKey{kind: kStreamResult, a: e.Stream, b: result(e.Err)}).add...)
	m.renewalDuration.Record(bg, e.Latency.Seconds(), m.attrs.get(attrKey{kind: kStream, a: e.Stream}).rec...)
}

// OnCheckpoint implements lease.HookCheckpoint.
func (m *Metrics) OnCheckpoint(e lease.CheckpointWrite) {
	m.checkpoints.Add(bg, 1, m.attrs.get(attrKey{kind: kCheckpoint, a: e.Stream, b: e.Kind.String(), c: result(e.Err)}).add...)
	m.checkpointDuration.Record(bg, e.Latency.Seconds(), m.attrs.get(attrKey{kind: kStream, a: e.Stream}).rec...)
}

// OnTakerCycle implements lease.HookTakerCycle.
func (m *Metrics) OnTakerCycle(e lease.TakerCycle) {
	m.takerDuration.Record(bg, e.Duration.Seconds(), m.attrs.get(attrKey{kind: kStream, a: e.Stream}).rec...)
	if e.Err != nil {
		m.takerCycles.Add(bg, 1, m.attrs.get(attrKey{kind: kStreamResult, a: e.Stream, b: "error"}).add...)
		return
	}
	m.takerCycles.Add(bg, 1, m.attrs.get(attrKey{kind: kStreamResult, a: e.Stream, b: "success"}).add...)
	w := m.attrs.get(attrKey{kind: kWorker, a: e.Stream, b: e.Worker})
	m.tableLeases.Record(bg, int64(e.Unfinished), w.rec...)
	m.tableWorkers.Record(bg, int64(e.Workers), w.rec...)
}

// result names a write's outcome for the result attribute.
func result(err error) string {
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, lease.ErrLeaseLost):
		return "lease_lost"
	}
	return "error"
}
