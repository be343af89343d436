package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gokcl/kcl/lease"
)

// The streams a coordinator consumes: the single stream, or those a
// multi-stream consumer's discovery loop adds and removes. A stream is
// added once it is ready to be read (its enhanced fan-out consumer ACTIVE):
// from then on the lease manager accepts its leases (see accepts) and shard
// workers start for them. A stream removed is no longer accepted, its
// syncer stops, and its shard workers end as at shutdown.

// streamOf returns the consumed stream a lease belongs to.
func (co *coordinator) streamOf(l lease.Lease) (*stream, bool) {
	if co.set != nil && !l.MultiStream() || co.set == nil && l.MultiStream() {
		return nil, false // the other mode's lease
	}
	co.smu.Lock()
	defer co.smu.Unlock()
	st, ok := co.streams[l.StreamID]
	return st, ok
}

// accepts is the lease manager's Accept: the leases of the streams
// consumed now.
func (co *coordinator) accepts(l lease.Lease) bool {
	_, ok := co.streamOf(l)
	return ok
}

// addStream starts consuming st: its goroutine registers its enhanced
// fan-out consumer if needed, then adds it to the streams consumed and runs
// its shard syncer until ctx or the stream is done. fatal receives the
// single stream's fatal error (its first listing found no stream).
func (co *coordinator) addStream(ctx context.Context, st *stream, fatal chan<- error) {
	sctx, cancel := context.WithCancel(ctx)
	st.cancel = cancel
	co.swg.Go(func() {
		defer close(st.done)
		defer cancel()
		if co.c.cfg.Retrieval.FanOut() && st.multi && !co.registerFanOut(sctx, st) {
			return
		}
		// Removed meanwhile (the registration's last answer may come after
		// the removal): removeStream cancels sctx under smu, so either it
		// finds the stream here and deletes it, or the stream is not added.
		co.smu.Lock()
		if sctx.Err() != nil {
			co.smu.Unlock()
			return
		}
		co.streams[st.info.ID] = st
		co.smu.Unlock()
		st.log.Info("consuming the stream", "initial_position", st.initial.String())
		if err := st.syncer.run(sctx); err != nil && fatal != nil {
			fatal <- err
		}
	})
}

