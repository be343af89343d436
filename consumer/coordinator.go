package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gokcl/kcl/internal/queue"
	"github.com/gokcl/kcl/lease"
)

type eventKind uint8

const (
	eventAcquired eventKind = iota
	eventLost
	eventHandOff
	eventExited
	eventStreamRemoved
)

// event is something the coordinator's loop reacts to: a lease acquired,
// lost or asked for by another worker (from the lease manager's callbacks),
// a shard worker that exited, or a stream no longer consumed.
type event struct {
	kind   eventKind
	lease  lease.Lease
	handle *workerHandle
	stream *stream
}

// workerHandle is the coordinator's grip on one shard worker goroutine.
type workerHandle struct {
	key    string // the lease key
	st     *stream
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the worker has returned

	// stop is closed to end the worker gracefully (finish the batch in
	// flight, ShutdownRequested, checkpoint, release): when the consumer
	// shuts down, or when another worker asked for the lease. Only the
	// coordinator's loop closes it.
	stop    chan struct{}
	stopped bool
}

// end closes h.stop once.
func (h *workerHandle) end() {
	if !h.stopped {
		h.stopped = true
		close(h.stop)
	}
}

// coordinator owns the shard workers: it starts one per acquired lease and
// cancels it when the lease is lost. Its loop is the only goroutine touching
// workers; the lease manager's callbacks post events to an unbounded queue,
// so they never block. Each stream has a goroutine of its own (its shard
// syncer, which lists the stream's shards and creates the leases for shards
// that may start); a multi-stream consumer also runs the discovery loop,
// which adds and removes streams (see discover).
type coordinator struct {
	c *Consumer

	events *queue.Queue[event]

	workers  map[string]*workerHandle // by lease key
	wg       sync.WaitGroup           // shard workers, and releases of leases asked for without one
	stopping chan struct{}            // closed at graceful shutdown: start no more workers

	table *tableReader // the syncers' shared reads of the lease table
	set   *streamSet   // a multi-stream consumer's decisions; nil for one stream

	smu     sync.Mutex
	streams map[lease.StreamID]*stream // guarded by smu: the streams consumed (the single one under the zero ID)
	swg     sync.WaitGroup             // the streams' goroutines and the discovery loop
	rescan  chan struct{}              // capacity 1: run discovery now (a stream may be gone)

	newProcMu sync.Mutex // NewProcessor is called one call at a time

	fmu      sync.Mutex
	finished map[string]bool // lease keys of the shards this worker processed to their end
	fchanged chan struct{}   // closed and replaced when finished grows
}

func newCoordinator(c *Consumer) *coordinator {
	co := &coordinator{
		c:        c,
		events:   queue.New[event](),
		workers:  make(map[string]*workerHandle),
		stopping: make(chan struct{}),
		table:    newTableReader(c.mgr.Refresh),
		streams:  make(map[lease.StreamID]*stream),
		rescan:   make(chan struct{}, 1),
		finished: make(map[string]bool),
		fchanged: make(chan struct{}),
	}
	if c.cfg.multiStream() {
		co.set = newStreamSet(c.cfg.Kinesis.(streamDescriber), c.cfg.InitialPosition, c.cfg.FormerStreams, c.log)
	}
	return co
}

// post queues an event for the loop. It never blocks.
func (co *coordinator) post(e event) {
	co.events.Push(e)
}

// run is the coordinator's loop. It returns nil when ctx is cancelled, or
// the fatal error that stopped the single stream's shard syncer or the
// lease manager. The streams' goroutines and the discovery loop have
// returned when it returns.
func (co *coordinator) run(ctx context.Context, mgrDone chan error) error {
	runCtx, cancelRun := context.WithCancel(ctx)
	defer func() {
		cancelRun()
		co.swg.Wait()
	}()
	fatal := make(chan error, 1)
	if co.set != nil {
		co.swg.Go(func() { co.discover(runCtx) })
	} else {
		co.addStream(runCtx, co.c.single, fatal)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-fatal:
			return err
		case err := <-mgrDone:
			mgrDone <- err // Run waits for it too
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			return fmt.Errorf("lease manager: %w", err)
		case <-co.events.Ready():
			co.drain()
		}
	}
}

func (co *coordinator) drain() {
	for _, e := range co.events.Drain() {
		switch e.kind {
		case eventAcquired:
			co.start(e.lease)
		case eventLost:
			if h := co.workers[e.lease.Key]; h != nil {
				h.cancel(errLeaseLost)
			}
		case eventHandOff:
			co.handOff(e.lease)
		case eventExited:
			if co.workers[e.handle.key] == e.handle {
				delete(co.workers, e.handle.key)
			}
		case eventStreamRemoved:
			for _, h := range co.workers {
				if h.st == e.stream {
					h.end()
				}
			}
		}
	}
}

