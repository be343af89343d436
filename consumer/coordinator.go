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
	eventExited
)

// event is something the coordinator's loop reacts to: a lease acquired or
// lost (from the lease manager's callbacks) or a shard worker that exited.
type event struct {
	kind   eventKind
	lease  lease.Lease
	handle *workerHandle
}

// workerHandle is the coordinator's grip on one shard worker goroutine.
type workerHandle struct {
	key    string
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the worker has returned
}

// coordinator owns the shard workers: it starts one per acquired lease and
// cancels it when the lease is lost. Its loop is the only goroutine touching
// workers; the lease manager's callbacks post events to an unbounded queue,
// so they never block. A second goroutine, the shard syncer, lists the
// stream's shards and creates the leases for shards that may start.
type coordinator struct {
	c *Consumer

	events *queue.Queue[event]

	workers  map[string]*workerHandle
	wg       sync.WaitGroup // shard workers
	stopping chan struct{}  // closed at graceful shutdown

	syncer *shardSyncer

	newProcMu sync.Mutex // NewProcessor is called one call at a time

	fmu      sync.Mutex
	finished map[string]bool // shards this worker processed to their end
	fchanged chan struct{}   // closed and replaced when finished grows
}

func newCoordinator(c *Consumer) *coordinator {
	co := &coordinator{
		c:        c,
		events:   queue.New[event](),
		workers:  make(map[string]*workerHandle),
		stopping: make(chan struct{}),
		finished: make(map[string]bool),
		fchanged: make(chan struct{}),
	}
	co.syncer = newShardSyncer(c)
	return co
}

// post queues an event for the loop. It never blocks.
func (co *coordinator) post(e event) {
	co.events.Push(e)
}

// run is the coordinator's loop. It returns nil when ctx is cancelled, or
// the fatal error that stopped the shard syncer or the lease manager.
func (co *coordinator) run(ctx context.Context, mgrDone chan error) error {
	syncCtx, cancelSync := context.WithCancel(ctx)
	syncErr := make(chan error, 1)
	go func() { syncErr <- co.syncer.run(syncCtx) }()
	defer func() {
		cancelSync()
		<-syncErr
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-syncErr:
			syncErr <- err // for the deferred wait
			return err     // nil only when ctx is done
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
		case eventExited:
			if co.workers[e.handle.key] == e.handle {
				delete(co.workers, e.handle.key)
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
	prev := co.workers[l.Key]
	ctx, cancel := context.WithCancelCause(co.c.hardCtx)
	h := &workerHandle{key: l.Key, cancel: cancel, done: make(chan struct{})}
	co.workers[l.Key] = h
	co.wg.Add(1)
	go func() {
		defer co.wg.Done()
		defer close(h.done)
		defer cancel(nil)
		if prev != nil {
			<-prev.done
		}
		newShardWorker(ctx, co.c, l, co.stopping).run(ctx)
		co.post(event{kind: eventExited, handle: h})
	}()
}

// stopWorkers asks every worker to stop gracefully and waits for them; if
// they overrun timeout, it cancels their contexts (hardCancel) and waits
// again: every call they make honours its context. Meanwhile it goes on
// handling events, so that a lease lost during the shutdown still cancels
// its worker (new leases start no worker: the lease manager releases them).
func (co *coordinator) stopWorkers(timeout time.Duration, hardCancel context.CancelFunc) {
	close(co.stopping)
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

// markFinished records that this worker processed a shard to its end, and
// wakes workers waiting for it as a parent.
func (co *coordinator) markFinished(shardID string) {
	co.fmu.Lock()
	defer co.fmu.Unlock()
	co.finished[shardID] = true
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

// isFinished reports whether this worker processed the shard to its end.
func (co *coordinator) isFinished(shardID string) bool {
	co.fmu.Lock()
	defer co.fmu.Unlock()
	return co.finished[shardID]
}

// lineage returns a snapshot of the shard lineage as this worker knows it:
// the last shard listing, the lease manager's last table scan and this
// worker's own finished shards.
func (co *coordinator) lineage() *lineage {
	return newLineage(co.syncer.graph.Load(), co.c.mgr.Leases(), co.isFinished)
}

// pendingParents returns the parents that still block the shard (see
// lineage.parentDone).
func (co *coordinator) pendingParents(shardID string, parents []string) []string {
	if len(parents) == 0 {
		return nil
	}
	ln := co.lineage()
	var pending []string
	for _, p := range parents {
		if !ln.parentDone(shardID, p) {
			pending = append(pending, p)
		}
	}
	return pending
}

// hashRange returns a shard's hash key range from the last shard listing,
// or empty strings if it is unknown.
func (co *coordinator) hashRange(shardID string) (start, end string) {
	g := co.syncer.graph.Load()
	if g == nil {
		return "", ""
	}
	s, ok := g.Shard(shardID)
	if !ok || s.HashKeyStart == nil || s.HashKeyEnd == nil {
		return "", ""
	}
	return s.HashKeyStart.String(), s.HashKeyEnd.String()
}
