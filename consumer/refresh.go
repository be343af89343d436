package consumer

import (
	"context"
	"sync"

	"github.com/gokcl/kcl/lease"
)

// tableReader shares lease table scans among the shard syncers of many
// streams. A syncer needs a scan that started after it asked, so that it
// sees every lease written before (children created at a shard's end,
// another worker's first sync); callers arriving while a scan runs share
// the next one. So a hundred syncers waking together cost two scans, not a
// hundred, and a single stream costs what a plain Refresh does.
//
// The scan runs on the goroutine of one of its callers, detached from that
// caller's cancellation (lease.Manager bounds every scan by its
// TakerInterval), so that one caller giving up does not fail the others.
type tableReader struct {
	refresh func(context.Context) ([]lease.Lease, error)

	mu      sync.Mutex
	pending *scanCall     // the next scan, not started yet
	running bool          // a scan is under way
	ended   chan struct{} // closed and replaced when a scan ends
}

// scanCall is one shared scan and its result.
type scanCall struct {
	done   chan struct{} // closed once leases and err are set
	leases []lease.Lease
	err    error
}

func newTableReader(refresh func(context.Context) ([]lease.Lease, error)) *tableReader {
	return &tableReader{refresh: refresh, ended: make(chan struct{})}
}

// read returns the leases as a scan that started after the call read them.
// The result is shared: callers must not modify it.
func (r *tableReader) read(ctx context.Context) ([]lease.Lease, error) {
	r.mu.Lock()
	if r.pending == nil {
		r.pending = &scanCall{done: make(chan struct{})}
	}
	call := r.pending
	r.mu.Unlock()
	for {
		r.mu.Lock()
		if !r.running && r.pending == call {
			r.running, r.pending = true, nil
			r.mu.Unlock()
			r.scan(ctx, call)
			return call.leases, call.err
		}
		ended := r.ended
		r.mu.Unlock()
		select {
		case <-call.done:
			return call.leases, call.err
		case <-ended: // perhaps this caller's turn to run the scan
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// scan runs call, then lets the next scan start.
func (r *tableReader) scan(ctx context.Context, call *scanCall) {
	call.leases, call.err = r.refresh(context.WithoutCancel(ctx))
	close(call.done)
	r.mu.Lock()
	r.running = false
	close(r.ended)
	r.ended = make(chan struct{})
	r.mu.Unlock()
}
