//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/testenv"
	"github.com/gokcl/kcl/lease"
)

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

// gokcl runs the command in this process against the test servers (the
// test has made a client first, which skips or fails the test without
// them). It may run on any goroutine: it does not fail the test.
func gokcl(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := newEnv(&out, &errb, os.Getenv)
	if os.Getenv("AWS_REGION") == "" {
		e.awsOptions = append(e.awsOptions, config.WithRegion("us-east-1"))
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		e.awsOptions = append(e.awsOptions, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	code := run(testenv.Context(t, 2*time.Minute), args, e)
	t.Logf("gokcl %v: exit %d\n%s%s", args, code, out.String(), errb.String())
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// gokclJSON runs the command with -o json, requires success and decodes
// its output into v.
func gokclJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	decodeJSON(t, gokcl(t, append(args, "-o", "json")...), v)
}

// decodeJSON requires that the run succeeded and decodes its output.
func decodeJSON(t *testing.T, r result, v any) {
	t.Helper()
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), v), r.stdout)
}

// app is one stream and its application's lease table on the test servers.
type app struct {
	t      *testing.T
	kc     *kinesis.Client
	dc     *dynamodb.Client
	stream string
	table  *lease.DynamoStore
	col    *collector
	seqs   map[string]string // "<shard>/<id>" → sequence number
}

// newApp creates a stream and its application's lease table (so that the
// test can read it before a worker runs).
func newApp(t *testing.T, shards int32) *app {
	a := newAppWithoutTable(t, shards)
	require.NoError(t, a.table.EnsureTable(testenv.Context(t, time.Minute), lease.TableOptions{PollInterval: 50 * time.Millisecond}))
	return a
}

// newAppWithoutTable creates a stream; its application's lease table, named
// after it, is deleted when the test ends if something created it.
func newAppWithoutTable(t *testing.T, shards int32) *app {
	kc, dc := testenv.Kinesis(t), testenv.DynamoDB(t)
	stream := testenv.CreateStream(t, kc, shards)
	table, err := lease.NewDynamoStore(dc, stream)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = dc.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(stream)})
	})
	return &app{t: t, kc: kc, dc: dc, stream: stream, table: table, col: newCollector(), seqs: map[string]string{}}
}

// config is a consumer of the app with short intervals.
func (a *app) config(worker string, failover time.Duration) consumer.Config {
	return consumer.Config{
		StreamName:         a.stream,
		AppName:            a.stream,
		WorkerID:           worker,
		Kinesis:            a.kc,
		DynamoDB:           a.dc,
		InitialPosition:    consumer.TrimHorizon,
		FailoverTime:       failover,
		ShardSyncInterval:  2 * time.Second,
		PollInterval:       100 * time.Millisecond,
		CheckpointInterval: 100 * time.Millisecond,
		ShutdownTimeout:    10 * time.Second,
		NewProcessor:       a.col.processor(worker),
	}
}

// running is a consumer running in this process.
type running struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan error
}

func (a *app) start(cfg consumer.Config) *running {
	c, err := consumer.New(cfg)
	require.NoError(a.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: a.t, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	a.t.Cleanup(r.stop)
	return r
}

// stop shuts the consumer down gracefully and waits for it (once).
func (r *running) stop() {
	r.cancel()
	if err, ok := <-r.done; ok {
		close(r.done)
		if err != nil {
			r.t.Errorf("consumer Run: %v", err)
		}
	}
}

// hashKeyOf returns an explicit hash key inside shard i of n equal shards.
func hashKeyOf(i, n int) string {
	width := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(int64(n)))
	return new(big.Int).Add(new(big.Int).Mul(width, big.NewInt(int64(i))), big.NewInt(1)).String()
}

