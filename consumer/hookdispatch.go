package consumer

import (
	"github.com/gokcl/kcl/internal/hookset"
	"github.com/gokcl/kcl/lease"
)

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
func leaseHooks(hs []Hook) []lease.Hook { return hookset.Of[lease.Hook](hs) }

func newHooks(hs []Hook) hooks {
	return hooks{
		started:   hookset.Of[HookConsumerStarted](hs),
		stopped:   hookset.Of[HookConsumerStopped](hs),
		fetched:   hookset.Of[HookBatchFetched](hs),
		fetchErr:  hookset.Of[HookFetchError](hs),
		processed: hookset.Of[HookBatchProcessed](hs),
		dropped:   hookset.Of[HookRecordsDropped](hs),
		state:     hookset.Of[HookShardState](hs),
	}
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