// registerFanOut finds or registers the stream's enhanced fan-out consumer,
// retrying until it is ACTIVE or ctx is done; it reports whether it is.
func (co *coordinator) registerFanOut(ctx context.Context, st *stream) bool {
	bo := registerBackoff
	for {
		arn, err := co.c.fanOutConsumer(ctx, st.log, st.name, st.arn)
		if err == nil {
			st.consumerARN = arn
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d := bo.next()
		st.log.Error("cannot register the stream's enhanced fan-out consumer; retrying", "attempt", bo.attempt, "wait", d, "error", err)
		if !sleep(ctx, d) {
			return false
		}
	}
}

// removeStream stops consuming st: its leases are no longer accepted, its
// syncer stops, and the coordinator's loop ends its shard workers
// gracefully (ShutdownRequested, final checkpoint, release).
func (co *coordinator) removeStream(st *stream) {
	co.smu.Lock()
	if co.streams[st.info.ID] == st {
		delete(co.streams, st.info.ID)
	}
	st.cancel() // under smu: see addStream
	co.smu.Unlock()
	co.post(event{kind: eventStreamRemoved, stream: st})
}

// suspect reports that a call on st said the stream may no longer exist:
// a multi-stream consumer describes it again at once (at most every
// redescribeEvery), and stops consuming it if it was deleted.
func (co *coordinator) suspect(st *stream) {
	if co.set == nil || !st.multi || !co.set.suspect(st.info.ID) {
		return
	}
	select {
	case co.rescan <- struct{}{}:
	default:
	}
}

// discover is a multi-stream consumer's discovery loop: every
// StreamDiscoveryInterval (and when a stream is suspected gone) it asks for
// the streams to consume, starts the new ones, stops those no longer
// returned, and deletes the former streams' leases the FormerStreams policy
// says to. A failed or empty discovery changes nothing.
func (co *coordinator) discover(ctx context.Context) {
	known := map[*consumed]*stream{}
	bo := syncBackoff
	for {
		wait := co.c.cfg.StreamDiscoveryInterval
		if co.discoverOnce(ctx, known) {
			// A stream could not be described (throttled, say): try again
			// soon rather than leave it unread for a whole interval.
			wait = min(wait, bo.next())
		} else {
			bo.reset()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-co.rescan:
			// Not at once after a failed call: the set describes a suspect
			// stream at most every redescribeEvery.
			sleep(ctx, time.Second)
		case <-t.C:
		}
		t.Stop()
	}
}

// discoverOnce runs one round of discovery; known maps the set's streams to
// the coordinator's. It reports whether the round is to be tried again
// soon: a stream discovered could not be described.
func (co *coordinator) discoverOnce(ctx context.Context, known map[*consumed]*stream) (retry bool) {
	cfgs, err := co.discoverStreams(ctx)
	switch {
	case ctx.Err() != nil:
		return false
	case err != nil:
		co.c.log.Warn("stream discovery failed; consuming the same streams until the next discovery", "error", err)
		return false
	case len(cfgs) == 0:
		co.c.log.Warn("stream discovery returned no stream; taken for a fault: consuming the same streams until the next discovery")
		return false
	}
	table := co.c.mgr.Leases()
	if table == nil {
		if table, err = co.table.read(ctx); err != nil {
			co.c.log.Warn("stream discovery cannot read the lease table; trying again", "error", err)
			return true
		}
	}
	now := time.Now()
	ch := co.set.update(ctx, cfgs, table, now)
	for _, r := range ch.remove {
		if st := known[r]; st != nil {
			delete(known, r)
			co.removeStream(st)
		}
	}
	for _, r := range ch.add {
		st := resolvedStream(co.c, r)
		known[r] = st
		co.addStream(ctx, st, nil)
	}
	co.deleteFormer(ctx, now)
	return ch.unresolved > 0
}

// discoverStreams returns the streams to consume: Config.Streams, or what
// DiscoverStreams returns, without the entries that are not valid (each
// reported).
func (co *coordinator) discoverStreams(ctx context.Context) ([]StreamConfig, error) {
	cfg := &co.c.cfg
	if cfg.DiscoverStreams == nil {
		return cfg.Streams, nil
	}
	var cfgs []StreamConfig
	err := safely("DiscoverStreams", func() (err error) {
		cfgs, err = cfg.DiscoverStreams(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	valid := cfgs[:0:0]
	for _, s := range cfgs {
		if err := s.validate(); err != nil {
			co.c.log.Warn("stream discovery returned an invalid stream; ignoring it", "error", err)
			continue
		}
		valid = append(valid, s)
	}
	if len(valid) == 0 && len(cfgs) > 0 {
		return nil, errors.New("every stream it returned is invalid")
	}
	return valid, nil
}

// deleteFormer deletes the leases of the former streams the policy says
// to, now.
func (co *coordinator) deleteFormer(ctx context.Context, now time.Time) {
	ids := co.set.deletable(ctx, now)
	if len(ids) == 0 {
		return
	}
	all, err := co.table.read(ctx)
	if err != nil {
		co.c.log.Warn("cannot read the lease table to delete former streams' leases; trying again at the next discovery", "error", err)
		return
	}
	for _, id := range ids {
		if err := co.deleteLeases(ctx, id, all); err != nil {
			co.c.log.Warn("deleting a former stream's leases failed; trying again at the next discovery", "stream", id.String(), "error", err)
			continue
		}
		co.set.deleted(id)
	}
}

// deleteLeases deletes every lease of the stream.
func (co *coordinator) deleteLeases(ctx context.Context, id lease.StreamID, all []lease.Lease) error {
	n := 0
	for _, l := range all {
		if !l.MultiStream() || l.StreamID != id {
			continue
		}
		if err := co.c.store.Delete(ctx, l.Key); err != nil {
			return fmt.Errorf("delete lease %s: %w", l.Key, err)
		}
		n++
	}
	co.c.log.Info("deleted a former stream's leases", "stream", id.String(), "leases", n, "policy", co.c.cfg.FormerStreams.Delete.String())
	return nil
}
