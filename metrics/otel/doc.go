// Package kclotel records a gokcl consumer's measurements as OpenTelemetry
// metrics (go.opentelemetry.io/otel/metric), for any OpenTelemetry exporter.
//
//	m, err := kclotel.New(kclotel.Options{MeterProvider: provider})
//	if err != nil {
//		return err
//	}
//	defer m.Close()
//	c, err := consumer.New(consumer.Config{
//		// ...
//		Hooks: []consumer.Hook{m},
//	})
//
// The instruments, on the meter named ScopeName, are those of package
// kclprom under OpenTelemetry's names: per shard (attributes stream, worker,
// shard) the observable gauge gokcl.millis_behind_latest (ms) and the
// counters gokcl.records.processed, gokcl.bytes.processed and
// gokcl.process.errors; gokcl.shard.state (attribute state),
// gokcl.leases.held, gokcl.buffered_bytes, gokcl.buffered_bytes.limit and
// gokcl.healthy per worker; gokcl.lease_table.leases and
// gokcl.lease_table.workers (gauges), gokcl.lease.events (attributes event,
// reason); per stream the histograms gokcl.process.duration,
// gokcl.get_records.duration, gokcl.checkpoint.duration,
// gokcl.lease.renewal.duration, gokcl.taker.cycle.duration (seconds) and the
// counters gokcl.get_records (attribute result), gokcl.records.fetched,
// gokcl.records.dropped (reason), gokcl.records.misrouted, gokcl.checkpoints (kind, result),
// gokcl.lease.renewals and gokcl.taker.cycles (result).
//
// A multi-stream consumer (consumer.Config.Streams or DiscoverStreams)
// records each shard's measurements with the shard's own stream, and its
// per-worker ones and taker figures with an empty stream.
//
// The observable gauges are read from each consumer's Status at collection,
// so only the shards a worker holds have a lag. OpenTelemetry has no way to
// delete a counter's series: a shard's counters keep their last value after
// its lease moves (their rate falls to zero). Recording allocates nothing
// once a shard's attributes are in use: a few map lookups per batch.
package kclotel
