package kclprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gokcl/kcl/consumer"
)

// statusDescs are the gauges read from consumers' Status at collection:
// they describe the present, so a shard no longer held has no series.
type statusDescs struct {
	millisBehind, shardState, leasesHeld, buffered, maxBuffered, healthy *prometheus.Desc
}

func newStatusDescs(constLabels prometheus.Labels) statusDescs {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("gokcl_"+name, help, labels, constLabels)
	}
	return statusDescs{
		millisBehind: desc("millis_behind_latest",
			"How far behind the newest record of the shard processing is, in milliseconds: the last GetRecords response's (or fan-out event's) MillisBehindLatest, "+
				"growing with time while a batch is being processed. Only shards the worker holds.", lStream, lWorker, lShard),
		shardState: desc("shard_state", "1 for the state a held shard is in (starting, waiting_for_parents, initializing, processing, ending, shutting_down, handing_off).",
			lStream, lWorker, lShard, "state"),
		leasesHeld:  desc("leases_held", "Leases the worker holds.", lStream, lWorker),
		buffered:    desc("buffered_bytes", "Record bytes fetched and not yet processed (the memory budget in use).", lStream, lWorker),
		maxBuffered: desc("max_buffered_bytes", "The memory budget: MaxBufferedBytes.", lStream, lWorker),
		healthy:     desc("healthy", "1 while the consumer runs and its leases are renewed in time, else 0.", lStream, lWorker),
	}
}

func (d *statusDescs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.millisBehind, d.shardState, d.leasesHeld, d.buffered, d.maxBuffered, d.healthy} {
		ch <- x
	}
}

// collect reads each source's Status once. Two sources reporting the same
// stream and worker (a WorkerID reused in one process) would make the
// registry refuse the whole collection: only the first is reported.
func (d *statusDescs) collect(ch chan<- prometheus.Metric, sources []statusSource) {
	type worker struct{ stream, id string }
	seen := make(map[worker]bool, len(sources))
	for _, src := range sources {
		st := src.Status()
		w := worker{st.Stream, st.WorkerID}
		if seen[w] {
			continue
		}
		seen[w] = true
		gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
		}
		healthy := 0.0
		if st.Healthy() {
			healthy = 1
		}
		gauge(d.healthy, healthy, st.Stream, st.WorkerID)
		gauge(d.leasesHeld, float64(len(st.Shards)), st.Stream, st.WorkerID)
		gauge(d.buffered, float64(st.BufferedBytes), st.Stream, st.WorkerID)
		gauge(d.maxBuffered, float64(st.MaxBufferedBytes), st.Stream, st.WorkerID)
		for _, s := range st.Shards {
			stream := shardStream(st, s)
			gauge(d.millisBehind, float64(s.MillisBehindLatest), stream, st.WorkerID, s.ShardID)
			gauge(d.shardState, 1, stream, st.WorkerID, s.ShardID, s.State.String())
		}
	}
}

// shardStream is the stream label of a held shard: the consumer's stream,
// or in a multi-stream consumer (whose Status names none) the shard's own,
// as the hooks label its counters. Shard ids repeat from stream to stream,
// so without it two streams' shards would be one series, twice.
func shardStream(st consumer.Status, s consumer.ShardStatus) string {
	if s.Stream != "" {
		return s.Stream
	}
	return st.Stream
}
