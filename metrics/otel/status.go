package kclotel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// observe is the callback of the observable gauges: it reads each watched
// consumer's Status once. Only the shards held now are observed, so a
// shard's lag ends with its lease. A stream and worker reported by two
// sources (a WorkerID reused in one process) is observed once.
func (m *Metrics) observe(_ context.Context, o metric.Observer) error {
	m.mu.Lock()
	sources := append([]statusSource(nil), m.sources...)
	m.mu.Unlock()
	type worker struct{ stream, id string }
	seen := make(map[worker]bool, len(sources))
	for _, src := range sources {
		st := src.Status()
		if seen[worker{st.Stream, st.WorkerID}] {
			continue
		}
		seen[worker{st.Stream, st.WorkerID}] = true
		w := metric.WithAttributes(attribute.String("stream", st.Stream), attribute.String("worker", st.WorkerID))
		healthy := int64(0)
		if st.Healthy() {
			healthy = 1
		}
		o.ObserveInt64(m.healthy, healthy, w)
		o.ObserveInt64(m.leasesHeld, int64(len(st.Shards)), w)
		o.ObserveInt64(m.buffered, st.BufferedBytes, w)
		o.ObserveInt64(m.maxBuffered, st.MaxBufferedBytes, w)
		for _, s := range st.Shards {
			shard := attribute.String("shard", s.ShardID)
			o.ObserveInt64(m.lag, s.MillisBehindLatest, metric.WithAttributes(
				attribute.String("stream", st.Stream), attribute.String("worker", st.WorkerID), shard))
			o.ObserveInt64(m.shardState, 1, metric.WithAttributes(
				attribute.String("stream", st.Stream), attribute.String("worker", st.WorkerID), shard,
				attribute.String("state", s.State.String())))
		}
	}
	return nil
}
