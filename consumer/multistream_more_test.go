package consumer_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/efotest"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// putKeyed writes n records to s under keys key-0..key-(keys-1), with data
// prefix-i, so that assertKeyOrder checks their order.
func putKeyed(t *testing.T, s *kcltest.Stream, prefix string, n, keys int) []kcltest.PutResult {
	t.Helper()
	var out []kcltest.PutResult
	for i := range n {
		r, err := s.Put(fmt.Sprintf("%s-key-%d", s.Name(), i%keys), "", []byte(fmt.Sprintf("%s-%d", prefix, i)))
		require.NoError(t, err)
		out = append(out, r)
	}
	return out
}

// TestMultiStreamReshardOneStream: one stream is split and merged while two
// others flow; every record of every stream is processed, in order per key
// (parents before children), and the other streams' leases are left alone.
func TestMultiStreamReshardOneStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		a, b, c := mustCreate(t, acct, "a", 2), mustCreate(t, acct, "b", 1), mustCreate(t, acct, "c", 1)
		store := lease.NewMemoryStore()
		col := newCollector()
		w1 := start(t, multiConfig(acct, store, "w1", col.processor(), "a", "b", "c"))
		w2 := start(t, multiConfig(acct, store, "w2", col.processor(), "a", "b", "c"))
		var written []kcltest.PutResult
		for _, s := range []*kcltest.Stream{a, b, c} {
			written = append(written, putKeyed(t, s, "x", 30, 6)...)
		}
		waitFor(t, time.Minute, "the first records", func() bool { return col.unique() >= 30 })
		leasesOf := func(name string) map[string]lease.Lease {
			out := map[string]lease.Lease{}
			for _, l := range allLeases(t, store) {
				if l.StreamID.Name == name {
					out[l.Key] = l
				}
			}
			return out
		}
		before := map[string]int{"b": len(leasesOf("b")), "c": len(leasesOf("c"))}

		ids := a.OpenShards()
		left, right, err := a.Split(ids[0], big.NewInt(1<<62))
		require.NoError(t, err)
		for _, s := range []*kcltest.Stream{a, b, c} {
			written = append(written, putKeyed(t, s, "y", 30, 6)...)
		}
		merged, err := a.Merge(left, right)
		require.NoError(t, err)
		for _, s := range []*kcltest.Stream{a, b, c} {
			written = append(written, putKeyed(t, s, "z", 30, 6)...)
		}
		waitFor(t, 2*time.Minute, "every record", func() bool { return col.unique() == len(written) })
		w1.stop(t)
		w2.stop(t)
		assertKeyOrder(t, col)
		require.Len(t, leasesOf("a"), 5, "a: two shards, a split's children and their merge child")
		require.True(t, leasesOf("a")[idsKey(a, ids[0])].Finished())
		require.Contains(t, leasesOf("a"), idsKey(a, merged))
		require.Equal(t, before, map[string]int{"b": len(leasesOf("b")), "c": len(leasesOf("c"))}, "the other streams' leases untouched")
	})
}

func idsKey(s *kcltest.Stream, shard string) string {
	return lease.StreamID{Account: s.AccountID(), Name: s.Name(), CreationEpoch: s.CreatedAt().Unix()}.LeaseKey(shard)
}

