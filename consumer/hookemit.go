package consumer

import (
	"context"
	"errors"
	"time"
)

// The helpers below report to Status and to the hooks from the readers'
// and the shard worker's call sites, so that each site is one line. A hook
// event is built only when a hook wants it.

// fetched reports a response (a GetRecords response or a subscription
// event): to the shard's Status, and to the hooks.
func (r *reader) fetched(resp *response) {
	r.callTime = 0
	if r.stat != nil {
		r.stat.fetched(resp.millisBehind, resp.at)
	}
	if len(r.c.hooks.fetched) > 0 {
		r.c.hooks.batchFetched(BatchFetched{Stream: r.st.label, Worker: r.c.cfg.WorkerID, Shard: r.shardID,
			Records: resp.count, Bytes: resp.data, MillisBehindLatest: resp.millisBehind, Latency: resp.latency,
			FanOut: r.fanOut, End: resp.end, BufferedBytes: r.c.budget.inUse.Load()})
	}
}

// fetchFailed reports a failed fetch (or subscription) that will be
// retried.
func (r *reader) fetchFailed(err error, attempt int, wait time.Duration) {
	latency := r.callTime
	r.callTime = 0
	if len(r.c.hooks.fetchErr) > 0 {
		r.c.hooks.fetchError(FetchError{Stream: r.st.label, Worker: r.c.cfg.WorkerID, Shard: r.shardID, Err: err,
			Throttled: isThrottle(err), ExpiredIterator: isExpired(err), Latency: latency, Attempt: attempt, Wait: wait,
			FanOut: r.fanOut})
	}
}

// setState moves the shard to state s, for Status and the hooks.
func (w *shardWorker) setState(s ShardState) {
	w.stat.state.Store(uint32(s))
	if len(w.c.hooks.state) > 0 {
		w.c.hooks.shardState(ShardStateChange{Stream: w.st.label, Worker: w.c.cfg.WorkerID, Shard: w.info.ShardID, State: s})
	}
}

// shutdownState is the state of a worker ending gracefully: handing off
// when another worker asked for its lease, else shutting down.
func (w *shardWorker) shutdownState() ShardState {
	if l, _ := w.c.mgr.Lease(w.key); l.HandOffPending() {
		return ShardHandingOff
	}
	return ShardShuttingDown
}

// begin registers the worker for Status, as starting.
func (w *shardWorker) begin() {
	w.stat = w.c.stats.add(w.key)
	w.setState(ShardStarting)
}

// end reports the worker stopped, with why when the lease was lost.
func (w *shardWorker) end(ctx context.Context) {
	w.c.stats.remove(w.key, w.stat)
	if len(w.c.hooks.state) > 0 {
		var cause error
		if c := context.Cause(ctx); errors.Is(c, errLeaseLost) {
			cause = c
		}
		w.c.hooks.shardState(ShardStateChange{Stream: w.st.label, Worker: w.c.cfg.WorkerID, Shard: w.info.ShardID,
			State: ShardStopped, Cause: cause})
	}
}

// startProcessing records that a ProcessRecords call on fb begins.
func (w *shardWorker) startProcessing(fb *fetchedBatch) time.Time {
	now := time.Now()
	w.stat.processing(fb.millisBehind, fb.fetchedAt, now)
	return now
}

// endProcessing records the end of the ProcessRecords call on b that began
// at start, and reports it to the hooks.
func (w *shardWorker) endProcessing(b *Batch, fb *fetchedBatch, start time.Time, err error) {
	records := len(b.Records)
	if err != nil {
		records = 0
	}
	w.stat.processed(records)
	if len(w.c.hooks.processed) == 0 {
		return
	}
	var bytes int64
	for i := range b.Records {
		bytes += int64(len(b.Records[i].Data))
	}
	w.c.hooks.batchProcessed(BatchProcessed{Stream: w.st.label, Worker: w.c.cfg.WorkerID, Shard: w.info.ShardID,
		Records: len(b.Records), Bytes: bytes, Misrouted: fb.res.misrouted, MillisBehindLatest: b.MillisBehindLatest,
		Duration: time.Since(start), Attempt: b.Attempt, Err: err})
}

// noteDropped reports the user records a batch dropped.
func (w *shardWorker) noteDropped(res convertResult) {
	if res.dropped > 0 && len(w.c.hooks.dropped) > 0 {
		w.c.hooks.recordsDropped(RecordsDropped{Stream: w.st.label, Worker: w.c.cfg.WorkerID, Shard: w.info.ShardID,
			Records: res.dropped, Reason: DropMisrouted})
	}
}
