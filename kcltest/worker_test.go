package kcltest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

func start(t *testing.T, cfg consumer.Config) *kcltest.Worker {
	t.Helper()
	w, err := kcltest.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	return w
}

func putN(t *testing.T, s *kcltest.Stream, prefix string, n int) []kcltest.PutResult {
	t.Helper()
	var out []kcltest.PutResult
	for i := range n {
		out = append(out, put(t, s, fmt.Sprintf("key-%d", i%7), "", fmt.Sprintf("%s-%d", prefix, i)))
	}
	return out
}

func waitProcessed(t *testing.T, rec *kcltest.Recorder, written []kcltest.PutResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := rec.WaitProcessed(ctx, written...); err != nil {
		t.Fatal(err)
	}
}

func leases(t *testing.T, store lease.Store) []lease.Lease {
	t.Helper()
	ls, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// callLog is a processor with every optional interface, logging its calls.
type callLog struct {
	mu    sync.Mutex
	calls []string
	block chan struct{} // if not nil, ProcessRecords waits on it or ctx
	ctxOK bool          // set when a blocked call saw its context cancelled
}

func (l *callLog) note(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *callLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		if c == s {
			n++
		}
	}
	return n
}

func (l *callLog) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

func (l *callLog) ProcessRecords(ctx context.Context, b *consumer.Batch) error {
	l.note("process")
	if l.block != nil {
		select {
		case <-l.block:
		case <-ctx.Done():
			l.mu.Lock()
			l.ctxOK = true
			l.mu.Unlock()
			return ctx.Err()
		}
	}
	return nil
}

func (l *callLog) InitializeShard(context.Context, consumer.ShardInfo) error {
	l.note("init")
	return nil
}

func (l *callLog) ShardEnded(context.Context, consumer.ShardInfo) error {
	l.note("ended")
	return nil
}

func (l *callLog) LeaseLost(context.Context, consumer.ShardInfo) { l.note("lost") }

func (l *callLog) ShutdownRequested(context.Context, consumer.ShardInfo) error {
	l.note("shutdown")
	return nil
}

func TestStopIsGracefulAndForwardsEveryCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := kcltest.NewStream(1)
		store := lease.NewMemoryStore()
		log := &callLog{}
		rec := kcltest.NewRecorder()
		w := start(t, kcltest.Config(s, store, "w1", rec.Wrap(func(string) consumer.RecordProcessor { return log })))
		waitProcessed(t, rec, putN(t, s, "a", 10))
		if _, _, err := s.Split("shardId-000000000000", nil); err != nil {
			t.Fatal(err)
		}
		waitProcessed(t, rec, putN(t, s, "b", 20))
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
		if log.count("init") != 3 || log.count("ended") != 1 || log.count("shutdown") != 2 || log.count("lost") != 0 {
			t.Errorf("callbacks %v: want 3 init, 1 ended (the parent), 2 shutdown (the children), no lost", log.calls)
		}
		for _, l := range leases(t, store) {
			if l.Owner != "" {
				t.Errorf("lease %s still owned by %s after a graceful stop", l.Key, l.Owner)
			}
		}
		if w.Err() != nil || rec.Duplicates() != 0 {
			t.Errorf("Err %v, %d duplicates", w.Err(), rec.Duplicates())
		}
	})
}

func TestCrashWritesNothingAndCallsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := kcltest.NewStream(2)
		store := lease.NewMemoryStore()
		log := &callLog{block: make(chan struct{})}
		cfg := kcltest.Config(s, store, "w1", func(string) consumer.RecordProcessor { return log })
		w := start(t, cfg)
		putN(t, s, "a", 10)
		waitFor(t, "both shards' batches in flight", func() bool { return log.count("process") == 2 })
		before := leases(t, store)
		crashed := time.Now()
		w.Crash()
		calls := log.total()
		// Without the cancellation, the calls would last until the worker
		// dropped its unrenewed leases (0.9 FailoverTime) or ShutdownTimeout.
		if !log.ctxOK || time.Since(crashed) >= cfg.FailoverTime/2 {
			t.Errorf("Crash returned after %v: the callbacks in flight must see their context cancelled at once", time.Since(crashed))
		}
		time.Sleep(time.Minute) // a lease would be renewed, released or checkpointed by now
		if got := leases(t, store); !slices.EqualFunc(before, got, func(a, b lease.Lease) bool {
			return a.Owner == "w1" && a.Owner == b.Owner && a.Counter == b.Counter && a.Checkpoint == b.Checkpoint
		}) {
			t.Errorf("the lease table changed after the crash:\n%+v\n%+v", before, got)
		}
		if log.total() != calls || log.count("shutdown") != 0 || log.count("lost") != 0 {
			t.Errorf("callbacks after the crash: %v", log.calls)
		}
		if w.Err() != nil || w.Stop() != nil {
			t.Error("a crashed worker reports no error")
		}
		select {
		case <-w.Done():
		default:
			t.Error("Done not closed after Crash")
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A 10-second failover in virtual time, as in the package documentation:
// the second worker steals half the leases at once, to balance, and takes
// the others once they expire.
func TestFailoverAfterACrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := kcltest.NewStream(4)
		store := lease.NewMemoryStore()
		rec := kcltest.NewRecorder()
		cfg := kcltest.Config(stream, store, "a", rec.Wrap(nil))
		cfg.FailoverTime = 10 * time.Second
		cfg.TakerInterval = 0 // the default, FailoverTime/2
		a := start(t, cfg)
		waitProcessed(t, rec, putN(t, stream, "first", 40))
		a.Crash()
		crashed := time.Now()
		cfg.WorkerID = "b"
		start(t, cfg)
		waitProcessed(t, rec, putN(t, stream, "second", 40))
		if took := time.Since(crashed); took < cfg.FailoverTime || took > 2*cfg.FailoverTime {
			t.Errorf("the second worker took over after %v, want within 1 to 2 FailoverTime", took)
		}
		for _, l := range leases(t, store) {
			if l.Owner != "b" {
				t.Errorf("lease %s owned by %q", l.Key, l.Owner)
			}
		}
	})
}