// TestMultiStreamRecreatedStream: a stream deleted and created again while
// consumed is another stream: its records are read from the new stream's
// own leases (at its initial position), never from the old stream's
// checkpoints, which stay a former stream's.
func TestMultiStreamRecreatedStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		old := mustCreate(t, acct, "a", 1)
		store := lease.NewMemoryStore()
		rec := kcltest.NewRecorder()
		cfg := multiConfig(acct, store, "w", rec.Wrap(nil), "a")
		cfg.StreamDiscoveryInterval = time.Hour // the deletion is found by the calls that fail, not by discovery
		w := start(t, cfg)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		first, _ := old.Put("k", "", []byte("old"))
		require.NoError(t, rec.WaitProcessed(ctx, first))
		oldKey := idsKey(old, "shardId-000000000000")
		waitFor(t, time.Minute, "old checkpoint", func() bool {
			return leaseOf(t, store, oldKey).Checkpoint == checkpoint.At(first.SequenceNumber, 0)
		})

		require.NoError(t, acct.DeleteStream("a"))
		fresh := mustCreate(t, acct, "a", 1)
		r1, _ := fresh.Put("k", "", []byte("new-1"))
		r2, _ := fresh.Put("k", "", []byte("new-2"))
		ctx, cancel = context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		require.NoError(t, rec.WaitProcessed(ctx, r1, r2), "the new stream, from its own new lease (TrimHorizon)")
		newKey := idsKey(fresh, "shardId-000000000000")
		require.NotEqual(t, oldKey, newKey)
		require.Equal(t, checkpoint.At(first.SequenceNumber, 0), leaseOf(t, store, oldKey).Checkpoint, "the former stream's checkpoint untouched")
		require.Empty(t, leaseOf(t, store, oldKey).Owner, "released, and taken by no one")
		require.Equal(t, "w", leaseOf(t, store, newKey).Owner)
		w.stop(t)
		require.Zero(t, rec.Duplicates())
	})
}

// TestMultiStreamBudgetFairness: a stream with a backlog and a stuck
// processor holds at most two batches of the small MaxBufferedBytes; the
// other stream's records keep being processed.
func TestMultiStreamBudgetFairness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		busy, quiet := mustCreate(t, acct, "busy", 1), mustCreate(t, acct, "quiet", 1)
		payload := make([]byte, 200<<10)
		for range 100 {
			_, err := busy.Put("k", "", payload)
			require.NoError(t, err)
		}
		stuck := make(chan struct{})
		var busyBatches atomic.Int32
		rec := kcltest.NewRecorder()
		cfg := multiConfig(acct, lease.NewMemoryStore(), "w", nil, "busy", "quiet")
		cfg.MaxBufferedBytes = 4 << 20
		cfg.NewProcessor, cfg.NewShardProcessor = nil, rec.WrapShard(func(s ShardInfo) RecordProcessor {
			return RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
				if s.Stream.Name != "busy" {
					return nil
				}
				busyBatches.Add(1)
				select {
				case <-stuck:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		})
		w := start(t, cfg)
		waitFor(t, time.Minute, "busy's first batch", func() bool { return busyBatches.Load() == 1 })
		for i := range 20 {
			r, err := quiet.Put("k", "", []byte(fmt.Sprint(i)))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			require.NoError(t, rec.WaitProcessed(ctx, r), "quiet's record %d while busy is stuck", i)
			cancel()
			require.LessOrEqual(t, w.c.BufferedBytes(), cfg.MaxBufferedBytes)
		}
		require.LessOrEqual(t, busy.Calls(kcltest.OpGetRecords), 2, "busy: one batch in the processor, one read ahead")
		close(stuck)
		w.stop(t)
	})
}

// TestMultiStreamModesIgnoreEachOther: a single-stream consumer takes no
// multi-stream lease, and a multi-stream consumer no single-stream one, so
// a table shared by mistake breaks neither's leases.
func TestMultiStreamModesIgnoreEachOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		s := mustCreate(t, acct, testStream, 1)
		store := lease.NewMemoryStore()
		id := lease.StreamID{Account: acct.ID(), Name: "elsewhere", CreationEpoch: 1700000000}
		require.NoError(t, store.Create(context.Background(), lease.Lease{Key: id.LeaseKey("shardId-000000000000"), StreamID: id,
			ShardID: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon}))

		// Two applications on one table by mistake, consuming the same
		// stream, one in each mode.
		single := testConfig(s, store, "single", newCollector().processor())
		single.Kinesis = s
		ws := start(t, single)
		multi := start(t, multiConfig(acct, store, "multi", newCollector().processor(), testStream))
		time.Sleep(time.Minute)
		owners := map[string]string{}
		for _, l := range allLeases(t, store) {
			owners[l.Key] = l.Owner
		}
		require.Len(t, owners, 3)
		require.Equal(t, "", owners[id.LeaseKey("shardId-000000000000")], "a stream neither consumes: left alone")
		require.Equal(t, "single", owners["shardId-000000000000"], "the single-stream lease, held by the single-stream consumer")
		require.Equal(t, "multi", owners[idsKey(s, "shardId-000000000000")], "the multi-stream lease, by the multi-stream consumer")
		ws.stop(t)
		multi.stop(t)
	})
}

