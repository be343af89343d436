package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/lease"
)

// errLeaseLost is the cancellation cause of a shard worker whose lease was
// lost, telling it apart from a consumer that stops.
var errLeaseLost = fmt.Errorf("shard worker: %w", ErrLeaseLost)

// errStopping reports that a graceful shutdown interrupted a wait.
var errStopping = errors.New("consumer: shutting down")

// shardWorker processes one leased shard, in one goroutine, from the moment
// the lease is acquired until the shard ends, the lease is lost, another
// worker asks for it, or the consumer stops. Its context is scoped to the
// lease: the coordinator cancels it (with cause errLeaseLost) when the lease
// is lost, and the consumer cancels it when a shutdown overruns
// ShutdownTimeout. A graceful end (the consumer shuts down, or another
// worker asked for the lease: a hand-off) is signalled by closing stopping
// instead, so the batch in flight can finish.
type shardWorker struct {
	c        *Consumer
	st       *stream
	key      string // the lease key; info.ShardID is the shard's id
	lease    lease.Lease
	info     ShardInfo
	log      *slog.Logger
	stopping <-chan struct{}

	stat      *shardStat // for Status
	proc      RecordProcessor
	cp        *shardCheckpointer
	processed checkpoint.Position // the last user record processed (or skipped as not ours)
	lastWrite time.Time           // of the last automatic checkpoint written at once
	misrouted misroutedCount
}

// misroutedCount counts the user records of aggregates whose hash keys are
// outside the shard's range, delivered or dropped, for a warning at most
// once per misroutedWarnEvery.
type misroutedCount struct {
	delivered, dropped int
	warned             time.Time
	unwarned           bool // counted since the last warning
}

const misroutedWarnEvery = time.Minute

func newShardWorker(ctx context.Context, c *Consumer, st *stream, l lease.Lease, stopping <-chan struct{}) *shardWorker {
	shardID := l.Shard()
	w := &shardWorker{
		c:        c,
		st:       st,
		key:      l.Key,
		lease:    l,
		info:     ShardInfo{ShardID: shardID, Stream: st.info, ParentShardIDs: l.ParentShardIDs, Checkpoint: l.Checkpoint},
		log:      st.log.With("shard", shardID),
		stopping: stopping,
	}
	w.cp = &shardCheckpointer{shardID: shardID, key: l.Key, store: c.mgr, lease: ctx}
	if !l.Checkpoint.IsSentinel() {
		w.cp.setDelivered(l.Checkpoint)
		w.processed = l.Checkpoint
	}
	return w
}

// run is the worker's whole life; ctx is the one it was made with.
func (w *shardWorker) run(ctx context.Context) {
	w.log.Info("shard worker starting", "checkpoint", w.lease.Checkpoint.String())
	w.begin()
	defer w.end(ctx)
	err := w.waitParents(ctx)
	if err == nil {
		err = stopped(ctx, w.stopping)
	}
	if err == nil {
		w.setState(ShardInitializing)
		err = w.retry(ctx, "create the processor", w.newProcessor)
	}
	if err == nil {
		err = w.retry(ctx, "initialize", w.initialize)
	}
	var end *fetchedBatch
	if err == nil {
		end, err = w.process(ctx)
	}
	switch {
	case err == nil:
		w.finish(ctx, end)
	case errors.Is(err, errStopping):
		w.shutdown(ctx)
	case errors.Is(context.Cause(ctx), errLeaseLost):
		w.leaseLost()
	default:
		w.log.Info("shard worker stopped", "reason", context.Cause(ctx))
	}
}

