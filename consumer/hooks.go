package consumer

// Hook observes a Consumer: a metrics or tracing back-end, set in
// Config.Hooks. A Hook is any value; it receives the events of the Hook*
// interfaces it implements, found by type assertion once, in New, so an
// event that no hook wants costs nothing and no event allocates. A back-end
// implements only what it needs. The consumer hands its hooks to its lease
// Manager too, so a hook implementing lease.HookLeaseEvent, lease.HookRenewal,
// lease.HookCheckpoint or lease.HookTakerCycle also hears of leases,
// renewals, checkpoint writes and taker cycles (see lease.Hook). The
// metrics/prometheus, metrics/otel and metrics/cloudwatch modules of this
// repository are such back-ends.
//
// Hooks are called synchronously, on the goroutine where the event happens:
// a shard's reader, the fetcher or with enhanced fan-out the subscriber
// (batches fetched, fetch errors), its shard worker
// (batches processed, records dropped, shard states), and Run's goroutine
// (start and stop). So a hook is called concurrently for different shards
// and must be safe for concurrent use; the events of one shard come from
// one goroutine at a time, each kind in order. A hook must not block: the
// pipeline waits for it, per batch. Record the event (an atomic add, a
// histogram observation) or hand it to a goroutine of your own; never do I/O
// in a hook. A hook must not call the Consumer's methods, except where an
// interface's documentation allows it. Events are values holding nothing
// that the consumer reuses; a hook may keep them.
type Hook any

// HookConsumerStarted is implemented by hooks that want the Consumer itself,
// for example to read its Status when metrics are collected.
type HookConsumerStarted interface {
	// OnConsumerStarted is called by Run before it starts anything, from
	// Run's goroutine. The hook may keep c and call c.Status from any
	// goroutine from then on, outside of hook calls.
	OnConsumerStarted(c *Consumer)
}

// HookConsumerStopped is implemented by hooks that want to know when a
// Consumer they were given by OnConsumerStarted has stopped, to forget it.
type HookConsumerStopped interface {
	// OnConsumerStopped is called by Run after every goroutine it started
	// has exited and every lease was released, just before Run returns,
	// from Run's goroutine.
	OnConsumerStopped(c *Consumer)
}

// HookBatchFetched is implemented by hooks that want every batch fetched
// from Kinesis, empty ones included.
type HookBatchFetched interface {
	// OnBatchFetched is called after each successful GetRecords call (or
	// subscription event), from the shard's reader goroutine (fetcher or
	// subscriber), once the response has its share of the memory budget.
	OnBatchFetched(BatchFetched)
}

// HookFetchError is implemented by hooks that want every failed fetch:
// throttling, expired iterators, network errors, failed subscriptions.
type HookFetchError interface {
	// OnFetchError is called after each failed call (or subscription) that
	// the reader will retry, from the shard's reader goroutine.
	OnFetchError(FetchError)
}

// HookBatchProcessed is implemented by hooks that want every call of
// RecordProcessor.ProcessRecords: its records, duration and outcome.
type HookBatchProcessed interface {
	// OnBatchProcessed is called after each ProcessRecords call, including
	// each retry of a failed batch, from the shard worker's goroutine.
	OnBatchProcessed(BatchProcessed)
}

// HookRecordsDropped is implemented by hooks that want the user records the
// consumer dropped rather than delivered (see DropReason).
type HookRecordsDropped interface {
	// OnRecordsDropped is called once per batch that dropped records, from
	// the shard worker's goroutine, whether or not the batch has records
	// left to process.
	OnRecordsDropped(RecordsDropped)
}

// HookShardState is implemented by hooks that want each step of a shard's
// life on this worker: started, waiting for its parents, processing,
// ending, shutting down or handing off, stopped.
type HookShardState interface {
	// OnShardState is called at each change of state, from the shard
	// worker's goroutine. For one shard on one Consumer the changes come in
	// order, a new worker's ShardStarting after the previous one's
	// ShardStopped.
	OnShardState(ShardStateChange)
}