// TestMultiStreamResumesKCLTable: a table written by a Java KCL application
// in multi-stream mode, with its creation epochs in milliseconds, resumes
// at its checkpoints: no lease is added, and no record before a checkpoint
// is delivered again.
func TestMultiStreamResumesKCLTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		store := lease.NewMemoryStore()
		var after []kcltest.PutResult
		for _, name := range []string{"a", "b"} {
			s := mustCreate(t, acct, name, 1)
			done := putKeyed(t, s, "done", 10, 2)
			after = append(after, putKeyed(t, s, "todo", 10, 2)...)
			id := lease.StreamID{Account: acct.ID(), Name: name, CreationEpoch: s.CreatedAt().UnixMilli()} // the KCL app's unit
			require.NoError(t, store.Create(context.Background(), lease.Lease{Key: id.LeaseKey("shardId-000000000000"), StreamID: id,
				ShardID: "shardId-000000000000", Owner: "kcl-worker", Counter: 40, Checkpoint: checkpoint.At(done[9].SequenceNumber, 0)}))
		}
		rec := kcltest.NewRecorder()
		cfg := multiConfig(acct, store, "gokcl", rec.Wrap(nil), "a", "b")
		cfg.FailoverTime = 3 * time.Second
		w := start(t, cfg)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		require.NoError(t, rec.WaitProcessed(ctx, after...))
		w.stop(t)
		require.Equal(t, len(after), rec.Unique(), "only the records after the checkpoints")
		leases := allLeases(t, store)
		require.Len(t, leases, 2, "the KCL's leases, no new ones")
		for _, l := range leases {
			require.Greater(t, l.StreamID.CreationEpoch, int64(1e11), "still the KCL's identifier: %s", l.Key)
		}
	})
}

// multiFanOut is a multi-stream consumer's Kinesis client in fan-out
// tests: the account answers the polling calls and DescribeStreamSummary,
// an efotest server over its streams the enhanced fan-out calls.
type multiFanOut struct {
	*kcltest.Account
	efo *kinesis.Client
}

func (k *multiFanOut) SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	return k.efo.SubscribeToShard(ctx, in, optFns...)
}

func (k *multiFanOut) RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	return k.efo.RegisterStreamConsumer(ctx, in, optFns...)
}

func (k *multiFanOut) DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	return k.efo.DescribeStreamConsumer(ctx, in, optFns...)
}

