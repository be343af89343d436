package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// multiConfig is testConfig for a multi-stream worker of the account's
// streams.
func multiConfig(acct *kcltest.Account, store lease.Store, worker string, newProc func(string) RecordProcessor, streams ...string) Config {
	cfg := testConfig(nil, store, worker, newProc)
	cfg.StreamName, cfg.Kinesis = "", acct
	for _, name := range streams {
		cfg.Streams = append(cfg.Streams, StreamConfig{Name: name})
	}
	return cfg
}

// heldByStream returns how many leases each worker holds, per stream name.
func heldByStream(t *testing.T, store lease.Store) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	for _, l := range allLeases(t, store) {
		if l.Owner == "" || l.Finished() {
			continue
		}
		if out[l.Owner] == nil {
			out[l.Owner] = map[string]int{}
		}
		out[l.Owner][l.StreamID.Name]++
	}
	return out
}

func heldBy(t *testing.T, store lease.Store, worker string) int {
	n := 0
	for _, c := range heldByStream(t, store)[worker] {
		n += c
	}
	return n
}

// TestMultiStreamBalanced: three streams (2, 2 and 3 shards), two workers:
// one lease table, every record of every stream processed once, the leases
// keyed as the KCL keys them, and the load balanced across the streams.
func TestMultiStreamBalanced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount(kcltest.WithShardsPerPage(2))
		streams := map[string]int{"orders": 2, "payments": 2, "audit": 3}
		var written []kcltest.PutResult
		for name, shards := range streams {
			s := mustCreate(t, acct, name, shards)
			for i := range 20 {
				res, err := s.Put(fmt.Sprintf("key-%d", i), "", []byte(fmt.Sprintf("%s-%d", name, i)))
				require.NoError(t, err)
				written = append(written, res)
			}
		}
		store := lease.NewMemoryStore()
		rec := kcltest.NewRecorder()
		var infos sync.Map // shard id and stream name seen by NewShardProcessor
		newProc := func(shard ShardInfo) RecordProcessor {
			infos.Store(shard.Stream.Name+"/"+shard.ShardID, shard.Stream)
			return RecordProcessorFunc(func(_ context.Context, b *Batch) error {
				if b.Stream.ID != shard.Stream.ID || b.ShardID != shard.ShardID {
					return fmt.Errorf("batch of %s/%s given to %s/%s", b.Stream.ID, b.ShardID, shard.Stream.ID, shard.ShardID)
				}
				return nil
			})
		}
		cfgA := multiConfig(acct, store, "a", nil, "orders", "payments", "audit")
		cfgA.NewProcessor, cfgA.NewShardProcessor = nil, rec.WrapShard(newProc)
		cfgB := cfgA
		cfgB.WorkerID = "b"
		a, b := start(t, cfgA), start(t, cfgB)

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		require.NoError(t, rec.WaitProcessed(ctx, written...))
		waitFor(t, time.Minute, "7 leases split 4/3", func() bool {
			na, nb := heldBy(t, store, "a"), heldBy(t, store, "b")
			return na+nb == 7 && (na == 4 || nb == 4)
		})
		for _, l := range allLeases(t, store) {
			require.True(t, l.MultiStream(), l.Key)
			require.Equal(t, l.StreamID.LeaseKey(l.ShardID), l.Key)
			s := acct.Stream(l.StreamID.Name)
			require.Equal(t, lease.StreamID{Account: acct.ID(), Name: s.Name(), CreationEpoch: s.CreatedAt().Unix()}, l.StreamID)
		}
		n := 0
		infos.Range(func(k, v any) bool {
			n++
			info := v.(StreamInfo)
			require.Equal(t, acct.Stream(info.Name).ARN(), info.ARN, k)
			return true
		})
		require.Equal(t, 7, n, "every shard of every stream, told its stream")
		a.stop(t)
		b.stop(t)
		require.Zero(t, rec.Duplicates())
	})
}

