package consumer

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/internal/fakekinesis"
	"github.com/gokcl/kcl/lease"
)

// slowShutdownProc blocks in ShutdownRequested until its context is
// cancelled, past ShutdownTimeout.
type slowShutdownProc struct{ col *collector }

func (p *slowShutdownProc) ProcessRecords(_ context.Context, b *Batch) error {
	p.col.add(b)
	return nil
}

func (p *slowShutdownProc) ShutdownRequested(ctx context.Context, _ ShardInfo) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestShutdownOverrunStillCheckpointsAndReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := fakekinesis.New(testStream, 1)
		putPlain(stream, "x", 30, 5)
		store := lease.NewMemoryStore()
		col := newCollector()
		cfg := testConfig(stream, store, "w1", func(string) RecordProcessor { return &slowShutdownProc{col: col} })
		cfg.CheckpointInterval = time.Hour // the last checkpoint is deferred, not written
		r := start(t, cfg)
		waitFor(t, time.Minute, "30 records", func() bool { return col.unique() == 30 })
		r.stop(t)
		l := leaseOf(t, store, "shardId-000000000000")
		require.Empty(t, l.Owner, "the lease is released although ShutdownRequested overran ShutdownTimeout")
		recs := col.records[l.Key]
		require.Equal(t, recs[len(recs)-1].Position(), l.Checkpoint, "the last processed record is checkpointed")
	})
}
