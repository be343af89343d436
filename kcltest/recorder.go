package kcltest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/consumer"
)

// Recorder records the user records that processors processed: those of
// every batch whose ProcessRecords returned nil. One Recorder may serve the
// processors of several workers, to follow a shard from one worker to the
// next. Its methods are safe for concurrent use.
//
// The Wait methods poll (every 10ms, of virtual time inside a
// testing/synctest bubble), so a Recorder may be made outside the bubble
// that uses it.
type Recorder struct {
	mu      sync.Mutex
	records []processed
	count   map[checkpoint.Position]int
}

type processed struct {
	stream, shardID string
	record          consumer.Record
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{count: map[checkpoint.Position]int{}}
}

// Wrap returns a NewProcessor function for consumer.Config that makes
// newProcessor's processors and records what they process. A nil
// newProcessor makes processors that accept every batch. The processors
// forward the optional interfaces as Start's do.
func (r *Recorder) Wrap(newProcessor func(shardID string) consumer.RecordProcessor) func(shardID string) consumer.RecordProcessor {
	return func(shardID string) consumer.RecordProcessor {
		var p consumer.RecordProcessor = consumer.RecordProcessorFunc(func(context.Context, *consumer.Batch) error { return nil })
		if newProcessor != nil {
			if p = newProcessor(shardID); p == nil {
				return nil
			}
		}
		return &recordingProcessor{p: p, r: r}
	}
}

// WrapShard is Wrap for consumer.Config's NewShardProcessor.
func (r *Recorder) WrapShard(newProcessor func(shard consumer.ShardInfo) consumer.RecordProcessor) func(shard consumer.ShardInfo) consumer.RecordProcessor {
	return func(shard consumer.ShardInfo) consumer.RecordProcessor {
		var p consumer.RecordProcessor = consumer.RecordProcessorFunc(func(context.Context, *consumer.Batch) error { return nil })
		if newProcessor != nil {
			if p = newProcessor(shard); p == nil {
				return nil
			}
		}
		return &recordingProcessor{p: p, r: r}
	}
}

func (r *Recorder) add(b *consumer.Batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range b.Records {
		r.records = append(r.records, processed{stream: b.Stream.Name, shardID: b.ShardID, record: rec})
		r.count[rec.Position()]++
	}
}

// Records returns the user records processed so far, every delivery of
// each, in the order their batches finished.
func (r *Recorder) Records() []consumer.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]consumer.Record, len(r.records))
	for i, p := range r.records {
		out[i] = p.record
	}
	return out
}

// Shard returns the user records of one shard processed so far, every
// delivery of each, in the order their batches finished.
func (r *Recorder) Shard(shardID string) []consumer.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []consumer.Record
	for _, p := range r.records {
		if p.shardID == shardID {
			out = append(out, p.record)
		}
	}
	return out
}

// Stream returns the user records of one stream (by name) processed so
// far, every delivery of each, in the order their batches finished: the
// streams of an Account number their records apart, so a multi-stream
// consumer's records are told apart by their positions too.
func (r *Recorder) Stream(name string) []consumer.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []consumer.Record
	for _, p := range r.records {
		if p.stream == name {
			out = append(out, p.record)
		}
	}
	return out
}

// Unique returns how many distinct user records were processed.
func (r *Recorder) Unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

// Duplicates returns how many deliveries repeated a user record processed
// before (after a lease moved without a checkpoint, for example).
func (r *Recorder) Duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.records) - len(r.count)
}

// WaitProcessed waits until every user record of the given writes was
// processed, and returns an error naming what is missing when ctx ends
// first. Give ctx a deadline. The user records of an aggregate that a
// consumer drops as misrouted are never processed.
func (r *Recorder) WaitProcessed(ctx context.Context, written ...PutResult) error {
	want := 0
	for _, w := range written {
		want += w.UserRecords
	}
	return r.wait(ctx, func() (bool, string) {
		var missing []string
		for _, w := range written {
			for sub := range w.UserRecords {
				if p := checkpoint.At(w.SequenceNumber, uint64(sub)); r.count[p] == 0 {
					missing = append(missing, strings.TrimPrefix(w.Stream+"/", "/")+w.ShardID+"@"+p.String())
				}
			}
		}
		if len(missing) == 0 {
			return true, ""
		}
		return false, fmt.Sprintf("%d of %d user records processed; missing %s",
			want-len(missing), want, strings.Join(missing[:min(len(missing), 5)], ", "))
	})
}

// WaitUnique waits until at least n distinct user records were processed,
// and returns an error when ctx ends first. Give ctx a deadline.
func (r *Recorder) WaitUnique(ctx context.Context, n int) error {
	return r.wait(ctx, func() (bool, string) {
		return len(r.count) >= n, fmt.Sprintf("%d of %d user records processed", len(r.count), n)
	})
}

// wait polls done, called with r.mu held, until it reports true or ctx
// ends.
func (r *Recorder) wait(ctx context.Context, done func() (bool, string)) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		r.mu.Lock()
		ok, state := done()
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kcltest: %s: %w", state, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// recordingProcessor records the batches its processor accepted.
type recordingProcessor struct {
	p consumer.RecordProcessor
	r *Recorder
}

func (p *recordingProcessor) ProcessRecords(ctx context.Context, b *consumer.Batch) error {
	if err := p.p.ProcessRecords(ctx, b); err != nil {
		return err
	}
	p.r.add(b)
	return nil
}

func (p *recordingProcessor) InitializeShard(ctx context.Context, shard consumer.ShardInfo) error {
	return initializeShard(ctx, p.p, shard)
}

func (p *recordingProcessor) ShardEnded(ctx context.Context, shard consumer.ShardInfo) error {
	return shardEnded(ctx, p.p, shard)
}

func (p *recordingProcessor) LeaseLost(ctx context.Context, shard consumer.ShardInfo) {
	leaseLost(ctx, p.p, shard)
}

func (p *recordingProcessor) ShutdownRequested(ctx context.Context, shard consumer.ShardInfo) error {
	return shutdownRequested(ctx, p.p, shard)
}