// TestMultiStreamFanOut: with enhanced fan-out, a stream consumer is
// registered on each stream, and each stream's shards are read through
// their own.
func TestMultiStreamFanOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		srv := efotest.NewServer(efotest.Options{})
		var written []kcltest.PutResult
		for _, name := range []string{"a", "b", "c"} {
			s := mustCreate(t, acct, name, 2)
			srv.AddStream(name, s)
			written = append(written, putKeyed(t, s, "x", 20, 4)...)
		}
		k := &multiFanOut{Account: acct, efo: efotest.NewClient(srv, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })}
		rec := kcltest.NewRecorder()
		store := lease.NewMemoryStore()
		cfg := multiConfig(acct, store, "w1", rec.Wrap(nil), "a", "b", "c")
		cfg.Kinesis, cfg.Retrieval = k, EnhancedFanOut("")
		logs := &syncBuffer{}
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
		w1 := start(t, cfg)
		cfg.WorkerID = "w2"
		w2 := start(t, cfg)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		require.NoError(t, rec.WaitProcessed(ctx, written...))
		w1.stop(t)
		w2.stop(t)
		// The server takes one iterator per subscription it accepts (none
		// for one refused while a lease moves between the workers, nor for
		// one cancelled as its worker stops): the consumer takes none.
		accepted := 0
		for _, s := range srv.Subscriptions() {
			if s.Err == nil {
				accepted++
			}
		}
		require.LessOrEqual(t, acct.Calls(kcltest.OpGetShardIterator), accepted, "no polling with enhanced fan-out")
		for _, name := range []string{"a", "b", "c"} {
			l, err := k.efo.ListStreamConsumers(context.Background(), &kinesis.ListStreamConsumersInput{StreamARN: strPtr(acct.Stream(name).ARN())})
			require.NoError(t, err)
			require.Len(t, l.Consumers, 1, name)
		}
		subs := map[string]int{}
		for _, s := range srv.Subscriptions() {
			subs[s.ConsumerARN[:len(acct.Stream("a").ARN())]]++
		}
		require.Len(t, subs, 3, "subscriptions through each stream's consumer")
		// Each stream's records were read, so some worker found its stream
		// consumer ACTIVE and said so, naming the stream.
		active := map[string]bool{}
		for _, line := range strings.Split(logs.String(), "\n") {
			if !strings.Contains(line, "enhanced fan-out consumer ACTIVE") {
				continue
			}
			_, stream, ok := strings.Cut(line, " stream=")
			require.True(t, ok, "registration logs name the stream: %s", line)
			active[strings.Fields(stream)[0]] = true
		}
		require.Len(t, active, 3, "each stream's consumer found ACTIVE")
	})
}

func strPtr(s string) *string { return &s }

// TestMultiStreamScaleOutHandsOver: a worker joins one that holds the
// leases of three streams while records flow in all of them: the leases
// move by graceful hand-off, whatever their stream; no record is processed
// twice and nobody hears LeaseLost.
func TestMultiStreamScaleOutHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		var streams []*kcltest.Stream
		for _, name := range []string{"a", "b", "c"} {
			streams = append(streams, mustCreate(t, acct, name, 2))
		}
		store := lease.NewMemoryStore()
		col := newCollector()
		var cs calls
		cfg := func(id string) Config {
			return multiConfig(acct, store, id, func(string) RecordProcessor {
				return &handOffProc{worker: id, col: col, calls: &cs}
			}, "a", "b", "c")
		}
		stop := make(chan struct{})
		var produced []<-chan int
		for _, s := range streams {
			produced = append(produced, produce(s, 5*time.Millisecond, stop))
		}
		w1 := start(t, cfg("w1"))
		waitFor(t, time.Minute, "w1 to own every lease", func() bool { o, _ := owners(t, store); return o["w1"] == 6 })
		time.Sleep(2 * time.Second)
		w2 := start(t, cfg("w2"))
		waitFor(t, time.Minute, "3 leases each, no hand-off pending", func() bool {
			o, pending := owners(t, store)
			return !pending && o["w1"] == 3 && o["w2"] == 3
		})
		time.Sleep(2 * time.Second)
		close(stop)
		n := 0
		for _, p := range produced {
			n += <-p
		}
		waitFor(t, time.Minute, "every record", func() bool { return col.unique() == n })
		w1.stop(t)
		w2.stop(t)
		require.Zero(t, col.duplicates(), "a hand-off processes nothing twice")
		require.Zero(t, cs.get("w1", "lost"))
		require.Zero(t, cs.get("w2", "lost"))
		require.Equal(t, 3+3, cs.get("w1", "shutdown"), "3 hand-offs, and w1's own 3 at its shutdown")
	})
}

