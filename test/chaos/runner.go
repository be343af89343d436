package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"golang.org/x/sync/errgroup"

	"github.com/gokcl/kcl/lease"
	"github.com/gokcl/kcl/test/chaos/faultproxy"
)

// Env is what a run needs from outside: clients of the test servers (used
// without faults, by the producer and the resharder), the servers' URLs (for
// the proxies), the worker binary and a log.
type Env struct {
	Kinesis               *kinesis.Client
	DynamoDB              *dynamodb.Client
	KinesisURL, DynamoURL string
	// WorkerBin is a build of examples/worker.
	WorkerBin string
	// Debug makes the workers log at debug level instead of info.
	Debug bool
	// Logf receives the run's progress: the events as they happen.
	Logf func(format string, args ...any)
}

// Worker settings: short intervals, so that a short run sees many renewals,
// takes and checkpoints.
const (
	pollInterval       = 200 * time.Millisecond
	shardSyncInterval  = 2 * time.Second
	checkpointInterval = time.Second
	shutdownTimeout    = 10 * time.Second
	maxRecords         = 200
)

// Run is one chaos run: a new stream and lease table, the worker processes
// behind their proxies, the producer, and the schedule drawn from the seed.
// NewRun sets it up, Execute runs it, Close tears it down (always call it).
type Run struct {
	env      Env
	seed     uint64
	p        Profile
	dir      string
	stream   string
	store    *lease.DynamoStore
	leases   *leaseLog
	workers  []*workerProc
	producer *producer
	schedule []Event
	started  time.Time

	// The deliveries read so far from the workers' outputs; only Execute's
	// goroutine touches them.
	tails      map[string]*tail
	deliveries []Delivery
	delivered  map[string]bool

	mu     sync.Mutex
	res    *Result
	storms int // storms under way

	closeOnce sync.Once
}

// NewRun creates the stream and the lease table and starts the proxies; dir
// receives the workers' outputs and logs.
func NewRun(ctx context.Context, env Env, seed uint64, p Profile, dir string) (*Run, error) {
	r := &Run{
		env: env, seed: seed, p: p, dir: dir,
		stream:    fmt.Sprintf("chaos-%s-%x-%d", p.Name, seed, time.Now().UnixNano()%1e9),
		schedule:  NewSchedule(seed, p),
		tails:     map[string]*tail{},
		delivered: map[string]bool{},
		res: &Result{Seed: seed, Profile: p.Name, Dir: dir, Faults: map[faultproxy.Kind]int{},
			Actions: map[Action]int{}, Skipped: map[Action]int{}},
	}
	r.leases = newLeaseLog(r.stream)
	if err := r.createStream(ctx); err != nil {
		return r, err
	}
	var err error
	if r.store, err = lease.NewDynamoStore(env.DynamoDB, r.stream); err != nil {
		return r, err
	}
	if err := r.store.EnsureTable(ctx, lease.TableOptions{PollInterval: 100 * time.Millisecond}); err != nil {
		return r, err
	}
	seeds := rand.New(rand.NewPCG(seed, 0x9e0c))
	r.producer = newProducer(env.Kinesis, r.stream, seeds.Uint64(), p.Keys, p.MaxAggregate)
	for i := range p.Workers {
		w, err := r.newWorker(fmt.Sprintf("w%d", i+1), seeds.Uint64(), seeds.Uint64(), seeds.Uint64())
		if err != nil {
			return r, err
		}
		r.workers = append(r.workers, w)
	}
	return r, nil
}

func (r *Run) createStream(ctx context.Context) error {
	_, err := r.env.Kinesis.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(r.stream), ShardCount: aws.Int32(int32(r.p.Shards))})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", r.stream, err)
	}
	return r.waitActive(ctx)
}

// faultPlan applies mix to every operation but the lease table's creation
// (a worker that cannot open its table exits at once, as documented), and
// besides expires GetRecords iterators half as often as it throttles.
func faultPlan(mix faultproxy.Mix) faultproxy.Plan {
	getRecords := mix
	getRecords.Expired = mix.Throttle / 2
	return faultproxy.Plan{"*": mix, "Kinesis_20131202.GetRecords": getRecords,
		"DynamoDB_20120810.DescribeTable": {}, "DynamoDB_20120810.CreateTable": {}}
}

