package kclprom

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// A real consumer on kcltest's stream, with Metrics in its hooks: the
// counters add up to what was processed, each held shard has a lag, and a
// stopped consumer leaves no series of its shards.
func TestMetricsOfARunningConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := kcltest.NewStream(2, kcltest.WithName("orders"))
		for i := range 100 {
			_, err := stream.Put(fmt.Sprintf("key-%d", i%7), "", []byte(fmt.Sprintf("record-%d", i)))
			require.NoError(t, err)
		}
		m := New(Options{})
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(m)
		var processed atomic.Int64
		w, err := kcltest.Start(t.Context(), consumer.Config{
			StreamName: "orders", AppName: "billing", WorkerID: "w1",
			Kinesis: stream, LeaseStore: lease.NewMemoryStore(), InitialPosition: consumer.TrimHorizon,
			PollInterval: 100 * time.Millisecond, CheckpointInterval: time.Second,
			Hooks: []consumer.Hook{m},
			NewProcessor: func(string) consumer.RecordProcessor {
				return consumer.RecordProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
					processed.Add(int64(len(b.Records)))
					return nil
				})
			},
		})
		require.NoError(t, err)
		for processed.Load() < 100 {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(5 * time.Second) // renewals, checkpoints, taker cycles

		sum := 0.0
		for _, v := range series(t, reg, "gokcl_records_processed_total") {
			sum += v
		}
		require.Equal(t, 100.0, sum)
		require.Equal(t, map[string]float64{
			"shard=shardId-000000000000,stream=orders,worker=w1": 0,
			"shard=shardId-000000000001,stream=orders,worker=w1": 0,
		}, series(t, reg, "gokcl_millis_behind_latest"))
		require.Equal(t, map[string]float64{"stream=orders,worker=w1": 2}, series(t, reg, "gokcl_leases_held"))
		require.Equal(t, map[string]float64{"stream=orders,worker=w1": 1}, series(t, reg, "gokcl_healthy"))
		require.NotEmpty(t, series(t, reg, "gokcl_checkpoints_total"))
		require.NotEmpty(t, series(t, reg, "gokcl_lease_renewals_total"))
		require.Equal(t, 2.0, series(t, reg, "gokcl_lease_events_total")["event=taken,reason=unowned,stream=orders,worker=w1"])
		require.Equal(t, map[string]float64{"stream=orders,worker=w1": 2}, series(t, reg, "gokcl_lease_table_leases"))

		require.NoError(t, w.Stop())
		for _, name := range []string{"gokcl_records_processed_total", "gokcl_millis_behind_latest", "gokcl_leases_held", "gokcl_healthy"} {
			require.Empty(t, series(t, reg, name), name)
		}
		require.Equal(t, 2.0, series(t, reg, "gokcl_lease_events_total")["event=released,reason=requested,stream=orders,worker=w1"])
	})
}

// A multi-stream consumer's Status names no stream of its own, and shard ids
// repeat from stream to stream: each shard's gauges carry the shard's
// stream, so that two streams' shardId-000000000000 are two series (the
// registry refuses a whole scrape with one series twice), and the stopped
// consumer leaves none behind.
func TestMetricsOfAMultiStreamConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		account := kcltest.NewAccount()
		var written []kcltest.PutResult
		for _, name := range []string{"orders", "payments"} {
			s, err := account.CreateStream(name, 1)
			require.NoError(t, err)
			for i := range 10 {
				w, err := s.Put(fmt.Sprintf("key-%d", i), "", []byte(name))
				require.NoError(t, err)
				written = append(written, w)
			}
		}
		m := New(Options{})
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(m)
		rec := kcltest.NewRecorder()
		cfg := kcltest.MultiStreamConfig(account, lease.NewMemoryStore(), "w1", rec.Wrap(nil), "orders", "payments")
		cfg.Hooks = []consumer.Hook{m}
		w, err := kcltest.Start(t.Context(), cfg)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		require.NoError(t, rec.WaitProcessed(ctx, written...))
		time.Sleep(2 * time.Second) // the lags of the batches processed

		_, err = reg.Gather()
		require.NoError(t, err)
		require.Equal(t, map[string]float64{
			"shard=shardId-000000000000,stream=orders,worker=w1":   0,
			"shard=shardId-000000000000,stream=payments,worker=w1": 0,
		}, series(t, reg, "gokcl_millis_behind_latest"))
		require.Len(t, series(t, reg, "gokcl_shard_state"), 2)

		require.NoError(t, w.Stop())
		for _, name := range []string{"gokcl_records_processed_total", "gokcl_millis_behind_latest", "gokcl_leases_held",
			"gokcl_healthy", "gokcl_lease_table_leases"} {
			require.Empty(t, series(t, reg, name), name)
		}
	})
}