// TestMultiStreamDescribeRetried: a stream that cannot be described at the
// first discovery (throttled) is described again within seconds, not at
// the next discovery.
func TestMultiStreamDescribeRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		a := mustCreate(t, acct, "a", 1)
		a.FailNext(kcltest.OpDescribeStreamSummary, kcltest.ThrottlingError())
		a.FailNext(kcltest.OpDescribeStreamSummary, kcltest.ThrottlingError())
		rec := kcltest.NewRecorder()
		cfg := multiConfig(acct, lease.NewMemoryStore(), "w", rec.Wrap(nil), "a")
		cfg.StreamDiscoveryInterval = time.Hour
		started := time.Now()
		w := start(t, cfg)
		r, _ := a.Put("k", "", []byte("x"))
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		require.NoError(t, rec.WaitProcessed(ctx, r))
		require.Less(t, time.Since(started), 10*time.Second)
		w.stop(t)
	})
}

// TestMultiStreamUnknownSequenceDescribesAgain: a checkpoint the stream
// refuses (InvalidArgument: not one of its records) may mean the stream was
// created again: the stream is described again, at most every
// RedescribeEvery, and, still the same, goes on being consumed.
func TestMultiStreamUnknownSequenceDescribesAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		a := mustCreate(t, acct, "a", 1)
		other := mustCreate(t, acct, "other", 1)
		elsewhere, _ := other.Put("k", "", []byte("not a's"))
		store := lease.NewMemoryStore()
		id := lease.StreamID{Account: acct.ID(), Name: "a", CreationEpoch: a.CreatedAt().Unix()}
		require.NoError(t, store.Create(context.Background(), lease.Lease{Key: id.LeaseKey("shardId-000000000000"), StreamID: id,
			ShardID: "shardId-000000000000", Checkpoint: checkpoint.At(elsewhere.SequenceNumber, 0)}))
		cfg := multiConfig(acct, store, "w", newCollector().processor(), "a")
		cfg.StreamDiscoveryInterval = time.Hour
		w := start(t, cfg)
		time.Sleep(time.Second)
		first := a.Calls(kcltest.OpDescribeStreamSummary)
		time.Sleep(time.Minute)
		described := a.Calls(kcltest.OpDescribeStreamSummary) - first
		require.GreaterOrEqual(t, described, 3, "described again")
		require.LessOrEqual(t, described, int(time.Minute/RedescribeEvery)+1, "at most every RedescribeEvery")
		require.Equal(t, "w", leaseOf(t, store, id.LeaseKey("shardId-000000000000")).Owner, "still consumed")
		w.stop(t)
	})
}

// TestMultiStreamStatusAndHooks: Status lists each held shard with its
// stream, the same shard id of two streams twice; the hook events name the
// stream of the shard they are about, the lease manager's too.
func TestMultiStreamStatusAndHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		var written []kcltest.PutResult
		for _, name := range []string{"a", "b"} {
			s := mustCreate(t, acct, name, 1)
			r, err := s.Put("k", "", []byte(name))
			require.NoError(t, err)
			written = append(written, r)
		}
		hooks := newHookLog()
		rec := kcltest.NewRecorder()
		cfg := multiConfig(acct, lease.NewMemoryStore(), "w", rec.Wrap(nil), "a", "b")
		cfg.Hooks = []Hook{hooks}
		w := start(t, cfg)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		require.NoError(t, rec.WaitProcessed(ctx, written...))
		waitFor(t, time.Minute, "checkpoints written", func() bool {
			defer hooks.lock()()
			return len(hooks.checkpoints) >= 2
		})

		st := w.c.Status()
		require.Empty(t, st.Stream, "a multi-stream consumer's shards name their streams")
		require.Len(t, st.Shards, 2)
		for i, name := range []string{"a", "b"} {
			ss := st.Shards[i]
			require.Equal(t, name, ss.Stream)
			require.Equal(t, "shardId-000000000000", ss.ShardID)
			require.Equal(t, idsKey(acct.Stream(name), "shardId-000000000000"), ss.StreamID+":"+ss.ShardID)
			require.Equal(t, ShardProcessing, ss.State, name)
			require.EqualValues(t, 1, ss.RecordsProcessed, name)
		}
		w.stop(t)

		defer hooks.lock()()
		streams := map[string]bool{}
		for _, e := range hooks.processed {
			streams[e.Stream] = true
			require.Equal(t, "shardId-000000000000", e.Shard)
		}
		require.Equal(t, map[string]bool{"a": true, "b": true}, streams, "batches processed, by stream")
		streams = map[string]bool{}
		for _, e := range hooks.checkpoints {
			streams[e.Stream] = true
			require.Equal(t, "shardId-000000000000", e.Shard, "the lease manager's events name the shard, not the lease key")
		}
		require.Equal(t, map[string]bool{"a": true, "b": true}, streams, "checkpoints, by stream")
	})
}

