package main

import (
	"context"
	"time"

	"github.com/gokcl/kcl/lease"
)

// observation is what watching a lease table showed: the leases as last
// read, and which of them changed while watched. A worker proves it is alive
// by writing its leases (every renewal and checkpoint increments the
// counter), so a lease whose counter moved is held by a live worker, and
// one owned but still is not being renewed: workers judge expiry the same
// way, from what they saw, never from clocks in the table.
type observation struct {
	leases  []lease.Lease          // as last read, sorted by key
	first   map[string]lease.Lease // as first read
	changed map[string]time.Time   // lease key → when a change was last seen
	from    time.Time              // end of the first read
	to      time.Time              // start of the last read
}

// watched returns how long the counters were watched: every lease was read
// at least this far apart.
func (o *observation) watched() time.Duration {
	if o.to.Before(o.from) {
		return 0
	}
	return o.to.Sub(o.from)
}

// moved reports whether the lease changed (counter or owner) while watched.
func (o *observation) moved(key string) bool {
	_, ok := o.changed[key]
	return ok
}

// lease returns the lease as last read.
func (o *observation) lease(key string) (lease.Lease, bool) {
	for _, l := range o.leases {
		if l.Key == key {
			return l, true
		}
	}
	return lease.Lease{}, false
}

// watchTable reads the table, then reads it again every poll interval for
// up to window, recording changes; it stops early once enough (if not nil)
// says that what it has seen is enough. A window of 0 reads once.
func watchTable(ctx context.Context, store lease.Store, window time.Duration, enough func(*observation) bool) (*observation, error) {
	leases, err := store.List(ctx)
	if err != nil {
		return nil, err
	}
	o := &observation{leases: leases, first: byKey(leases), changed: map[string]time.Time{}, from: time.Now()}
	o.to = o.from
	deadline := o.from.Add(window)
	poll := min(max(window/5, 200*time.Millisecond), 2*time.Second)
	for time.Now().Before(deadline) {
		if enough != nil && enough(o) {
			break
		}
		if err := sleepCtx(ctx, min(poll, time.Until(deadline))); err != nil {
			return nil, err
		}
		started := time.Now()
		next, err := store.List(ctx)
		if err != nil {
			return nil, err
		}
		prev := byKey(o.leases)
		for _, l := range next {
			if p, ok := prev[l.Key]; ok && (p.Counter != l.Counter || p.Owner != l.Owner) {
				o.changed[l.Key] = started
			}
		}
		o.leases, o.to = next, started
	}
	return o, nil
}

func byKey(leases []lease.Lease) map[string]lease.Lease {
	m := make(map[string]lease.Lease, len(leases))
	for _, l := range leases {
		m[l.Key] = l
	}
	return m
}

// sleepCtx waits for d or until ctx is done, and then returns ctx's error.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