// TestMultiStreamAddedAtRunTime: a stream that discovery starts returning
// is consumed within one discovery interval, at its own initial position.
func TestMultiStreamAddedAtRunTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		mustCreate(t, acct, "a", 1)
		var names atomic.Pointer[[]StreamConfig]
		names.Store(&[]StreamConfig{{Name: "a"}})
		store := lease.NewMemoryStore()
		rec := kcltest.NewRecorder()
		cfg := multiConfig(acct, store, "w", rec.Wrap(nil))
		cfg.Streams = nil
		cfg.DiscoverStreams = func(context.Context) ([]StreamConfig, error) { return *names.Load(), nil }
		cfg.StreamDiscoveryInterval = 30 * time.Second
		w := start(t, cfg)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		first, err := acct.Stream("a").Put("k", "", []byte("a-1"))
		require.NoError(t, err)
		require.NoError(t, rec.WaitProcessed(ctx, first))

		b := mustCreate(t, acct, "b", 2)
		before, err := b.Put("k", "", []byte("before discovery: skipped (Latest)"))
		require.NoError(t, err)
		names.Store(&[]StreamConfig{{Name: "a"}, {Name: "b", InitialPosition: Latest}})
		added := time.Now()
		waitFor(t, time.Minute, "stream b's leases", func() bool {
			return len(allLeases(t, store)) == 3 && heldBy(t, store, "w") == 3
		})
		require.LessOrEqual(t, time.Since(added), cfg.StreamDiscoveryInterval+5*time.Second, "within one discovery interval")
		after, err := b.Put("k", "", []byte("after"))
		require.NoError(t, err)
		ctx, cancel = context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		require.NoError(t, rec.WaitProcessed(ctx, after))
		w.stop(t)
		for _, r := range rec.Stream("b") {
			require.NotEqual(t, before.SequenceNumber, r.SequenceNumber, "b started at Latest, its own initial position")
		}
	})
}

// TestMultiStreamRemoved: a stream discovery stops returning: its shard
// worker ends gracefully (ShutdownRequested, final checkpoint, release) and
// no worker takes its leases; they follow the FormerStreams policy. The
// other streams go on.
func TestMultiStreamRemoved(t *testing.T) {
	for _, policy := range []FormerStreamsDeletion{KeepStreamLeases, DeleteIfStreamGone, DeleteIfUndiscovered} {
		t.Run(policy.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				acct := kcltest.NewAccount()
				a, b := mustCreate(t, acct, "a", 1), mustCreate(t, acct, "b", 1)
				var names atomic.Pointer[[]StreamConfig]
				names.Store(&[]StreamConfig{{Name: "a"}, {Name: "b"}})
				store := lease.NewMemoryStore()
				rec := kcltest.NewRecorder()
				var shutdowns sync.Map
				cfg := multiConfig(acct, store, "w", nil)
				cfg.NewProcessor, cfg.NewShardProcessor = nil, rec.WrapShard(func(s ShardInfo) RecordProcessor {
					return shutdownCounter{stream: s.Stream.Name, seen: &shutdowns}
				})
				cfg.Streams = nil
				cfg.DiscoverStreams = func(context.Context) ([]StreamConfig, error) { return *names.Load(), nil }
				cfg.StreamDiscoveryInterval = 10 * time.Second
				cfg.FormerStreams = FormerStreams{Delete: policy, After: time.Minute}
				w := start(t, cfg)
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
				defer cancel()
				ra, _ := a.Put("k", "", []byte("a"))
				rb, _ := b.Put("k", "", []byte("b"))
				require.NoError(t, rec.WaitProcessed(ctx, ra, rb))

				names.Store(&[]StreamConfig{{Name: "a"}})
				keyB := leaseKeyOf(t, store, "b")
				waitFor(t, time.Minute, "b's lease released", func() bool { return leaseOf(t, store, keyB).Owner == "" })
				_, ok := shutdowns.Load("b")
				require.True(t, ok, "b's processor heard ShutdownRequested")
				require.Equal(t, checkpoint.At(rb.SequenceNumber, 0), leaseOf(t, store, keyB).Checkpoint, "b's final checkpoint")
				ra2, _ := a.Put("k", "", []byte("a2"))
				rb2, _ := b.Put("k", "", []byte("b2: not consumed any more"))
				require.NoError(t, rec.WaitProcessed(ctx, ra2))

				time.Sleep(2 * time.Minute) // past After
				switch policy {
				case KeepStreamLeases:
					require.Equal(t, "", leaseOf(t, store, keyB).Owner, "kept, and taken by no one")
				case DeleteIfStreamGone:
					require.Equal(t, "", leaseOf(t, store, keyB).Owner, "b still exists: kept")
					require.NoError(t, acct.DeleteStream("b"))
					waitFor(t, time.Minute, "b's leases deleted once b is gone", func() bool { return !hasLease(t, store, keyB) })
				case DeleteIfUndiscovered:
					require.False(t, hasLease(t, store, keyB), "deleted after After")
				}
				require.Error(t, rec.WaitProcessed(contextWithTimeout(t, time.Second), rb2), "b is not consumed")
				w.stop(t)
			})
		})
	}
}

