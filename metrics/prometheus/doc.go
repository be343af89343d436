// Package kclprom exports a gokcl consumer's metrics to Prometheus.
//
// A Metrics is both a prometheus.Collector and a set of gokcl hooks: register
// it, and set it in the Hooks of every consumer it should measure.
//
//	m := kclprom.New(kclprom.Options{})
//	prometheus.MustRegister(m)
//	c, err := consumer.New(consumer.Config{
//		// ...
//		Hooks: []consumer.Hook{m},
//	})
//	http.Handle("/metrics", promhttp.Handler())
//
// Every metric's name starts with gokcl_. Per shard, labelled stream,
// worker and shard, for the shards a worker holds (a shard's series are
// deleted when the worker stops holding it, so no stale lag remains):
//
//	gokcl_millis_behind_latest          gauge: how far behind processing is, in ms
//	gokcl_records_processed_total       counter: user records processed
//	gokcl_bytes_processed_total         counter: their payload bytes
//	gokcl_process_errors_total          counter: failed ProcessRecords calls
//	gokcl_shard_state                   gauge, 1 for the shard's state (label state)
//
// Per worker (stream, worker): gokcl_leases_held, gokcl_buffered_bytes,
// gokcl_max_buffered_bytes, gokcl_healthy, gokcl_lease_table_leases,
// gokcl_lease_table_workers, and gokcl_lease_events_total (labels event:
// taken, stolen, lost, released, renewal_failed, hand_off_asked,
// handed_off; and reason: a graceful hand-off is hand_off_asked and
// handed_off on the holder, taken with reason hand_off on the new owner,
// and never lost).
//
// Per stream: gokcl_process_duration_seconds, gokcl_get_records_total
// (label result: success, throttled, expired_iterator, error),
// gokcl_get_records_duration_seconds, gokcl_records_fetched_total,
// gokcl_records_dropped_total (label reason), gokcl_records_misrouted_total,
// gokcl_checkpoints_total
// (labels kind and result: success, lease_lost, error),
// gokcl_checkpoint_duration_seconds, gokcl_lease_renewals_total,
// gokcl_lease_renewal_duration_seconds, gokcl_taker_cycles_total and
// gokcl_taker_cycle_duration_seconds.
//
// A multi-stream consumer (consumer.Config.Streams or DiscoverStreams)
// labels each shard's series with the shard's own stream, and its
// per-worker series and taker figures with an empty stream.
//
// The gauges of the first table and of the workers are read from each
// consumer's Status when Prometheus scrapes; the rest are counted as the
// events happen, at a cost of a few label lookups per batch, never per
// record. alerts.yml and dashboard.json beside this file are alert rules and
// a Grafana dashboard built on these metrics.
package kclprom
