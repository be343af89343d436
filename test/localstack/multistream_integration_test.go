//go:build integration

package localstack

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/testenv"
	"github.com/gokcl/kcl/lease"
)

// multiFixture is several streams and one lease table on the test servers:
// a multi-stream application.
type multiFixture struct {
	t       *testing.T
	kc      *kinesis.Client
	dc      *dynamodb.Client
	app     string
	streams []string
	table   *lease.DynamoStore
	col     *collector
	next    int // next record id to produce, across the streams
}

func newMultiFixture(t *testing.T, streams int, shards int32) *multiFixture {
	kc, dc := testenv.Kinesis(t), testenv.DynamoDB(t)
	f := &multiFixture{t: t, kc: kc, dc: dc, app: testenv.Name(t), col: newCollector()}
	for range streams {
		f.streams = append(f.streams, testenv.CreateStream(t, kc, shards))
	}
	table, err := lease.NewDynamoStore(dc, f.app)
	require.NoError(t, err)
	require.NoError(t, table.EnsureTable(testenv.Context(t, time.Minute), lease.TableOptions{}))
	t.Cleanup(func() {
		_, _ = dc.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(f.app)})
	})
	f.table = table
	return f
}

func (f *multiFixture) config(worker string) consumer.Config {
	cfg := consumer.Config{
		AppName:           f.app,
		WorkerID:          worker,
		Kinesis:           f.kc,
		DynamoDB:          f.dc,
		InitialPosition:   consumer.TrimHorizon,
		FailoverTime:      3 * time.Second,
		ShardSyncInterval: 2 * time.Second,
		PollInterval:      100 * time.Millisecond,
		ShutdownTimeout:   10 * time.Second,
		Logger:            testLogger(worker),
		NewProcessor:      f.col.processor(worker),
	}
	for _, s := range f.streams {
		cfg.Streams = append(cfg.Streams, consumer.StreamConfig{Name: s})
	}
	return cfg
}

func (f *multiFixture) start(cfg consumer.Config) *running {
	fx := &fixture{t: f.t}
	return fx.start(cfg)
}

// putPlain writes n plain records "<id>" to each stream, ids unique across
// the streams, with partition keys "key-<id mod keys>"; it returns the ids
// written to each stream.
func (f *multiFixture) putPlain(n, keys int) map[string][]int {
	out := map[string][]int{}
	ctx := testenv.Context(f.t, time.Minute)
	for _, s := range f.streams {
		var entries []types.PutRecordsRequestEntry
		for range n {
			entries = append(entries, types.PutRecordsRequestEntry{
				PartitionKey: aws.String(fmt.Sprintf("%s-key-%d", s, f.next%keys)), Data: []byte(strconv.Itoa(f.next))})
			out[s] = append(out[s], f.next)
			f.next++
		}
		res, err := f.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(s), Records: entries})
		require.NoError(f.t, err)
		require.Zero(f.t, aws.ToInt32(res.FailedRecordCount))
	}
	return out
}

func (f *multiFixture) leases() []lease.Lease {
	ls, err := f.table.List(testenv.Context(f.t, time.Minute))
	require.NoError(f.t, err)
	return ls
}

// owners counts the unfinished leases per worker, and per worker and stream.
func (f *multiFixture) owners() (map[string]int, map[string]map[string]int) {
	total, byStream := map[string]int{}, map[string]map[string]int{}
	for _, l := range f.leases() {
		if l.Finished() {
			continue
		}
		total[l.Owner]++
		if byStream[l.Owner] == nil {
			byStream[l.Owner] = map[string]int{}
		}
		byStream[l.Owner][l.StreamID.Name]++
	}
	return total, byStream
}

// startMultiWorkerProcess starts examples/worker with -streams.
func startMultiWorkerProcess(t *testing.T, f *multiFixture, bin, id string, failover time.Duration) *workerProcess {
	t.Helper()
	k, d := testenv.Endpoints(t)
	cmd := exec.Command(bin, "-streams", strings.Join(f.streams, ","), "-app", f.app, "-worker", id,
		"-kinesis-endpoint", k, "-dynamodb-endpoint", d, "-failover", failover.String())
	if os.Getenv("GOKCL_TEST_LOG") != "" {
		cmd.Args = append(cmd.Args, "-v")
		cmd.Stderr = os.Stderr
	}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &workerProcess{cmd: cmd, seen: map[int]int{}, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if shard, _, id, ok := parseWorkerLine(sc.Text()); ok && strings.Contains(shard, "/") {
				p.mu.Lock()
				p.seen[id]++
				p.n++
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		_ = cmd.Wait()
	})
	return p
}