// waitParents returns once no parent shard blocks this one any more: each
// was processed to its end, or will never be processed by this application
// (trimmed, or an ancestor of where it started; see lineage). A parent with
// no lease yet blocks as long as the application will reach it.
func (w *shardWorker) waitParents(ctx context.Context) error {
	for logged := false; ; logged = true {
		pending := w.c.co.pendingParents(w.st, w.info.ShardID, w.lease.ParentShardIDs)
		if len(pending) == 0 {
			return nil
		}
		if !logged {
			w.setState(ShardWaitingForParents)
			w.log.Info("waiting for parent shards to be processed to their end", "parents", pending)
			if g := w.st.syncer.graph.Load(); g != nil {
				if _, ok := g.Shard(w.info.ShardID); !ok {
					w.st.syncer.kick() // a listing that has this shard tells trimmed parents apart
				}
			}
		}
		if err := w.pause(ctx, w.c.cfg.TakerInterval/2, w.c.co.finishedChanged()); err != nil {
			return err
		}
	}
}

// pause waits d, or less if wake is closed; it returns an error if the
// lease ends (the context's cause) or the consumer starts shutting down.
func (w *shardWorker) pause(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-w.stopping:
		return errStopping
	case <-wake:
	case <-t.C:
	}
	return nil
}

// newProcessor makes the shard's processor with NewProcessor or
// NewShardProcessor, one call at a time, as documented.
func (w *shardWorker) newProcessor(context.Context) error {
	w.c.co.newProcMu.Lock()
	defer w.c.co.newProcMu.Unlock()
	what := "NewProcessor"
	if w.c.cfg.NewShardProcessor != nil {
		what = "NewShardProcessor"
	}
	return safely(what, func() error {
		if w.c.cfg.NewShardProcessor != nil {
			w.proc = w.c.cfg.NewShardProcessor(w.info)
		} else {
			w.proc = w.c.cfg.NewProcessor(w.info.ShardID)
		}
		if w.proc == nil {
			return errors.New(what + " returned nil")
		}
		return nil
	})
}

func (w *shardWorker) initialize(ctx context.Context) error {
	if si, ok := w.proc.(ShardInitializer); ok {
		return safely("InitializeShard", func() error { return si.InitializeShard(ctx, w.info) })
	}
	return nil
}

// stopped returns why the worker must not start more work: its lease ended
// (the context's cause) or the consumer is shutting down; nil otherwise.
func stopped(ctx context.Context, stopping <-chan struct{}) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	select {
	case <-stopping:
		return errStopping
	default:
		return nil
	}
}

// safely calls a user callback, turning a panic into an error so that one
// faulty callback cannot crash the process.
func safely(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s panicked: %v\n%s", what, r, debug.Stack())
		}
	}()
	return fn()
}

// process runs the shard's source and delivers its batches until the shard ends
// (returning its last batch), the lease is lost or the consumer stops.
func (w *shardWorker) process(ctx context.Context) (*fetchedBatch, error) {
	f := w.newSource()
	w.setState(ShardProcessing)
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.run(fctx)
	}()
	defer func() {
		cancel()
		<-done
		for b := range f.batches() { // batches fetched ahead and never processed
			f.done(b)
		}
	}()
	w.lastWrite = time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-w.stopping:
			return nil, errStopping
		case b, ok := <-f.batches():
			if !ok {
				return nil, context.Cause(ctx)
			}
			// select picks at random among ready cases: a batch fetched
			// ahead must not start after the lease ended or shutdown began.
			if err := stopped(ctx, w.stopping); err != nil {
				f.done(b)
				return nil, err
			}
			err := w.handle(ctx, b)
			f.done(b)
			if err != nil {
				return nil, err
			}
			if b.end {
				return b, nil
			}
		}
	}
}

// newSource returns the shard's reader, reporting to the worker's Status:
// a subscriber with enhanced fan-out, else a fetcher.
func (w *shardWorker) newSource() source {
	if w.c.cfg.Retrieval.FanOut() {
		s := newSubscriber(w.c, w.st, w.info.ShardID, w.lease.Checkpoint, w.converter())
		s.stat = w.stat
		return s
	}
	f := newFetcher(w.c, w.st, w.info.ShardID, w.lease.Checkpoint, w.converter())
	f.stat = w.stat
	return f
}

