//go:build integration

package localstack

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/lease"
)

// Graceful hand-offs on the test servers: leases move between workers
// without processing anything twice, and a hand-off whose holder or new
// owner is killed loses nothing. FailoverTime is 3s here: renewals every
// second, hand-offs polled every 50ms.

const handOffFailover = 3 * time.Second

// handOffs records the hand-off requests the workers of a test make: a
// DynamoDB client that sees every UpdateItem setting checkpointOwner.
type handOffs struct {
	mu   sync.Mutex
	asks []handOffAsk
}

type handOffAsk struct {
	at       time.Time
	key, to  string
	accepted bool
}

type watchedDynamo struct {
	lease.DynamoDBAPI
	worker string
	h      *handOffs
}

func (d watchedDynamo) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := d.DynamoDBAPI.UpdateItem(ctx, in, opts...)
	if strings.Contains(aws.ToString(in.UpdateExpression), "#checkpointOwner = :from") && err == nil {
		key := in.Key["leaseKey"]
		d.h.mu.Lock()
		d.h.asks = append(d.h.asks, handOffAsk{at: time.Now(), key: stringOf(key), to: d.worker, accepted: true})
		d.h.mu.Unlock()
	}
	return out, err
}

func stringOf(v ddbtypes.AttributeValue) string {
	if s, ok := v.(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func (h *handOffs) all() []handOffAsk {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.asks)
}

// firstBatches records when each worker first processed each shard after
// a given time.
type firstBatches struct {
	mu      sync.Mutex
	batches map[string][]time.Time // "<worker> <shard>"
}

func (f *firstBatches) note(worker, shard string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.batches == nil {
		f.batches = map[string][]time.Time{}
	}
	f.batches[worker+" "+shard] = append(f.batches[worker+" "+shard], time.Now())
}

func (f *firstBatches) after(worker, shard string, t time.Time) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, at := range f.batches[worker+" "+shard] {
		if !at.Before(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

// handOffConfig is the fixture's configuration, with its hand-offs watched
// and its first batches timed.
func (f *fixture) handOffConfig(worker string, h *handOffs, fb *firstBatches) consumer.Config {
	cfg := f.config(worker)
	cfg.FailoverTime = handOffFailover
	cfg.DynamoDB = watchedDynamo{DynamoDBAPI: f.dc, worker: worker, h: h}
	cfg.NewProcessor = func(string) consumer.RecordProcessor {
		return consumer.RecordProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
			f.col.add(worker, b.ShardID, b.Records)
			if len(b.Records) > 0 {
				fb.note(worker, b.ShardID)
			}
			return nil
		})
	}
	return cfg
}

// produce writes 20 records every 100ms, in a goroutine of its own, until
// the returned function is called; that function returns once the
// goroutine has, after which f.next counts the records written. The test
// must not write records meanwhile. The test's cleanup stops it too, so a
// test that fails early leaves no producer writing after it ended.
func (f *fixture) produce() (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if err := f.tryPutPlain(20, 40); err != nil {
				select {
				case <-quit: // the test is over: nobody to tell
				default:
					f.t.Errorf("producer: %v", err)
				}
				return
			}
		}
	}()
	stop = sync.OnceFunc(func() {
		close(quit)
		<-done
	})
	f.t.Cleanup(stop)
	return stop
}

// tryPutPlain is putPlain for a goroutine other than the test's: it
// returns its error rather than failing the test.
func (f *fixture) tryPutPlain(n, keys int) error {
	var entries []types.PutRecordsRequestEntry
	for range n {
		entries = append(entries, types.PutRecordsRequestEntry{
			PartitionKey: aws.String("key-" + strconv.Itoa(f.next%keys)), Data: []byte(strconv.Itoa(f.next))})
		f.next++
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := f.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(f.stream), Records: entries})
	if err == nil && aws.ToInt32(out.FailedRecordCount) > 0 {
		err = fmt.Errorf("%d records failed", aws.ToInt32(out.FailedRecordCount))
	}
	return err
}

func pendingHandOffs(ls []lease.Lease) int {
	n := 0
	for _, l := range ls {
		if l.CheckpointOwner != "" {
			n++
		}
	}
	return n
}

