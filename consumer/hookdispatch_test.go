package consumer

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

// everyHook implements every consumer hook and one lease hook, counting
// calls.
type everyHook struct {
	started, stopped, fetched, fetchErr, processed, dropped, state, renewals int
}

func (h *everyHook) OnConsumerStarted(*Consumer)     { h.started++ }
func (h *everyHook) OnConsumerStopped(*Consumer)     { h.stopped++ }
func (h *everyHook) OnBatchFetched(BatchFetched)     { h.fetched++ }
func (h *everyHook) OnFetchError(FetchError)         { h.fetchErr++ }
func (h *everyHook) OnBatchProcessed(BatchProcessed) { h.processed++ }
func (h *everyHook) OnRecordsDropped(RecordsDropped) { h.dropped++ }
func (h *everyHook) OnShardState(ShardStateChange)   { h.state++ }
func (h *everyHook) OnRenewal(lease.Renewal)         { h.renewals++ }

// fetchOnly implements HookBatchFetched, and two methods with a hook's name
// but not its signature.
type fetchOnly struct{ records int }

func (h *fetchOnly) OnBatchFetched(e BatchFetched)      { h.records += e.Records }
func (h *fetchOnly) OnBatchProcessed(int)               {}
func (h *fetchOnly) OnShardState(ShardStateChange) bool { return false }

func TestHooksFoundByInterface(t *testing.T) {
	all, fo := &everyHook{}, &fetchOnly{}
	h := newHooks([]Hook{all, fo, nil, 42})
	require.Len(t, h.fetched, 2)
	require.Len(t, h.processed, 1, "a method with another signature is not the hook")
	require.Len(t, h.state, 1)
	require.Len(t, leaseHooks([]Hook{all, fo, nil, 42}), 3, "every non-nil hook goes to the lease manager, which sorts its own")

	h.consumerStarted(nil)
	h.consumerStopped(nil)
	h.batchFetched(BatchFetched{Records: 5})
	h.fetchError(FetchError{})
	h.batchProcessed(BatchProcessed{})
	h.recordsDropped(RecordsDropped{})
	h.shardState(ShardStateChange{})
	require.Equal(t, everyHook{started: 1, stopped: 1, fetched: 1, fetchErr: 1, processed: 1, dropped: 1, state: 1}, *all)
	require.Equal(t, 5, fo.records)
}

// A hook call passes its event by value: neither an unset nor a set hook
// allocates.
func TestHookCallsDoNotAllocate(t *testing.T) {
	for name, h := range map[string]hooks{"unset": newHooks(nil), "set": newHooks([]Hook{&everyHook{}})} {
		err := errors.New("boom")
		allocs := testing.AllocsPerRun(100, func() {
			h.batchFetched(BatchFetched{Stream: "s", Worker: "w", Shard: "shard", Records: 3, Latency: time.Millisecond})
			h.batchProcessed(BatchProcessed{Stream: "s", Worker: "w", Shard: "shard", Records: 3, Err: err})
			h.fetchError(FetchError{Stream: "s", Err: err})
			h.shardState(ShardStateChange{Shard: "shard", State: ShardProcessing})
		})
		require.Zero(t, allocs, name)
	}
}

func TestFetchErrorResult(t *testing.T) {
	require.Equal(t, "throttled", FetchError{Throttled: true}.Result())
	require.Equal(t, "expired_iterator", FetchError{ExpiredIterator: true}.Result())
	require.Equal(t, "error", FetchError{}.Result())
	require.Equal(t, "misrouted_aggregate", DropMisrouted.String())
	require.Equal(t, "unknown", DropReason(0).String())
}

func TestShardStateText(t *testing.T) {
	for s := ShardStarting; s <= ShardStopped; s++ {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back ShardState
		require.NoError(t, back.UnmarshalText(b))
		require.Equal(t, s, back)
	}
	require.Equal(t, "unknown", ShardState(0).String())
	require.Equal(t, "unknown", ShardState(200).String())
	var s ShardState
	require.Error(t, s.UnmarshalText([]byte("asleep")))
	require.Error(t, s.UnmarshalText([]byte("")))
}

func TestStatusJSON(t *testing.T) {
	st := Status{Stream: "orders", App: "billing", WorkerID: "w1", Running: true,
		Shards: []ShardStatus{{ShardID: "shardId-000000000001", State: ShardWaitingForParents,
			Checkpoint: checkpoint.At("4959", 3), MillisBehindLatest: 1200}}}
	b, err := json.Marshal(st)
	require.NoError(t, err)
	s := string(b)
	require.Contains(t, s, `"state":"waiting_for_parents"`)
	require.Contains(t, s, `"checkpoint":"4959/3"`)
	require.NotContains(t, s, "last_fetch", "zero times are left out")
	require.NotContains(t, s, "problems")
	var back Status
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, st, back)
	require.True(t, st.Healthy())
	st.Problems = []string{"lease shardId-000000000001 not renewed for 9s"}
	require.False(t, st.Healthy())
	require.False(t, Status{}.Healthy())
}
