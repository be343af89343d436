package kclotel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gokcl/kcl/consumer"
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
			stream := attribute.String("stream", shardStream(st, s))
			o.ObserveInt64(m.lag, s.MillisBehindLatest, metric.WithAttributes(
				stream, attribute.String("worker", st.WorkerID), shard))
			o.ObserveInt64(m.shardState, 1, metric.WithAttributes(
				stream, attribute.String("worker", st.WorkerID), shard,
				attribute.String("state", s.State.String())))
		}
	}
	return nil
}

// shardStream is the stream attribute of a held shard: the consumer's
// stream, or in a multi-stream consumer (whose Status names none) the
// shard's own, as the hooks record its counters. Shard ids repeat from
// stream to stream, so without it two streams' shards would be one data
// point.
func shardStream(st consumer.Status, s consumer.ShardStatus) string {
	if s.Stream != "" {
		return s.Stream
	}
	return st.Stream
}
