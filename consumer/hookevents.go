package consumer

import "time"

// BatchFetched is one batch read from Kinesis, for HookBatchFetched.
type BatchFetched struct {
	// Stream is Config.StreamName (or StreamARN); Worker is the WorkerID.
	// Stream is the shard's stream name (Config.StreamName, or the stream
	// of a multi-stream consumer's shard); Worker is Config.WorkerID; Shard
	// is the shard id.
	Stream, Worker, Shard string
	// Records is the number of Kinesis records in the response (before KPL
	// deaggregation).
	Records int
	// Bytes is the payload size of the response's records.
	Bytes int64
	// MillisBehindLatest is how far the response is behind the newest record
	// of the shard, as Kinesis reported it.
	MillisBehindLatest int64
	// Latency is the GetRecords call's duration or, with enhanced fan-out,
	// the wait for the subscription's event: from the SubscribeToShard
	// call for a subscription's first event, from the hand-over of the
	// previous event for the others. So an idle fan-out shard shows long
	// latencies (Kinesis pushes when records come), a busy one the time
	// between its events.
	Latency time.Duration
	// FanOut is set when the batch came from an enhanced fan-out
	// subscription rather than GetRecords.
	FanOut bool
	// End is set on the last batch of a shard read to its end.
	End bool
	// BufferedBytes is the memory budget in use (see
	// Config.MaxBufferedBytes) just after this batch was accounted for.
	BufferedBytes int64
}

// FetchError is a failed fetch (or enhanced fan-out subscription) that will
// be retried, for HookFetchError.
type FetchError struct {
	// Stream is the shard's stream name (Config.StreamName, or the stream
	// of a multi-stream consumer's shard); Worker is Config.WorkerID; Shard
	// is the shard id.
	Stream, Worker, Shard string
	// Err is the failure.
	Err error
	// Throttled is set when Kinesis refused the call for throughput
	// (ProvisionedThroughputExceeded, LimitExceeded, KMS throttling).
	Throttled bool
	// ExpiredIterator is set when the shard iterator had expired; the
	// fetcher gets a new one after the last record fetched.
	ExpiredIterator bool
	// Latency is the failed call's duration or, with enhanced fan-out, the
	// wait that ended in the subscription's failure.
	Latency time.Duration
	// FanOut is set when an enhanced fan-out subscription failed (or could
	// not be made), rather than a GetRecords or GetShardIterator call.
	FanOut bool
	// Attempt counts the consecutive failures, 1 for the first; Wait is the
	// back-off before the next attempt.
	Attempt int
	Wait    time.Duration
}

// Result names the failure for a metric label: "throttled",
// "expired_iterator" or "error".
func (e FetchError) Result() string {
	switch {
	case e.Throttled:
		return "throttled"
	case e.ExpiredIterator:
		return "expired_iterator"
	}
	return "error"
}

// BatchProcessed is one call of RecordProcessor.ProcessRecords, for
// HookBatchProcessed.
type BatchProcessed struct {
	// Stream is the shard's stream name (Config.StreamName, or the stream
	// of a multi-stream consumer's shard); Worker is Config.WorkerID; Shard
	// is the shard id.
	Stream, Worker, Shard string
	// Records is the number of user records in the batch; Bytes the sum of
	// their Data.
	Records int
	Bytes   int64
	// Misrouted counts the batch's user records of KPL aggregates whose hash
	// keys are outside the shard's range, delivered all the same (see
	// Config.DropMisroutedAggregates).
	Misrouted int
	// MillisBehindLatest is the batch's (see Batch.MillisBehindLatest).
	MillisBehindLatest int64
	// Duration is the call's.
	Duration time.Duration
	// Attempt is Batch.Attempt: 1 the first time, then one more per retry.
	Attempt int
	// Err is what ProcessRecords returned (or its panic); nil when the batch
	// was processed. A failed batch is delivered again.
	Err error
}

// DropReason says why user records were dropped.
type DropReason uint8

// Reasons of RecordsDropped.
const (
	// DropMisrouted: the user records of a KPL aggregate that holds one
	// outside the shard's hash key range, with
	// Config.DropMisroutedAggregates: a KPL producer put the aggregate with
	// a stale shard map and sends its records again to the right shard, so
	// the consumer drops the whole aggregate here, as the Java KCL does.
	DropMisrouted DropReason = iota + 1
)

// String names the reason for a metric label: "misrouted_aggregate".
func (r DropReason) String() string {
	if r == DropMisrouted {
		return "misrouted_aggregate"
	}
	return "unknown"
}

// RecordsDropped is user records fetched and not delivered, for
// HookRecordsDropped.
type RecordsDropped struct {
	// Stream is the shard's stream name (Config.StreamName, or the stream
	// of a multi-stream consumer's shard); Worker is Config.WorkerID; Shard
	// is the shard id.
	Stream, Worker, Shard string
	// Records is the number of user records dropped; Reason why.
	Records int
	Reason  DropReason
}

// ShardStateChange is a step in a shard's life on this worker, for
// HookShardState.
type ShardStateChange struct {
	// Stream is the shard's stream name (Config.StreamName, or the stream
	// of a multi-stream consumer's shard); Worker is Config.WorkerID; Shard
	// is the shard id.
	Stream, Worker, Shard string
	// State is the shard's new state.
	State ShardState
	// Cause, for ShardStopped, is why the worker stopped: nil when the shard
	// was processed to its end or released at shutdown, an error wrapping
	// ErrLeaseLost when the lease was lost.
	Cause error
}