func (r *Run) newWorker(id string, kinesisSeed, dynamoSeed, processSeed uint64) (*workerProc, error) {
	kp, err := faultproxy.New(r.env.KinesisURL, faultproxy.Options{Seed: kinesisSeed, Plan: faultPlan(r.p.Faults), MaxLatency: r.p.MaxLatency})
	if err != nil {
		return nil, err
	}
	dp, err := faultproxy.New(r.env.DynamoURL, faultproxy.Options{Seed: dynamoSeed, Plan: faultPlan(r.p.Faults), MaxLatency: r.p.MaxLatency,
		ConditionItems: true, Observe: r.leases.observer(id)})
	if err != nil {
		return nil, errors.Join(err, kp.Close())
	}
	args := []string{r.env.WorkerBin, "-stream", r.stream, "-app", r.stream, "-worker", id,
		"-kinesis-endpoint", kp.URL(), "-dynamodb-endpoint", dp.URL(),
		"-failover", r.p.FailoverTime.String(), "-poll", pollInterval.String(), "-shard-sync", shardSyncInterval.String(),
		"-checkpoint-interval", checkpointInterval.String(), "-shutdown-timeout", shutdownTimeout.String(),
		"-max-records", fmt.Sprint(maxRecords), "-stamp", "-v",
		"-fail", fmt.Sprint(r.p.ProcessFail), "-panic", fmt.Sprint(r.p.ProcessPanic), "-seed", fmt.Sprint(processSeed)}
	if r.env.Debug {
		args = append(args, "-debug")
	}
	return &workerProc{id: id, args: args, dir: r.dir, kinesis: kp, dynamo: dp}, nil
}

// Close kills the worker processes, stops the proxies, and deletes the
// stream and the lease table. It is safe to call more than once.
func (r *Run) Close() {
	r.closeOnce.Do(func() {
		for _, w := range r.workers {
			_ = w.close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = r.env.Kinesis.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(r.stream), EnforceConsumerDeletion: aws.Bool(true)})
		_, _ = r.env.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(r.stream)})
	})
}

// Execute runs the chaos phase, then lets the workers catch up without
// faults, stops them gracefully and checks what happened.
func (r *Run) Execute(ctx context.Context) *Result {
	r.started = time.Now()
	for _, e := range r.schedule {
		r.logf("scheduled %s", e)
	}
	for _, w := range r.workers {
		if err := w.start(); err != nil {
			r.problem("%v", err)
			return r.finish()
		}
	}
	if err := r.chaos(ctx); err != nil {
		r.problem("chaos phase: %v", err)
	}
	r.calm()
	if !r.drain(ctx) {
		r.res.DrainTimedOut = true
		r.logf("gave up waiting: %d of %d records processed", len(r.delivered), r.producer.count())
	}
	r.stopAll()
	return r.finish()
}

// chaos runs the producer and the two timelines (processes and network;
// resharding) for the profile's chaos time.
func (r *Run) chaos(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, r.p.Chaos)
	defer cancel()
	var procEvents, reshardEvents []Event
	for _, e := range r.schedule {
		if e.Action.resharding() {
			reshardEvents = append(reshardEvents, e)
		} else {
			procEvents = append(procEvents, e)
		}
	}
	g, gctx := errgroup.WithContext(cctx)
	g.Go(func() error { return r.producer.run(gctx, r.p.Round) })
	g.Go(func() error { r.processTimeline(gctx, procEvents); return nil })
	g.Go(func() error { return r.reshardTimeline(ctx, gctx, reshardEvents) })
	return g.Wait()
}

// episodeEnd is the end of an episode the process timeline started. do
// returns a positive duration to be called again that much later (a worker
// that has not exited yet).
type episodeEnd struct {
	at time.Time
	do func() (again time.Duration)
}