// Scale-out from one worker to four on eight shards while records flow:
// every move is a hand-off, and nothing is processed twice.
func TestIntegrationHandOffScaleOut(t *testing.T) {
	f := newFixture(t, 8)
	h, fb := &handOffs{}, &firstBatches{}
	rs := []*running{f.start(f.handOffConfig("w1", h, fb))}
	waitFor(t, time.Minute, "w1 to own every lease", func() bool { return f.owners()["w1"] == 8 })
	stopProducing := f.produce()
	time.Sleep(2 * time.Second)

	joined := time.Now()
	for _, id := range []string{"w2", "w3", "w4"} {
		rs = append(rs, f.start(f.handOffConfig(id, h, fb)))
	}
	waitFor(t, time.Minute, "2 leases each, no hand-off pending", func() bool {
		o := f.owners()
		return pendingHandOffs(f.leases()) == 0 && o["w1"] == 2 && o["w2"] == 2 && o["w3"] == 2 && o["w4"] == 2
	})
	balanced := time.Since(joined)
	time.Sleep(2 * time.Second)
	stopProducing()
	n := f.next
	waitFor(t, time.Minute, "every record", func() bool { return f.col.unique() == n })
	for _, r := range rs {
		r.stop(t)
	}
	require.Empty(t, f.col.missing(n))
	require.Zero(t, f.col.duplicates(), "planned moves process nothing twice")
	require.Empty(t, f.col.outOfOrder())

	asks := h.all()
	require.Len(t, asks, 6)
	var moves []time.Duration
	for _, a := range asks {
		first, ok := fb.after(a.to, a.key, a.at)
		require.True(t, ok, "%s never processed %s after asking for it", a.to, a.key)
		moves = append(moves, first.Sub(a.at))
	}
	slices.Sort(moves)
	renew := handOffFailover / 3
	t.Logf("FIGURE scale-out 1→4 workers on 8 shards (test servers, FailoverTime %v): %d records, 0 duplicates; balanced %v after the join; "+
		"steal decided → new owner processing: min %v, median %v, max %v (RenewInterval %v, PollInterval 100ms)",
		handOffFailover, n, balanced.Round(time.Millisecond), moves[0].Round(time.Millisecond), moves[len(moves)/2].Round(time.Millisecond),
		moves[len(moves)-1].Round(time.Millisecond), renew)
	require.LessOrEqual(t, moves[len(moves)-1], renew+time.Second, "RenewInterval + one batch, with the test servers' latency")
}

// A graceful leave while records flow: the leaver's shard workers finish,
// checkpoint and release; the others go on from those checkpoints.
func TestIntegrationHandOffGracefulLeave(t *testing.T) {
	f := newFixture(t, 6)
	h, fb := &handOffs{}, &firstBatches{}
	var rs []*running
	for _, id := range []string{"w1", "w2", "w3"} {
		rs = append(rs, f.start(f.handOffConfig(id, h, fb)))
	}
	waitFor(t, time.Minute, "2 leases each", func() bool {
		o := f.owners()
		return pendingHandOffs(f.leases()) == 0 && o["w1"] == 2 && o["w2"] == 2 && o["w3"] == 2
	})
	stopProducing := f.produce()
	time.Sleep(2 * time.Second)
	var left []string
	for _, l := range f.leases() {
		if l.Owner == "w2" {
			left = append(left, l.Key)
		}
	}
	leaving := time.Now()
	rs[1].stop(t)
	waitFor(t, time.Minute, "w1 and w3 to own every lease", func() bool {
		o := f.owners()
		return o["w1"]+o["w3"] == 6
	})
	var worst time.Duration
	for _, key := range left {
		waitFor(t, time.Minute, key+" processed again", func() bool {
			_, ok1 := fb.after("w1", key, leaving)
			_, ok3 := fb.after("w3", key, leaving)
			return ok1 || ok3
		})
		for _, w := range []string{"w1", "w3"} {
			if at, ok := fb.after(w, key, leaving); ok {
				worst = max(worst, at.Sub(leaving))
			}
		}
	}
	stopProducing()
	n := f.next
	waitFor(t, time.Minute, "every record", func() bool { return f.col.unique() == n })
	rs[0].stop(t)
	rs[2].stop(t)
	require.Empty(t, f.col.missing(n))
	require.Zero(t, f.col.duplicates(), "a graceful leave processes nothing twice")
	t.Logf("FIGURE graceful leave (3 workers, 6 shards, test servers): %d records, 0 duplicates; the leaver's shards processed again within %v (taker interval %v)",
		n, worst.Round(time.Millisecond), handOffFailover/2)
}

// A hand-off whose holder, another process, is killed (SIGKILL) while the
// hand-off is pending: the new owner takes the lease when it expires, as
// after any crash, and nothing is lost.
func TestIntegrationHandOffHolderKilled(t *testing.T) {
	f := newFixture(t, 4)
	bin := buildWorker(t)
	// Each batch takes the process a second: the batch in flight when it
	// learns of the hand-off keeps the hand-off pending long enough to be
	// seen, however soon it learns.
	proc := startWorkerProcess(t, f, bin, "proc", handOffFailover, "-delay", "1s")
	waitFor(t, time.Minute, "the process to hold all leases", func() bool { return f.owners()["proc"] == 4 })
	stopProducing := f.produce()
	waitFor(t, time.Minute, "the process to process records", func() bool { return proc.count() > 0 })

	h, fb := &handOffs{}, &firstBatches{}
	w1 := f.start(f.handOffConfig("w1", h, fb))
	waitFor(t, time.Minute, "a hand-off from the process", func() bool {
		for _, l := range f.leases() {
			if l.CheckpointOwner == "proc" {
				return true
			}
		}
		return false
	})
	killed := time.Now()
	require.NoError(t, proc.cmd.Process.Signal(syscall.SIGKILL))
	<-proc.done
	waitFor(t, 4*handOffFailover, "w1 to own every lease", func() bool { return f.owners()["w1"] == 4 })
	took := time.Since(killed)
	stopProducing()
	n := f.next
	waitFor(t, time.Minute, "every record", func() bool { return len(missingAcross(n, f.col, proc)) == 0 })
	w1.stop(t)
	t.Logf("FIGURE hand-off whose holder is killed (SIGKILL): w1 owned every lease %v after the kill (FailoverTime %v); %d records, none lost",
		took.Round(time.Millisecond), handOffFailover, n)
	require.LessOrEqual(t, took, handOffFailover*3/2+2*time.Second, "the failover bound, plus test-server latency")
}