// TestMultiStreamDiscoveryFaults: a discovery that fails, panics or returns
// nothing keeps every stream running and deletes nothing.
func TestMultiStreamDiscoveryFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		a := mustCreate(t, acct, "a", 1)
		var mode atomic.Int32
		store := lease.NewMemoryStore()
		rec := kcltest.NewRecorder()
		cfg := multiConfig(acct, store, "w", rec.Wrap(nil))
		cfg.Streams = nil
		cfg.DiscoverStreams = func(context.Context) ([]StreamConfig, error) {
			switch mode.Load() {
			case 1:
				return nil, errors.New("the registry is down")
			case 2:
				return nil, nil
			case 3:
				panic("a bug in the discovery")
			case 4:
				return []StreamConfig{{Name: "not a valid name"}}, nil
			}
			return []StreamConfig{{Name: "a"}}, nil
		}
		cfg.StreamDiscoveryInterval = 10 * time.Second
		cfg.FormerStreams = FormerStreams{Delete: DeleteIfUndiscovered, After: time.Second}
		w := start(t, cfg)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		first, _ := a.Put("k", "", []byte("0"))
		require.NoError(t, rec.WaitProcessed(ctx, first))
		key := leaseKeyOf(t, store, "a")
		for m := int32(1); m <= 4; m++ {
			mode.Store(m)
			time.Sleep(time.Minute) // several failed discoveries, and past After
			r, _ := a.Put("k", "", []byte(fmt.Sprint(m)))
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			require.NoError(t, rec.WaitProcessed(ctx, r), "mode %d", m)
			cancel()
			require.Equal(t, "w", leaseOf(t, store, key).Owner, "mode %d: still consumed, lease kept", m)
		}
		w.stop(t)
	})
}

// shutdownCounter records which streams' processors heard
// ShutdownRequested.
type shutdownCounter struct {
	stream string
	seen   *sync.Map
}

func (shutdownCounter) ProcessRecords(context.Context, *Batch) error { return nil }

func (p shutdownCounter) ShutdownRequested(context.Context, ShardInfo) error {
	p.seen.Store(p.stream, true)
	return nil
}

func leaseKeyOf(t *testing.T, store lease.Store, stream string) string {
	t.Helper()
	for _, l := range allLeases(t, store) {
		if l.StreamID.Name == stream {
			return l.Key
		}
	}
	t.Fatalf("no lease of stream %s", stream)
	return ""
}

func hasLease(t *testing.T, store lease.Store, key string) bool {
	return slices.ContainsFunc(allLeases(t, store), func(l lease.Lease) bool { return l.Key == key })
}

func contextWithTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
