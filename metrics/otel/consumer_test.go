package kclotel

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// A real consumer on kcltest's stream, with Metrics in its hooks.
func TestMeasurementsOfARunningConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := kcltest.NewStream(2, kcltest.WithName("orders"))
		for i := range 100 {
			_, err := stream.Put(fmt.Sprintf("key-%d", i%7), "", []byte(fmt.Sprintf("record-%d", i)))
			require.NoError(t, err)
		}
		r := sdkmetric.NewManualReader()
		m, err := New(Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))})
		require.NoError(t, err)
		defer m.Close()
		var processed atomic.Int64
		w, err := kcltest.Start(t.Context(), consumer.Config{
			StreamName: "orders", AppName: "billing", WorkerID: "w1",
			Kinesis: stream, LeaseStore: lease.NewMemoryStore(), InitialPosition: consumer.TrimHorizon,
			PollInterval: 100 * time.Millisecond,
			Hooks:        []consumer.Hook{m},
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
		time.Sleep(time.Second)
		sum := 0.0
		for _, v := range collect(t, r, "gokcl.records.processed") {
			sum += v
		}
		require.Equal(t, 100.0, sum)
		require.Len(t, collect(t, r, "gokcl.millis_behind_latest"), 2)
		require.Equal(t, map[string]float64{"stream=orders,worker=w1": 2}, collect(t, r, "gokcl.leases.held"))
		require.NoError(t, w.Stop())
		require.Empty(t, collect(t, r, "gokcl.millis_behind_latest"), "a stopped consumer is no longer read")
	})
}