// converter returns the shard's record converter: it resumes after the
// lease's checkpoint and, when the shard's hash key range is known, counts
// (or, with DropMisroutedAggregates, drops) the user records of aggregates
// that belong to another shard.
func (w *shardWorker) converter() converter {
	cv := converter{shardID: w.info.ShardID, log: w.log, dropMisrouted: w.c.cfg.DropMisroutedAggregates}
	if !w.lease.Checkpoint.IsSentinel() {
		cv.resume, cv.resuming = w.lease.Checkpoint, true
	}
	start, end := w.lease.StartingHashKey, w.lease.EndingHashKey
	if start == "" || end == "" {
		start, end = w.c.co.hashRange(w.st, w.info.ShardID)
	}
	ks, err1 := deagg.ParseKey(start)
	ke, err2 := deagg.ParseKey(end)
	if err1 == nil && err2 == nil {
		cv.hashStart, cv.hashEnd, cv.hasRange = ks, ke, true
	} else {
		w.log.Debug("hash key range unknown: aggregated user records are not filtered by range")
	}
	return cv
}

// handle delivers one batch until the processor accepts it, then advances
// the automatic checkpoint.
func (w *shardWorker) handle(ctx context.Context, b *fetchedBatch) error {
	w.noteMisrouted(b.res)
	w.noteDropped(b.res)
	if len(b.records) > 0 {
		batch := &Batch{ShardID: w.info.ShardID, Stream: w.st.info, Records: b.records, MillisBehindLatest: b.millisBehind, cp: w.cp}
		w.cp.setDelivered(b.records[len(b.records)-1].Position())
		err := w.retry(ctx, "process records", func(ctx context.Context) error {
			if err := w.awaitLease(ctx); err != nil {
				return err
			}
			batch.Attempt++
			return w.processRecords(ctx, batch, b)
		})
		if err != nil {
			return err
		}
	}
	if b.res.last.SequenceNumber == "" {
		return nil
	}
	w.processed = b.res.last
	if len(b.records) == 0 {
		// Nothing delivered (all skipped or dropped): still let the
		// checkpoint move past it, so a restart does not read it again.
		w.cp.setDelivered(b.res.last)
	}
	if !w.c.cfg.ManualCheckpoint {
		w.autoCheckpoint(ctx)
	}
	return nil
}

// awaitLease returns once the lease may be acted on: the lease manager
// still holds it and its last renewal is within the drop deadline (see
// lease.Manager.Usable). After a pause of the process longer than the lease
// (SIGSTOP, a long garbage collection, a paused VM), the manager's drop
// timer fires late, and this goroutine may run first: without this check it
// would hand one more batch to the processor although another worker may
// own the shard by now. Past the deadline it waits: for OnLost, which
// cancels ctx (the lease is gone), or for a renewal that was under way to
// land (the lease is ours again). It returns ctx's cause, or errStopping.
func (w *shardWorker) awaitLease(ctx context.Context) error {
	for logged := false; !w.c.mgr.Usable(w.key); logged = true {
		if !logged {
			w.log.Warn("lease not renewed within its deadline (the process was paused, or renewals fail); holding the batch until the lease is renewed or lost")
		}
		if err := w.pause(ctx, w.c.mgr.Config().RenewInterval/8, nil); err != nil {
			return err
		}
	}
	return nil
}

// noteMisrouted counts the user records of a batch whose hash keys are
// outside the shard's range, and warns, at most once per
// misroutedWarnEvery, with the running counts: they are either duplicates to
// come (a KPL producer with a stale shard map) or records only this shard
// will ever deliver (an aggregation library given a key per user record).
func (w *shardWorker) noteMisrouted(res convertResult) {
	m := &w.misrouted
	if res.misrouted == 0 && res.dropped == 0 && !m.unwarned {
		return
	}
	m.delivered += res.misrouted
	m.dropped += res.dropped
	m.unwarned = m.unwarned || res.misrouted > 0 || res.dropped > 0
	if !m.unwarned || time.Since(m.warned) < misroutedWarnEvery {
		return
	}
	m.warned, m.unwarned = time.Now(), false
	if w.c.cfg.DropMisroutedAggregates {
		w.log.Warn("dropped aggregated records holding user records whose hash keys are outside this shard's range (DropMisroutedAggregates)",
			"user_records_dropped", m.dropped)
		return
	}
	w.log.Warn("delivered user records of aggregates whose hash keys are outside this shard's range: a KPL producer with a stale shard map puts them again (duplicates), other aggregators do not (see DropMisroutedAggregates)",
		"user_records_delivered", m.delivered)
}