// The example of the package documentation.
func TestOneShardFailsOverAfterFailoverTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := kcltest.NewStream(1)
		store := lease.NewMemoryStore()
		rec := kcltest.NewRecorder()
		cfg := kcltest.Config(stream, store, "a", rec.Wrap(nil))
		cfg.FailoverTime = 10 * time.Second
		a := start(t, cfg)
		waitProcessed(t, rec, putN(t, stream, "one", 1))
		a.Crash()
		crashed := time.Now()
		cfg.WorkerID = "b"
		start(t, cfg)
		waitProcessed(t, rec, putN(t, stream, "two", 1))
		if took := time.Since(crashed); took < cfg.FailoverTime {
			t.Errorf("the second worker processed a record %v after the crash, before the lease expired", took)
		}
	})
}

func TestStartRefusesWhatItCannotRun(t *testing.T) {
	s := kcltest.NewStream(1)
	cfg := kcltest.Config(s, nil, "w1", kcltest.NewRecorder().Wrap(nil))
	if _, err := kcltest.Start(t.Context(), cfg); err == nil {
		t.Error("Start without a LeaseStore")
	}
	cfg = kcltest.Config(s, lease.NewMemoryStore(), "w1", nil)
	if _, err := kcltest.Start(t.Context(), cfg); !errors.Is(err, consumer.ErrInvalidConfig) {
		t.Errorf("Start without NewProcessor: %v", err)
	}
}

func TestRunErrorsReachStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := kcltest.NewStream(1)
		cfg := kcltest.Config(s, lease.NewMemoryStore(), "w1", kcltest.NewRecorder().Wrap(nil))
		cfg.StreamName = "missing"
		w := start(t, cfg)
		<-w.Done()
		if err := w.Stop(); err == nil {
			t.Error("Run on a missing stream returned nil")
		}
	})
}

func TestRecorderNamesWhatIsMissing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := kcltest.NewStream(1)
		rec := kcltest.NewRecorder()
		written := putN(t, s, "x", 3)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := rec.WaitProcessed(ctx, written...)
		if !errors.Is(err, context.DeadlineExceeded) || !containsAll(err.Error(), "0 of 3", written[0].SequenceNumber) {
			t.Errorf("WaitProcessed with nothing processed: %v", err)
		}
		if err := rec.WaitUnique(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitUnique: %v", err)
		}
	})
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func TestRecorderCountsRedeliveries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := kcltest.NewStream(1)
		store := lease.NewMemoryStore()
		rec := kcltest.NewRecorder()
		cfg := kcltest.Config(s, store, "a", rec.Wrap(nil))
		cfg.ManualCheckpoint = true // nothing checkpointed: a restart reads everything again
		a := start(t, cfg)
		written := putN(t, s, "x", 5)
		waitProcessed(t, rec, written)
		a.Crash()
		cfg.WorkerID = "b"
		start(t, cfg)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := rec.WaitUnique(ctx, 5); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the redeliveries", func() bool { return len(rec.Records()) == 10 })
		if rec.Unique() != 5 || rec.Duplicates() != 5 || len(rec.Shard("shardId-000000000000")) != 10 {
			t.Errorf("unique %d, duplicates %d, of the shard %d", rec.Unique(), rec.Duplicates(), len(rec.Shard("shardId-000000000000")))
		}
	})
}