// put writes the records "<id>" for ids [from, to) into shard i of n, and
// returns their sequence numbers.
func (a *app) put(shard, shards, from, to int) []string {
	var entries []types.PutRecordsRequestEntry
	for id := from; id < to; id++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("k" + strconv.Itoa(id)),
			ExplicitHashKey: aws.String(hashKeyOf(shard, shards)), Data: []byte(strconv.Itoa(id))})
	}
	return a.putEntries(entries)
}

func (a *app) putEntries(entries []types.PutRecordsRequestEntry) []string {
	out, err := a.kc.PutRecords(testenv.Context(a.t, time.Minute), &kinesis.PutRecordsInput{StreamName: aws.String(a.stream), Records: entries})
	require.NoError(a.t, err)
	require.Zero(a.t, aws.ToInt32(out.FailedRecordCount))
	seqs := make([]string, len(out.Records))
	for i, r := range out.Records {
		seqs[i] = aws.ToString(r.SequenceNumber)
		if id, err := strconv.Atoi(string(entries[i].Data)); err == nil {
			a.seqs[aws.ToString(r.ShardId)+"/"+strconv.Itoa(id)] = seqs[i]
		}
	}
	return seqs
}

// seqOf returns the sequence number of the record with the id in the shard.
func (a *app) seqOf(shard string, id int) string {
	seq, ok := a.seqs[shard+"/"+strconv.Itoa(id)]
	require.True(a.t, ok, "no record %d in %s", id, shard)
	return seq
}

func (a *app) leases() map[string]lease.Lease {
	ls, err := a.table.List(testenv.Context(a.t, time.Minute))
	require.NoError(a.t, err)
	return byKey(ls)
}

func (a *app) owners() map[string]int {
	out := map[string]int{}
	for _, l := range a.leases() {
		if !l.Finished() {
			out[l.Owner]++
		}
	}
	return out
}

// shardID is the id of shard i of a new stream.
func shardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// collector counts how often each record id was processed.
type collector struct {
	mu    sync.Mutex
	count map[int]int
}

func newCollector() *collector { return &collector{count: map[int]int{}} }

func (c *collector) processor(string) func(string) consumer.RecordProcessor {
	return func(string) consumer.RecordProcessor {
		return consumer.RecordProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, r := range b.Records {
				if id, err := strconv.Atoi(string(r.Data)); err == nil {
					c.count[id]++
				}
			}
			return nil
		})
	}
}

// times returns how often id was processed.
func (c *collector) times(id int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count[id]
}

// all reports whether every id in [from, to) was processed at least n times.
func (c *collector) all(from, to, n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := from; id < to; id++ {
		if c.count[id] < n {
			return false
		}
	}
	return true
}

// processed returns a copy of the counts.
func (c *collector) processed() map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]int, len(c.count))
	for k, v := range c.count {
		out[k] = v
	}
	return out
}

var waitFor = testenv.WaitFor

// workerDir holds the examples/worker binary; TestMain removes it.
var workerDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if workerDir != "" {
		_ = os.RemoveAll(workerDir)
	}
	os.Exit(code)
}

// buildWorker builds examples/worker once per test binary.
var buildWorker = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gokcl-worker")
	if err != nil {
		return "", err
	}
	workerDir = dir
	bin := filepath.Join(dir, "worker")
	// examples/ is a module of its own (its worker serves Prometheus
	// metrics, which the library does not depend on).
	cmd := exec.Command("go", "build", "-o", bin, "./worker")
	cmd.Dir = filepath.Join("..", "..", "examples")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build examples/worker: %v\n%s", err, out)
	}
	return bin, nil
})

// startWorkerProcess starts examples/worker as a separate process, which the
// test can kill; it is killed when the test ends.
func (a *app) startWorkerProcess(id string, failover time.Duration) *os.Process {
	bin, err := buildWorker()
	require.NoError(a.t, err)
	cmd := exec.Command(bin, "-stream", a.stream, "-app", a.stream, "-worker", id, "-failover", failover.String())
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	require.NoError(a.t, cmd.Start())
	a.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd.Process
}