// TestIntegrationMultiStreamWorkerKilled: three streams, one lease table,
// two worker processes (examples/worker -streams); the leases of all three
// streams are shared between them; one is killed with SIGKILL mid-stream,
// and the other takes its leases: nothing is lost on any stream.
func TestIntegrationMultiStreamWorkerKilled(t *testing.T) {
	f := newMultiFixture(t, 3, 2)
	bin := buildWorker(t)
	const failover = 3 * time.Second
	p1 := startMultiWorkerProcess(t, f, bin, "p1", failover)
	p2 := startMultiWorkerProcess(t, f, bin, "p2", failover)
	waitFor(t, time.Minute, "6 leases, 3 each", func() bool {
		o, _ := f.owners()
		return o["p1"] == 3 && o["p2"] == 3
	})
	for _, l := range f.leases() {
		require.True(t, l.MultiStream(), "%s: a multi-stream lease", l.Key)
		require.Equal(t, l.StreamID.LeaseKey(l.ShardID), l.Key)
		require.Contains(t, f.streams, l.StreamID.Name)
	}
	written := f.putPlain(100, 10)
	waitFor(t, time.Minute, "both processes to process records", func() bool { return p1.count() > 0 && p2.count() > 0 })

	killed := time.Now()
	require.NoError(t, p1.cmd.Process.Signal(syscall.SIGKILL))
	<-p1.done
	waitFor(t, 4*failover, "p2 to own every lease", func() bool {
		o, _ := f.owners()
		return o["p2"] == 6
	})
	t.Logf("failover after SIGKILL: %v (FailoverTime %v)", time.Since(killed), failover)
	for s, ids := range f.putPlain(100, 10) {
		written[s] = append(written[s], ids...)
	}
	all := func() (missing map[string][]int) {
		p1.mu.Lock()
		defer p1.mu.Unlock()
		p2.mu.Lock()
		defer p2.mu.Unlock()
		missing = map[string][]int{}
		for s, ids := range written {
			for _, id := range ids {
				if p1.seen[id] == 0 && p2.seen[id] == 0 {
					missing[s] = append(missing[s], id)
				}
			}
		}
		return missing
	}
	waitFor(t, time.Minute, "every record of every stream", func() bool { return len(all()) == 0 })
	require.Empty(t, all())
}

// TestIntegrationMultiStreamKCLTable: a lease table written by a Java KCL
// application in multi-stream mode (keys account:stream:epoch:shardId, the
// epoch in milliseconds as the KCL's own tests write it, streamName and
// shardId attributes), one lease held by a KCL worker that is gone: gokcl
// resumes every stream at its checkpoint, creates no lease of its own, and
// leaves the KCL's attributes in place.
func TestIntegrationMultiStreamKCLTable(t *testing.T) {
	f := newMultiFixture(t, 2, 1)
	ctx := testenv.Context(t, 2*time.Minute)
	first := f.putPlain(20, 1) // ids 0..19 in stream 0, 20..39 in stream 1
	seqs := map[string][]string{}
	for _, s := range f.streams {
		// The sequence numbers of the records, in order (one shard).
		it, err := f.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(s),
			ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		require.NoError(t, err)
		out, err := f.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		require.NoError(t, err)
		for _, r := range out.Records {
			seqs[s] = append(seqs[s], aws.ToString(r.SequenceNumber))
		}
		require.Len(t, seqs[s], 20)
	}
	str := func(v string) ddb.AttributeValue { return &ddb.AttributeValueMemberS{Value: v} }
	num := func(v string) ddb.AttributeValue { return &ddb.AttributeValueMemberN{Value: v} }
	for i, s := range f.streams {
		sum, err := f.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s)})
		require.NoError(t, err)
		d := sum.StreamDescriptionSummary
		id, err := lease.NewStreamID(aws.ToString(d.StreamARN), aws.ToTime(d.StreamCreationTimestamp))
		require.NoError(t, err)
		id.CreationEpoch = aws.ToTime(d.StreamCreationTimestamp).UnixMilli()
		item := map[string]ddb.AttributeValue{
			"leaseKey": str(id.LeaseKey("shardId-000000000000")), "leaseCounter": num("41"), "ownerSwitchesSinceCheckpoint": num("0"),
			"checkpoint": str(seqs[s][9]), "checkpointSubSequenceNumber": num("0"),
			"streamName": str(id.String()), "shardId": str("shardId-000000000000"),
		}
		if i == 0 { // held by a KCL worker that died: taken once it expires
			item["leaseOwner"] = str("ip-10-0-0-1.ec2.internal:4a1c5b6e")
		}
		_, err = f.dc.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.app), Item: item})
		require.NoError(t, err)
	}

	r := f.start(f.config("gokcl"))
	waitFor(t, time.Minute, "the 20 records after the checkpoints", func() bool { return f.col.unique() == 20 })
	time.Sleep(time.Second) // nothing more may arrive
	r.stop(t)
	require.Equal(t, 20, f.col.unique())
	for s, ids := range first {
		for _, id := range ids {
			_, processed := f.col.count[id]
			require.Equal(t, slices.Index(first[s], id) >= 10, processed, "stream %s record %d", s, id)
		}
	}
	require.Zero(t, f.col.duplicates())
	leases := f.leases()
	require.Len(t, leases, 2, "the KCL's leases, no new ones")
	for _, l := range leases {
		require.Greater(t, l.StreamID.CreationEpoch, int64(1e11), "the KCL's identifier kept: %s", l.Key)
		out, err := f.dc.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(f.app),
			Key: map[string]ddb.AttributeValue{"leaseKey": str(l.Key)}, ConsistentRead: aws.Bool(true)})
		require.NoError(t, err)
		require.Equal(t, str(l.StreamID.String()), out.Item["streamName"])
		require.Equal(t, str("shardId-000000000000"), out.Item["shardId"])
		require.Equal(t, seqs[l.StreamID.Name][19], l.Checkpoint.SequenceNumber, "checkpointed at the stream's last record")
	}
}