// processRecords calls the processor on b, made of fb; a panic becomes an
// error, so the batch is retried rather than the process crashing.
func (w *shardWorker) processRecords(ctx context.Context, b *Batch, fb *fetchedBatch) error {
	start := w.startProcessing(fb)
	err := safely("ProcessRecords", func() error { return w.proc.ProcessRecords(ctx, b) })
	w.endProcessing(b, fb, start, err)
	return err
}

// autoCheckpoint writes the processed position at once when the last write
// is CheckpointInterval old, and otherwise hands it to the lease manager to
// carry on the lease's next renewal. Failures are logged: the next batch
// tries again, and a lost lease cancels the worker's context.
func (w *shardWorker) autoCheckpoint(ctx context.Context) {
	if ctx.Err() != nil {
		if !errors.Is(context.Cause(ctx), errLeaseLost) {
			// A hard stop (the shutdown overran ShutdownTimeout): the lease
			// manager's final release writes what is deferred. (A lost
			// lease may be held again already, by this worker's successor:
			// nothing of this one's is deferred on it.)
			_ = w.c.mgr.Defer(w.key, w.processed)
		}
		return
	}
	var err error
	if time.Since(w.lastWrite) >= w.c.cfg.CheckpointInterval {
		w.lastWrite = time.Now()
		err = w.c.mgr.Checkpoint(ctx, w.key, w.processed)
		if err != nil && !errors.Is(err, ErrLeaseLost) && ctx.Err() == nil {
			// A passing fault: let the next renewal carry it instead.
			w.log.Warn("automatic checkpoint failed; deferring it to the next renewal", "position", w.processed.String(), "error", err)
			err = w.c.mgr.Defer(w.key, w.processed)
		}
	} else {
		err = w.c.mgr.Defer(w.key, w.processed)
	}
	if err != nil && ctx.Err() == nil {
		w.log.Warn("automatic checkpoint failed", "position", w.processed.String(), "error", err)
	}
}

// retry calls fn until it succeeds, backing off between attempts; it gives
// up only when the lease ends or the consumer stops.
func (w *shardWorker) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	bo := workBackoff
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if errors.Is(err, errStopping) {
			return err
		}
		d := bo.next()
		w.log.Error(what+" failed; retrying", "attempt", bo.attempt, "wait", d, "error", err)
		if err := w.pause(ctx, d, nil); err != nil {
			return err
		}
	}
}

// finish ends a shard read to its end: ShardEnded, the SHARD_END checkpoint
// (with the children), the children's leases, and the release of the lease.
// Each step is retried until it succeeds, the lease is lost or the consumer
// stops; the next owner then redoes what is missing.
func (w *shardWorker) finish(ctx context.Context, end *fetchedBatch) {
	w.setState(ShardEnding)
	children := w.c.co.childrenOf(w.st, w.info.ShardID, end.children, w.childCheckpoint())
	steps := []struct {
		what string
		fn   func(context.Context) error
	}{
		{"shard ended", func(ctx context.Context) error {
			if ctx.Err() != nil {
				// The lease was lost (or the consumer stops for good)
				// while the last batch was processed: the processor hears
				// LeaseLost, never ShardEnded, which would tell it that
				// the shard is done with.
				return context.Cause(ctx)
			}
			if se, ok := w.proc.(ShardEnder); ok {
				if err := w.awaitLease(ctx); err != nil {
					return err
				}
				return safely("ShardEnded", func() error { return se.ShardEnded(ctx, w.info) })
			}
			return nil
		}},
		{"SHARD_END checkpoint", func(ctx context.Context) error {
			return w.c.mgr.FinishShard(ctx, w.key, childIDs(children))
		}},
		{"create child leases", func(ctx context.Context) error {
			return w.c.co.createChildLeases(ctx, w.st, w.info.ShardID, children)
		}},
	}
	for _, s := range steps {
		if err := w.retry(ctx, s.what, s.fn); err != nil {
			w.afterInterrupt(ctx, err)
			return
		}
	}
	w.c.co.markFinished(w.key)
	if err := w.c.mgr.Release(ctx, w.key); err != nil {
		w.log.Warn("release of finished shard failed", "error", err)
	}
	w.log.Info("shard processed to its end", "children", childIDs(children))
}

