package consumer

import "github.com/gokcl/kcl/lease"

// hooks holds Config.Hooks sorted by the interfaces they implement, found
// once by New: an event nobody wants costs a nil-slice check, and no type
// assertion runs per event. Call sites check the slice before building an
// event whose fields cost something to compute (a clock read, a sum).
type hooks struct {
	started   []HookConsumerStarted
	stopped   []HookConsumerStopped
	fetched   []HookBatchFetched
	fetchErr  []HookFetchError
	processed []HookBatchProcessed
	dropped   []HookRecordsDropped
	state     []HookShardState
}

// leaseHooks returns the hooks for the lease manager: all of them, as
// lease.Hook values; the manager sorts its own.
func leaseHooks(hs []Hook) []lease.Hook {
	var out []lease.Hook
	for _, x := range hs {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

func newHooks(hs []Hook) hooks {
	var h hooks
	for _, x := range hs {
		if x, ok := x.(HookConsumerStarted); ok {
			h.started = append(h.started, x)
		}
		if x, ok := x.(HookConsumerStopped); ok {
			h.stopped = append(h.stopped, x)
		}
		if x, ok := x.(HookBatchFetched); ok {
			h.fetched = append(h.fetched, x)
		}
		if x, ok := x.(HookFetchError); ok {
			h.fetchErr = append(h.fetchErr, x)
		}
		if x, ok := x.(HookBatchProcessed); ok {
			h.processed = append(h.processed, x)
		}
		if x, ok := x.(HookRecordsDropped); ok {
			h.dropped = append(h.dropped, x)
		}
		if x, ok := x.(HookShardState); ok {
			h.state = append(h.state, x)
		}
	}
	return h
}

func (h *hooks) consumerStarted(c *Consumer) {
	for _, x := range h.started {
		x.OnConsumerStarted(c)
	}
}

func (h *hooks) consumerStopped(c *Consumer) {
	for _, x := range h.stopped {
		x.OnConsumerStopped(c)
	}
}

func (h *hooks) batchFetched(e BatchFetched) {
	for _, x := range h.fetched {
		x.OnBatchFetched(e)
	}
}

func (h *hooks) fetchError(e FetchError) {
	for _, x := range h.fetchErr {
		x.OnFetchError(e)
	}
}

func (h *hooks) batchProcessed(e BatchProcessed) {
	for _, x := range h.processed {
		x.OnBatchProcessed(e)
	}
}

func (h *hooks) recordsDropped(e RecordsDropped) {
	for _, x := range h.dropped {
		x.OnRecordsDropped(e)
	}
}

func (h *hooks) shardState(e ShardStateChange) {
	for _, x := range h.state {
		x.OnShardState(e)
	}
}
