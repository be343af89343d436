package kcltest

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/lease"
)

// The wrappers a Worker's consumer sees its clients and processors
// through. Each checks the gate before it calls through; a call already
// under way when the worker crashes completes, as a request already sent
// does, and Crash waits for it.

// gatedKinesis is a worker's view of the Kinesis API.
type gatedKinesis struct {
	k consumer.KinesisAPI
	g *gate
}

func (k *gatedKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if err := k.g.check(); err != nil {
		return nil, err
	}
	return k.k.ListShards(ctx, in, optFns...)
}

func (k *gatedKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	if err := k.g.check(); err != nil {
		return nil, err
	}
	return k.k.GetShardIterator(ctx, in, optFns...)
}

func (k *gatedKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	if err := k.g.check(); err != nil {
		return nil, err
	}
	return k.k.GetRecords(ctx, in, optFns...)
}

// gatedStore is a worker's view of the lease table.
type gatedStore struct {
	s lease.Store
	g *gate
}

func (s *gatedStore) List(ctx context.Context) ([]lease.Lease, error) {
	if err := s.g.check(); err != nil {
		return nil, err
	}
	return s.s.List(ctx)
}

func (s *gatedStore) Create(ctx context.Context, l lease.Lease) error {
	if err := s.g.check(); err != nil {
		return err
	}
	return s.s.Create(ctx, l)
}

func (s *gatedStore) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if err := s.g.check(); err != nil {
		return lease.Lease{}, err
	}
	return s.s.Renew(ctx, l)
}

func (s *gatedStore) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	if err := s.g.check(); err != nil {
		return lease.Lease{}, err
	}
	return s.s.Take(ctx, l, owner)
}

func (s *gatedStore) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if err := s.g.check(); err != nil {
		return lease.Lease{}, err
	}
	return s.s.Release(ctx, l)
}

func (s *gatedStore) UpdateCheckpoint(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if err := s.g.check(); err != nil {
		return lease.Lease{}, err
	}
	return s.s.UpdateCheckpoint(ctx, l)
}

func (s *gatedStore) Delete(ctx context.Context, key string) error {
	if err := s.g.check(); err != nil {
		return err
	}
	return s.s.Delete(ctx, key)
}

// gatedFullStore is a worker's view of a lease table that supports
// graceful hand-offs and worker rows (lease.HandOffStore and
// lease.WorkerStore, as both of the lease package's stores do), so that the
// consumer sees them, and crashes stop those calls too.
type gatedFullStore struct {
	*gatedStore
	h lease.HandOffStore
	w lease.WorkerStore
}

// gateStore wraps s, keeping its optional interfaces when it has both.
func gateStore(s lease.Store, g *gate) lease.Store {
	base := &gatedStore{s: s, g: g}
	h, okH := s.(lease.HandOffStore)
	w, okW := s.(lease.WorkerStore)
	if !okH || !okW {
		return base
	}
	return &gatedFullStore{gatedStore: base, h: h, w: w}
}

func (s *gatedFullStore) Get(ctx context.Context, key string) (lease.Lease, error) {
	if err := s.g.check(); err != nil {
		return lease.Lease{}, err
	}
	return s.h.Get(ctx, key)
}

func (s *gatedFullStore) HandOff(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	if err := s.g.check(); err != nil {
		return lease.Lease{}, err
	}
	return s.h.HandOff(ctx, l, to)
}

func (s *gatedFullStore) ListAll(ctx context.Context) ([]lease.Lease, []lease.Worker, error) {
	if err := s.g.check(); err != nil {
		return nil, nil, err
	}
	return s.w.ListAll(ctx)
}

func (s *gatedFullStore) Heartbeat(ctx context.Context, id string) (lease.Worker, error) {
	if err := s.g.check(); err != nil {
		return lease.Worker{}, err
	}
	return s.w.Heartbeat(ctx, id)
}

func (s *gatedFullStore) DeleteWorker(ctx context.Context, w lease.Worker) error {
	if err := s.g.check(); err != nil {
		return err
	}
	return s.w.DeleteWorker(ctx, w)
}