// slowRegistration is multiFanOut whose DescribeStreamConsumer calls on
// stream b wait for release, and then answer whatever the call's context:
// a response that arrives as the call is cancelled.
type slowRegistration struct {
	*multiFanOut
	entered, release chan struct{}
	once             atomic.Bool
}

func (k *slowRegistration) DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	if in.StreamARN != nil && *in.StreamARN == k.Stream("b").ARN() && k.once.CompareAndSwap(false, true) {
		close(k.entered)
		<-k.release
		return k.multiFanOut.DescribeStreamConsumer(context.WithoutCancel(ctx), in, optFns...)
	}
	return k.multiFanOut.DescribeStreamConsumer(ctx, in, optFns...)
}

// TestMultiStreamRemovedWhileRegistering: a stream that discovery drops
// while its stream consumer is being registered is not consumed, even when
// the registration's last answer comes after the removal.
func TestMultiStreamRemovedWhileRegistering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		srv := efotest.NewServer(efotest.Options{})
		a, b := mustCreate(t, acct, "a", 1), mustCreate(t, acct, "b", 1)
		srv.AddStream("a", a)
		srv.AddStream("b", b)
		store := lease.NewMemoryStore()
		idB := streamID(b)
		keyB := idB.LeaseKey("shardId-000000000000")
		require.NoError(t, store.Create(t.Context(), lease.Lease{Key: keyB, StreamID: idB, ShardID: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon}))
		k := &slowRegistration{
			multiFanOut: &multiFanOut{Account: acct, efo: efotest.NewClient(srv, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })},
			entered:     make(chan struct{}), release: make(chan struct{}),
		}
		// b's stream consumer exists already: the call that waits is the
		// one that finds it ACTIVE.
		_, err := k.efo.RegisterStreamConsumer(t.Context(), &kinesis.RegisterStreamConsumerInput{StreamARN: strPtr(b.ARN()), ConsumerName: strPtr("test-app")})
		require.NoError(t, err)
		var names atomic.Pointer[[]StreamConfig]
		names.Store(&[]StreamConfig{{Name: "a"}, {Name: "b"}})
		rec := kcltest.NewRecorder()
		cfg := multiConfig(acct, store, "w", rec.Wrap(nil))
		cfg.Kinesis, cfg.Retrieval = k, EnhancedFanOut("")
		cfg.Streams = nil
		cfg.DiscoverStreams = func(context.Context) ([]StreamConfig, error) { return *names.Load(), nil }
		cfg.StreamDiscoveryInterval = 10 * time.Second
		w := start(t, cfg)
		<-k.entered
		names.Store(&[]StreamConfig{{Name: "a"}})
		time.Sleep(time.Minute) // b removed by the next discovery
		synctest.Wait()
		close(k.release)
		ra, _ := a.Put("k", "", []byte("a"))
		rb, _ := b.Put("k", "", []byte("b: not consumed"))
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		require.NoError(t, rec.WaitProcessed(ctx, ra))
		require.Error(t, rec.WaitProcessed(contextWithTimeout(t, 30*time.Second), rb), "b is not consumed")
		require.Empty(t, leaseOf(t, store, keyB).Owner, "b's lease taken by no one")
		w.stop(t)
	})
}