// processTimeline starts each event at its time and ends its episode For
// later, until ctx is done; the episodes still open then are ended by calm.
func (r *Run) processTimeline(ctx context.Context, events []Event) {
	var ends []episodeEnd
	for len(events) > 0 || len(ends) > 0 {
		var next time.Time
		isEnd := len(ends) > 0 && (len(events) == 0 || ends[0].at.Before(r.started.Add(events[0].At)))
		if isEnd {
			next = ends[0].at
		} else {
			next = r.started.Add(events[0].At)
		}
		if !sleepCtx(ctx, time.Until(next)) {
			return
		}
		var end episodeEnd
		if isEnd {
			end, ends = ends[0], ends[1:]
			if again := end.do(); again > 0 {
				end.at = time.Now().Add(again)
			} else {
				end.do = nil
			}
		} else {
			e := events[0]
			events = events[1:]
			end = episodeEnd{at: time.Now().Add(e.For), do: r.startEpisode(e)}
		}
		if end.do != nil {
			ends = append(ends, end)
			slices.SortFunc(ends, func(a, b episodeEnd) int { return a.at.Compare(b.at) })
		}
	}
}

// once adapts an episode's end that is never called again.
func once(f func()) func() time.Duration {
	return func() time.Duration { f(); return 0 }
}

// startEpisode does e and returns what ends it, or nil if it had no target.
func (r *Run) startEpisode(e Event) func() time.Duration {
	if e.Action == Storm {
		r.count(e.Action)
		r.logf("storm: fault rates ×%v for %v", r.p.StormFactor, e.For)
		r.storm(+1)
		return once(func() { r.logf("storm over"); r.storm(-1) })
	}
	w := r.pick(e, func(w *workerProc) bool { return w.is(stateRunning) && !w.partitioned() })
	if w == nil {
		return nil
	}
	inc := w.incarnation()
	switch e.Action {
	case Kill:
		w.kill()
		r.logf("killed %s#%d (SIGKILL); restart in %v", w.id, inc, e.For)
		return once(func() { r.restart(w) })
	case Restart:
		w.terminate()
		r.logf("stopping %s#%d (SIGTERM); restart in %v, or when it has exited", w.id, inc, e.For)
		return r.restartAfterExit(w, time.Now().Add(shutdownTimeout+5*time.Second))
	case Pause:
		w.pause()
		r.logf("paused %s#%d (SIGSTOP) for %v", w.id, inc, e.For)
		return once(func() {
			if w.resume() {
				r.logf("resumed %s#%d (SIGCONT)", w.id, inc)
			}
		})
	case Partition:
		w.setPartitioned(true)
		r.logf("partitioned %s from both servers for %v", w.id, e.For)
		return once(func() { w.setPartitioned(false); r.logf("healed %s", w.id) })
	}
	return nil
}

// pick chooses the target of e among the eligible workers, and counts e.
func (r *Run) pick(e Event, eligible func(*workerProc) bool) *workerProc {
	var ws []*workerProc
	for _, w := range r.workers {
		if eligible(w) {
			ws = append(ws, w)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(ws) == 0 {
		r.res.Skipped[e.Action]++
		return nil
	}
	r.res.Actions[e.Action]++
	return ws[int(e.Pick*float64(len(ws)))]
}

func (r *Run) skip(a Action) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Skipped[a]++
}

func (r *Run) count(a Action) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Actions[a]++
}

// restart starts a killed worker again.
func (r *Run) restart(w *workerProc) {
	if !w.is(stateDead) {
		return
	}
	if err := w.start(); err != nil {
		r.problem("%v", err)
		return
	}
	r.logf("started %s#%d", w.id, w.incarnation())
}

// restartAfterExit returns the end of a graceful restart: it starts the
// worker again once it has exited, and kills it if it is still stopping at
// the deadline.
func (r *Run) restartAfterExit(w *workerProc, deadline time.Time) func() time.Duration {
	return func() time.Duration {
		if w.is(stateStopping) {
			if time.Now().Before(deadline) {
				return 100 * time.Millisecond
			}
			r.problem("worker %s#%d did not stop within %v of SIGTERM", w.id, w.incarnation(), shutdownTimeout+5*time.Second)
			w.kill()
		}
		r.restart(w)
		return 0
	}
}

// storm starts (+1) or ends (-1) a storm; storms may overlap.
func (r *Run) storm(delta int) {
	r.mu.Lock()
	r.storms += delta
	plan := faultPlan(r.p.Faults)
	if r.storms > 0 {
		plan = faultPlan(r.p.Faults.Scale(r.p.StormFactor))
	}
	r.mu.Unlock()
	r.setPlans(plan)
}

