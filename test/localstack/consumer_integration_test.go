//go:build integration

package localstack

import (
	"bufio"
	"context"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/testenv"
)

// 1. One worker reads every record of a 4-shard stream from TRIM_HORIZON,
// plain and KPL-aggregated input mixed.
func TestIntegrationOneWorkerReadsEverything(t *testing.T) {
	f := newFixture(t, 4)
	f.putPlain(200, 50)
	f.putAggregated(2000, 100)
	f.putPlain(100, 50)
	r := f.start(f.config("w1"))
	waitFor(t, 2*time.Minute, "2300 records", func() bool { return f.col.unique() == 2300 })
	r.stop(t)
	require.Empty(t, f.col.missing(2300))
	require.Zero(t, f.col.duplicates())
	require.Empty(t, f.col.outOfOrder())
	for _, l := range f.leases() {
		require.Empty(t, l.Owner, "released at shutdown: %s", l.Key)
	}
}

// 2. Three workers on six shards end with two each; every record is
// processed once.
func TestIntegrationThreeWorkersShareSixShards(t *testing.T) {
	f := newFixture(t, 6)
	var rs []*running
	for _, id := range []string{"w1", "w2", "w3"} {
		rs = append(rs, f.start(f.config(id)))
	}
	balanced := func() bool {
		o := f.owners()
		return o["w1"] == 2 && o["w2"] == 2 && o["w3"] == 2
	}
	waitFor(t, time.Minute, "2 leases per worker", balanced)
	// Balanced can be a passing state while a steal is under way: after one
	// failover time more, the assignment must hold still.
	time.Sleep(3 * time.Second)
	require.True(t, balanced(), "still 2 leases each: %v", f.owners())
	leasesBefore := f.leases()
	f.putPlain(300, 60)
	waitFor(t, time.Minute, "300 records", func() bool { return f.col.unique() == 300 })
	time.Sleep(3 * time.Second) // a steady-state window: two taker cycles
	for i, l := range f.leases() {
		require.Equal(t, leasesBefore[i].Owner, l.Owner, "no lease moves in steady state: %s", l.Key)
	}
	for _, r := range rs {
		r.stop(t)
	}
	require.Zero(t, f.col.duplicates())
	f.col.mu.Lock()
	defer f.col.mu.Unlock()
	require.Len(t, f.col.byWorker, 3, "every worker processed records")
}

// 3. Split one shard and merge two while producing: every record processed,
// and each partition key's records in the order they were written, across
// parents and children.
func TestIntegrationSplitAndMergeKeepOrder(t *testing.T) {
	f := newFixture(t, 2)
	rs := []*running{f.start(f.config("w1")), f.start(f.config("w2"))}
	ctx := testenv.Context(t, 2*time.Minute)
	f.putPlain(200, 40)

	shards := f.openShards(ctx)
	mid := new(big.Int).Lsh(big.NewInt(1), 126) // inside shard 0's range
	_, err := f.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(f.stream),
		ShardToSplit: aws.String(shards[0]), NewStartingHashKey: aws.String(mid.String())})
	require.NoError(t, err)
	testenv.WaitStreamActive(t, f.kc, f.stream)
	f.putPlain(200, 40)
	f.putAggregated(300, 30)

	// Merge the split's two children (adjacent: they share the old range).
	shards = f.openShards(ctx)
	_, err = f.kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(f.stream),
		ShardToMerge: aws.String(shards[len(shards)-2]), AdjacentShardToMerge: aws.String(shards[len(shards)-1])})
	require.NoError(t, err)
	testenv.WaitStreamActive(t, f.kc, f.stream)
	f.putPlain(200, 40)

	waitFor(t, 2*time.Minute, "900 records", func() bool { return f.col.unique() == 900 })
	for _, r := range rs {
		r.stop(t)
	}
	require.Empty(t, f.col.missing(900))
	require.Empty(t, f.col.outOfOrder())
	finished := 0
	for _, l := range f.leases() {
		if l.Finished() {
			finished++
			require.NotEmpty(t, l.ChildShardIDs, l.Key)
		}
	}
	require.Equal(t, 3, finished, "shard 0 and its two children reached SHARD_END")
}

// openShards lists the ids of the open shards, sorted.
func (f *fixture) openShards(ctx context.Context) []string {
	out, err := f.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(f.stream)})
	require.NoError(f.t, err)
	var ids []string
	for _, s := range out.Shards {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			ids = append(ids, aws.ToString(s.ShardId))
		}
	}
	slices.Sort(ids)
	return ids
}