// newProcessor wraps a NewProcessor function: after the crash it makes no
// processor (the consumer retries until it stops), before it wraps the
// processor made. A nil processor is returned as is, so that the consumer
// sees it.
func (g *gate) newProcessor(newProc func(string) consumer.RecordProcessor) func(string) consumer.RecordProcessor {
	return func(shardID string) consumer.RecordProcessor {
		if g.crashed() {
			return nil
		}
		p := newProc(shardID)
		if p == nil {
			return nil
		}
		return &gatedProcessor{p: p, g: g}
	}
}

// newShardProcessor wraps a NewShardProcessor function as newProcessor
// wraps a NewProcessor function.
func (g *gate) newShardProcessor(newProc func(consumer.ShardInfo) consumer.RecordProcessor) func(consumer.ShardInfo) consumer.RecordProcessor {
	return func(shard consumer.ShardInfo) consumer.RecordProcessor {
		if g.crashed() {
			return nil
		}
		p := newProc(shard)
		if p == nil {
			return nil
		}
		return &gatedProcessor{p: p, g: g}
	}
}

// gatedProcessor calls its processor until the crash. The callbacks that
// can fail fail with ErrCrashed afterwards, so that the consumer takes
// nothing as done; the others do nothing.
type gatedProcessor struct {
	p consumer.RecordProcessor
	g *gate
}

// call runs a callback with a context also cancelled at the crash, and
// reports ErrCrashed if the crash came first or during the call.
func (p *gatedProcessor) call(ctx context.Context, f func(context.Context) error) error {
	if err := p.g.check(); err != nil {
		return err
	}
	ctx, done := p.g.callbackContext(ctx)
	defer done()
	err := f(ctx)
	if p.g.crashed() {
		return ErrCrashed
	}
	return err
}

func (p *gatedProcessor) ProcessRecords(ctx context.Context, b *consumer.Batch) error {
	return p.call(ctx, func(ctx context.Context) error { return p.p.ProcessRecords(ctx, b) })
}

func (p *gatedProcessor) InitializeShard(ctx context.Context, shard consumer.ShardInfo) error {
	return p.call(ctx, func(ctx context.Context) error { return initializeShard(ctx, p.p, shard) })
}

func (p *gatedProcessor) ShardEnded(ctx context.Context, shard consumer.ShardInfo) error {
	return p.call(ctx, func(ctx context.Context) error { return shardEnded(ctx, p.p, shard) })
}

func (p *gatedProcessor) LeaseLost(ctx context.Context, shard consumer.ShardInfo) {
	_ = p.call(ctx, func(ctx context.Context) error { leaseLost(ctx, p.p, shard); return nil })
}

func (p *gatedProcessor) ShutdownRequested(ctx context.Context, shard consumer.ShardInfo) error {
	return p.call(ctx, func(ctx context.Context) error { return shutdownRequested(ctx, p.p, shard) })
}

// The optional callbacks, called only if the processor has them; their
// absence is answered as the consumer treats it.

func initializeShard(ctx context.Context, p consumer.RecordProcessor, shard consumer.ShardInfo) error {
	if si, ok := p.(consumer.ShardInitializer); ok {
		return si.InitializeShard(ctx, shard)
	}
	return nil
}

func shardEnded(ctx context.Context, p consumer.RecordProcessor, shard consumer.ShardInfo) error {
	if se, ok := p.(consumer.ShardEnder); ok {
		return se.ShardEnded(ctx, shard)
	}
	return nil
}

func leaseLost(ctx context.Context, p consumer.RecordProcessor, shard consumer.ShardInfo) {
	if ll, ok := p.(consumer.LeaseLoser); ok {
		ll.LeaseLost(ctx, shard)
	}
}

func shutdownRequested(ctx context.Context, p consumer.RecordProcessor, shard consumer.ShardInfo) error {
	if sn, ok := p.(consumer.ShutdownNotifiee); ok {
		return sn.ShutdownRequested(ctx, shard)
	}
	return nil
}