// start runs a shard worker for a newly acquired lease. If a worker for the
// same shard is still exiting (the lease was lost and taken back), the new
// one waits for it, so that one shard never has two workers at once.
func (co *coordinator) start(l lease.Lease) {
	select {
	case <-co.stopping:
		return // the lease manager releases it when it stops
	default:
	}
	st, ok := co.streamOf(l)
	if !ok {
		// Taken just as its stream stopped being consumed.
		co.release(l, "releasing a lease of a stream no longer consumed")
		return
	}
	prev := co.workers[l.Key]
	ctx, cancel := context.WithCancelCause(co.c.hardCtx)
	h := &workerHandle{key: l.Key, st: st, cancel: cancel, done: make(chan struct{}), stop: make(chan struct{})}
	co.workers[l.Key] = h
	co.wg.Add(1)
	go func() {
		defer co.wg.Done()
		defer close(h.done)
		defer cancel(nil)
		if prev != nil {
			<-prev.done
		}
		newShardWorker(ctx, co.c, st, l, h.stop).run(ctx)
		co.post(event{kind: eventExited, handle: h})
	}()
}

// handOff ends the shard worker of a lease another worker asked for, as a
// shutdown does: the batch in flight, ShutdownRequested, the checkpoint,
// and the release, which hands the lease over. A lease with no worker left
// (its worker exited without releasing it) is released at once.
func (co *coordinator) handOff(l lease.Lease) {
	co.c.log.Info("another worker asked for a lease; handing it over after the batch in flight", "shard", l.Key, "to", l.Owner)
	if h := co.workers[l.Key]; h != nil {
		h.end()
		return
	}
	co.release(l, "releasing a lease asked for failed")
}

// release releases a lease that has no shard worker, in a goroutine of its
// own; failed tells the log what failed.
func (co *coordinator) release(l lease.Lease, failed string) {
	select {
	case <-co.stopping:
		return // the lease manager's final release releases (or hands over) it
	default:
	}
	co.wg.Go(func() {
		ctx, cancel := context.WithTimeout(co.c.hardCtx, 2*co.c.mgr.Config().RenewInterval)
		defer cancel()
		if err := co.c.mgr.Release(ctx, l.Key); err != nil {
			co.c.log.Warn(failed, "lease", l.Key, "error", err)
		}
	})
}

// stopWorkers asks every worker to stop gracefully and waits for them; if
// they overrun timeout, it cancels their contexts (hardCancel) and waits
// again: every call they make honours its context. Meanwhile it goes on
// handling events, so that a lease lost during the shutdown still cancels
// its worker (new leases start no worker: the lease manager releases them).
func (co *coordinator) stopWorkers(timeout time.Duration, hardCancel context.CancelFunc) {
	close(co.stopping)
	for _, h := range co.workers {
		h.end()
	}
	done := make(chan struct{})
	go func() {
		co.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-co.events.Ready():
			co.drain()
		case <-t.C:
			co.c.log.Warn("graceful shutdown overran ShutdownTimeout; cancelling shard workers", "timeout", timeout)
			hardCancel()
		}
	}
}

// markFinished records that this worker processed a shard to its end (by
// lease key), and wakes workers waiting for it as a parent.
func (co *coordinator) markFinished(key string) {
	co.fmu.Lock()
	defer co.fmu.Unlock()
	co.finished[key] = true
	close(co.fchanged)
	co.fchanged = make(chan struct{})
}

// finishedChanged returns a channel closed the next time a shard finishes
// on this worker.
func (co *coordinator) finishedChanged() <-chan struct{} {
	co.fmu.Lock()
	defer co.fmu.Unlock()
	return co.fchanged
}

// isFinished reports whether this worker processed the shard of that lease
// key to its end.
func (co *coordinator) isFinished(key string) bool {
	co.fmu.Lock()
	defer co.fmu.Unlock()
	return co.finished[key]
}

// finishedOf returns whether this worker processed a shard of st to its
// end, by shard id.
func (co *coordinator) finishedOf(st *stream) func(shardID string) bool {
	return func(shardID string) bool { return co.isFinished(st.key(shardID)) }
}

// lineage returns a snapshot of a stream's shard lineage as this worker
// knows it: the stream's last shard listing, its leases in the lease
// manager's last table scan and this worker's own finished shards.
func (co *coordinator) lineage(st *stream) *lineage {
	return newLineage(st.syncer.graph.Load(), st.leases(co.c.mgr.Leases()), co.finishedOf(st))
}

// pendingParents returns the parents that still block the shard (see
// lineage.parentDone).
func (co *coordinator) pendingParents(st *stream, shardID string, parents []string) []string {
	if len(parents) == 0 {
		return nil
	}
	ln := co.lineage(st)
	var pending []string
	for _, p := range parents {
		if !ln.parentDone(shardID, p) {
			pending = append(pending, p)
		}
	}
	return pending
}

// hashRange returns a shard's hash key range from its stream's last shard
// listing, or empty strings if it is unknown.
func (co *coordinator) hashRange(st *stream, shardID string) (start, end string) {
	g := st.syncer.graph.Load()
	if g == nil {
		return "", ""
	}
	s, ok := g.Shard(shardID)
	if !ok || s.HashKeyStart == nil || s.HashKeyEnd == nil {
		return "", ""
	}
	return s.HashKeyStart.String(), s.HashKeyEnd.String()
}