// 4. A worker in another process is killed with SIGKILL mid-stream: the
// other worker takes its shards within the failover bound and nothing is
// lost. Then a restart of the workers resumes from the checkpoints.
func TestIntegrationCrashedWorkerProcess(t *testing.T) {
	f := newFixture(t, 4)
	bin := buildWorker(t)
	const failover = 3 * time.Second
	proc := startWorkerProcess(t, f, bin, "proc", failover)
	waitFor(t, time.Minute, "the process to hold all leases", func() bool { return f.owners()["proc"] == 4 })

	cfg := f.config("w1")
	cfg.FailoverTime = failover
	w1 := f.start(cfg)
	waitFor(t, time.Minute, "2 leases each", func() bool {
		o := f.owners()
		return o["proc"] == 2 && o["w1"] == 2
	})
	f.putPlain(400, 40)
	waitFor(t, time.Minute, "the process to process records", func() bool { return proc.count() > 0 })

	killed := time.Now()
	require.NoError(t, proc.cmd.Process.Signal(syscall.SIGKILL))
	<-proc.done // every line it printed has been read
	waitFor(t, 4*failover, "w1 to own every lease", func() bool { return f.owners()["w1"] == 4 })
	took := time.Since(killed)
	t.Logf("failover after SIGKILL: %v (FailoverTime %v)", took, failover)
	require.LessOrEqual(t, took, failover*3/2+2*time.Second, "failover bound: 1.5 × FailoverTime plus test-server latency")

	f.putAggregated(400, 50)
	waitFor(t, time.Minute, "every record", func() bool {
		return len(missingAcross(800, f.col, proc)) == 0
	})
	w1.stop(t)
	checkpoints := map[string]string{}
	for _, l := range f.leases() {
		checkpoints[l.Key] = l.Checkpoint.String()
	}

	// Restart: a new worker resumes exactly after the checkpoints that the
	// graceful stop wrote: nothing is delivered twice.
	f.putPlain(100, 40)
	f2 := *f
	f2.col = newCollector()
	w2 := f2.start(f2.config("w2"))
	waitFor(t, time.Minute, "the 100 new records", func() bool { return f2.col.unique() == 100 })
	w2.stop(t)
	require.Zero(t, f2.col.duplicates())
	for id := range f2.col.count {
		require.GreaterOrEqual(t, id, 800, "record %d was processed before the checkpoints %v", id, checkpoints)
	}
}

// missingAcross lists ids in [0, n) processed neither in this process nor by
// the worker process.
func missingAcross(n int, col *collector, p *workerProcess) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, id := range col.missing(n) {
		if p.seen[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// 4b. A restart resumes in the middle of an aggregate: user records up to a
// manual checkpoint inside it are not delivered again, the rest are.
func TestIntegrationRestartInsideAnAggregate(t *testing.T) {
	f := newFixture(t, 1)
	f.putAggregated(100, 100) // one aggregate, user records 0..99
	cfg := f.config("w1")
	cfg.ManualCheckpoint = true
	cfg.NewProcessor = func(string) consumer.RecordProcessor {
		return consumer.RecordProcessorFunc(func(ctx context.Context, b *consumer.Batch) error {
			f.col.add("w1", b.ShardID, b.Records)
			return b.CheckpointAt(ctx, b.Records[59])
		})
	}
	w1 := f.start(cfg)
	waitFor(t, time.Minute, "100 records", func() bool { return f.col.unique() == 100 })
	w1.stop(t)
	l := f.leases()[0]
	require.EqualValues(t, 59, l.Checkpoint.SubSequenceNumber)

	f2 := *f
	f2.col = newCollector()
	w2 := f2.start(f2.config("w2"))
	waitFor(t, time.Minute, "the 40 records after the checkpoint", func() bool { return f2.col.unique() == 40 })
	w2.stop(t)
	for id := range f2.col.count {
		require.GreaterOrEqual(t, id, 60)
	}
}

// 5. Graceful shutdown of one of two workers: the other owns every shard
// within one taker cycle.
func TestIntegrationGracefulHandOff(t *testing.T) {
	f := newFixture(t, 4)
	w1 := f.start(f.config("w1"))
	w2 := f.start(f.config("w2"))
	waitFor(t, time.Minute, "2 leases each", func() bool {
		o := f.owners()
		return o["w1"] == 2 && o["w2"] == 2
	})
	time.Sleep(3 * time.Second) // one failover time: no steal under way
	require.Equal(t, map[string]int{"w1": 2, "w2": 2}, f.owners())
	f.putPlain(200, 20)
	waitFor(t, time.Minute, "200 records", func() bool { return f.col.unique() == 200 })
	w1.stop(t)
	stopped := time.Now()
	waitFor(t, time.Minute, "w2 to own every lease", func() bool { return f.owners()["w2"] == 4 })
	took := time.Since(stopped)
	taker := 1500 * time.Millisecond // FailoverTime/2
	t.Logf("graceful hand-off: %v (taker interval %v)", took, taker)
	require.LessOrEqual(t, took, taker+time.Second, "one taker cycle plus test-server latency")
	f.putPlain(100, 20)
	waitFor(t, time.Minute, "300 records", func() bool { return f.col.unique() == 300 })
	w2.stop(t)
	require.Zero(t, f.col.duplicates(), "a graceful hand-off checkpoints exactly")
}

// workerProcess is examples/worker running as a child process; its output
// lines are collected.
type workerProcess struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when its output has been read to the end
	mu   sync.Mutex
	seen map[int]int
	n    int
}

func (p *workerProcess) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func buildWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	// examples/ is a module of its own (its worker serves Prometheus
	// metrics, which the library does not depend on).
	cmd := exec.Command("go", "build", "-o", bin, "./worker")
	cmd.Dir = filepath.Join("..", "..", "examples")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run(), "build examples/worker")
	return bin
}

func startWorkerProcess(t *testing.T, f *fixture, bin, id string, failover time.Duration, flags ...string) *workerProcess {
	t.Helper()
	k, d := testenv.Endpoints(t)
	cmd := exec.Command(bin, append([]string{"-stream", f.stream, "-app", f.stream, "-worker", id,
		"-kinesis-endpoint", k, "-dynamodb-endpoint", d, "-failover", failover.String()}, flags...)...)
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
			if _, _, id, ok := parseWorkerLine(sc.Text()); ok {
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
		_ = cmd.Wait() // after the output is read: Wait closes the pipe
	})
	return p
}