// A hand-off whose new owner, another process, is killed (SIGKILL) while
// the hand-off is pending: the holder releases the lease to it anyway; the
// lease expires and the holder takes it back, at its own last checkpoint.
// Nothing is lost, and nothing is processed twice.
func TestIntegrationHandOffNewOwnerKilled(t *testing.T) {
	f := newFixture(t, 4)
	h, fb := &handOffs{}, &firstBatches{}
	cfg := f.handOffConfig("w1", h, fb)
	// w1 takes a second to hand a shard over (ShutdownRequested), so that
	// the hand-off is seen pending, and the new owner killed then, however
	// soon w1 learns of it.
	process := cfg.NewProcessor
	cfg.NewProcessor = func(shardID string) consumer.RecordProcessor {
		return slowHandOver{process(shardID)}
	}
	w1 := f.start(cfg)
	waitFor(t, time.Minute, "w1 to own every lease", func() bool { return f.owners()["w1"] == 4 })
	stopProducing := f.produce()
	time.Sleep(time.Second)

	bin := buildWorker(t)
	proc := startWorkerProcess(t, f, bin, "proc", handOffFailover)
	var asked []string
	waitFor(t, time.Minute, "hand-offs to the process", func() bool {
		asked = asked[:0]
		for _, l := range f.leases() {
			if l.Owner == "proc" && l.CheckpointOwner == "w1" {
				asked = append(asked, l.Key)
			}
		}
		return len(asked) > 0
	})
	killed := time.Now()
	require.NoError(t, proc.cmd.Process.Signal(syscall.SIGKILL))
	<-proc.done
	waitFor(t, 4*handOffFailover, "w1 to own every lease again", func() bool { return f.owners()["w1"] == 4 })
	took := time.Since(killed)
	stopProducing()
	n := f.next
	waitFor(t, time.Minute, "every record", func() bool { return len(missingAcross(n, f.col, proc)) == 0 })
	w1.stop(t)
	dups := f.col.duplicates()
	t.Logf("FIGURE hand-off whose new owner is killed (SIGKILL): w1 owned every lease again %v after the kill (FailoverTime %v); %d records, none lost, %d processed twice (the process printed %d)",
		took.Round(time.Millisecond), handOffFailover, n, dups, proc.count())
	if proc.count() == 0 {
		require.Zero(t, dups, "the killed worker processed nothing: nothing may be processed twice")
	}
}

// A lone worker on a new application: from Run to every lease owned, and
// to the first record processed, on the test servers.
func TestIntegrationLoneWorkerStartsAtOnce(t *testing.T) {
	f := newFixture(t, 4)
	f.putPlain(40, 40)
	h, fb := &handOffs{}, &firstBatches{}
	cfg := f.handOffConfig("w1", h, fb)
	cfg.FailoverTime = 10 * time.Second // TakerInterval 5s: a taker cycle would show
	started := time.Now()
	r := f.start(cfg)
	var owned time.Duration
	waitFor(t, time.Minute, "every lease owned", func() bool {
		if f.owners()["w1"] == 4 {
			owned = time.Since(started)
			return true
		}
		return false
	})
	waitFor(t, time.Minute, "40 records", func() bool { return f.col.unique() == 40 })
	var first time.Time
	fb.mu.Lock()
	for _, ts := range fb.batches {
		if first.IsZero() || ts[0].Before(first) {
			first = ts[0]
		}
	}
	fb.mu.Unlock()
	r.stop(t)
	t.Logf("FIGURE lone worker on a new application (test servers): every lease owned %v after Run started (polled every few ms), first record processed after %v",
		owned.Round(time.Millisecond), first.Sub(started).Round(time.Millisecond))
	require.Less(t, owned, 2*time.Second, "within a few round trips, not a 5s taker cycle")
}

// slowHandOver is a processor that takes a second over ShutdownRequested.
type slowHandOver struct{ consumer.RecordProcessor }

func (slowHandOver) ShutdownRequested(ctx context.Context, _ consumer.ShardInfo) error {
	select {
	case <-time.After(time.Second):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