// childCheckpoint is where the children of this shard start: at their
// beginning, since this shard was processed to its end; but with an
// AtTimestamp application whose timestamp came after this shard's last
// record (nothing here was processed), at that timestamp too.
func (w *shardWorker) childCheckpoint() checkpoint.Position {
	if w.st.initial.kind == initialAtTimestamp && w.processed.SequenceNumber == "" {
		return checkpoint.AtTimestamp
	}
	return checkpoint.TrimHorizon
}

func (w *shardWorker) afterInterrupt(ctx context.Context, err error) {
	switch {
	case errors.Is(err, errStopping):
		w.shutdown(ctx)
	case errors.Is(context.Cause(ctx), errLeaseLost):
		w.leaseLost()
	}
}

// shutdown ends the lease gracefully: ShutdownRequested, a final checkpoint
// and the release, so that another worker takes the shard on its next taker
// cycle instead of waiting for the lease to expire. When another worker
// asked for the lease, the release hands it to that worker, which starts
// from this checkpoint: nothing is processed twice.
//
// The checkpoint and the release are made even when ShutdownRequested (or
// the batch before it) overran ShutdownTimeout and ctx was cancelled: on a
// context detached from that cancellation, bounded by two store writes
// (finalWrites). Otherwise the processed records would be read again and
// the other workers would wait FailoverTime for the lease to expire.
func (w *shardWorker) shutdown(ctx context.Context) {
	w.setState(w.shutdownState())
	if sn, ok := w.proc.(ShutdownNotifiee); ok {
		if err := safely("ShutdownRequested", func() error { return sn.ShutdownRequested(ctx, w.info) }); err != nil {
			w.log.Warn("ShutdownRequested failed", "error", err)
		}
	}
	if errors.Is(context.Cause(ctx), errLeaseLost) {
		w.log.Info("lease lost during shutdown; nothing to checkpoint or release")
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.finalWrites())
	defer cancel()
	if !w.c.cfg.ManualCheckpoint && w.processed.SequenceNumber != "" {
		if err := w.c.mgr.Checkpoint(fctx, w.key, w.processed); err != nil {
			w.log.Warn("final checkpoint failed", "position", w.processed.String(), "error", err)
		}
	}
	l, _ := w.c.mgr.Lease(w.key)
	if err := w.c.mgr.Release(fctx, w.key); err != nil {
		w.log.Warn("lease release failed", "error", err)
		return
	}
	if l.HandOffPending() {
		w.log.Info("lease handed over", "to", l.Owner, "checkpoint", w.processed.String())
		return
	}
	w.log.Info("lease released", "checkpoint", w.processed.String())
}

// finalWrites bounds the final checkpoint and release: the lease manager
// bounds each store write by its RenewInterval.
func (w *shardWorker) finalWrites() time.Duration {
	return 2 * w.c.mgr.Config().RenewInterval
}

func (w *shardWorker) leaseLost() {
	w.log.Info("lease lost; shard worker stopped")
	if ll, ok := w.proc.(LeaseLoser); ok {
		ctx, cancel := context.WithTimeout(w.c.hardCtx, w.c.cfg.ShutdownTimeout)
		defer cancel()
		if err := safely("LeaseLost", func() error { ll.LeaseLost(ctx, w.info); return nil }); err != nil {
			w.log.Error("LeaseLost failed", "error", err)
		}
	}
}