func (r *Run) setPlans(p faultproxy.Plan) {
	for _, w := range r.workers {
		if err := w.setPlan(p); err != nil {
			r.problem("%v", err)
		}
	}
}

// calm ends every fault: no fault plans, partitions healed, paused workers
// resumed, stopped ones started again.
func (r *Run) calm() {
	r.logf("chaos over: no more faults; every worker running")
	r.setPlans(nil)
	for _, w := range r.workers {
		w.setPartitioned(false)
		w.resume()
		if w.is(stateStopping) {
			w.mu.Lock()
			done := w.done
			w.mu.Unlock()
			if !waitClosed(done, shutdownTimeout+5*time.Second) {
				r.problem("worker %s did not stop within %v of SIGTERM", w.id, shutdownTimeout+5*time.Second)
				w.kill()
			}
		}
		r.restart(w)
	}
}

// drain waits until every record produced has been processed, or the
// profile's drain time has passed.
func (r *Run) drain(ctx context.Context) bool {
	deadline := time.Now().Add(r.p.Drain)
	for {
		r.collect()
		if len(r.delivered) >= r.producer.count() {
			r.logf("every record processed (%d)", len(r.delivered))
			return true
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, 500*time.Millisecond) {
			return false
		}
	}
}

// stopAll stops every worker gracefully, at once, and waits for them.
func (r *Run) stopAll() {
	var dones []<-chan struct{}
	for _, w := range r.workers {
		dones = append(dones, w.terminate())
	}
	for i, w := range r.workers {
		if dones[i] != nil && !waitClosed(dones[i], shutdownTimeout+5*time.Second) {
			r.problem("worker %s did not stop within %v of SIGTERM", w.id, shutdownTimeout+5*time.Second)
			w.kill()
		}
	}
	r.logf("every worker stopped")
}

// collect reads what the workers printed since the last call.
func (r *Run) collect() {
	for _, w := range r.workers {
		w.mu.Lock()
		outputs := append([]string(nil), w.outputs...)
		w.mu.Unlock()
		for inc, path := range outputs {
			t := r.tails[path]
			if t == nil {
				t = &tail{path: path, worker: w.id, incarnation: inc}
				r.tails[path] = t
			}
			ds, err := t.read()
			if err != nil {
				r.problem("%v", err)
			}
			for _, d := range ds {
				r.delivered[recordData(d.Key, d.N)] = true
			}
			r.deliveries = append(r.deliveries, ds...)
		}
	}
}

// finish reads the final lease table, checks the history and completes
// the result.
func (r *Run) finish() *Result {
	r.collect()
	res := r.res
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	final := map[string]FinalLease{}
	if r.store != nil {
		leases, err := r.store.List(ctx)
		if err != nil {
			r.problem("read the final lease table: %v", err)
			final = nil
		}
		for _, l := range leases {
			final[l.Key] = FinalLease{Owner: l.Owner, CheckpointOwner: l.CheckpointOwner, Counter: l.Counter, Checkpoint: l.Checkpoint}
		}
	}
	writes, errs := r.leases.snapshot()
	for _, err := range errs {
		r.problem("lease log: %v", err)
	}
	res.Report = Check(History{Produced: r.producer.produced(), Deliveries: r.deliveries, Writes: writes, Final: final},
		CheckConfig{StaleAfter: r.p.FailoverTime * 3 / 2})
	for _, w := range r.workers {
		for _, p := range w.unexpectedExits() {
			r.problem("%s", p)
		}
		for k, n := range w.kinesis.Stats().Totals() {
			res.Faults[k] += n
		}
		for k, n := range w.dynamo.Stats().Totals() {
			res.Faults[k] += n
		}
	}
	res.Duration = time.Since(r.started)
	return res
}

func (r *Run) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.logf("PROBLEM: %s", msg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Problems = append(r.res.Problems, msg)
}

func (r *Run) logf(format string, args ...any) {
	if r.env.Logf != nil {
		r.env.Logf("%7.2fs %s", time.Since(r.started).Seconds(), fmt.Sprintf(format, args...))
	}
}
