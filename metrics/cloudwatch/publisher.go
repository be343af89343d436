package kclcw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// PutMetricDataAPI is the part of the CloudWatch API a Publisher uses;
// *cloudwatch.Client satisfies it.
type PutMetricDataAPI interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// Level selects the metrics published, as the Java KCL's MetricsLevel does.
type Level uint8

const (
	// LevelDetailed publishes every metric: the default, as in the KCL.
	LevelDetailed Level = iota
	// LevelSummary leaves out the per-call latencies and successes of
	// GetRecords, checkpoint, renewal and scan writes, and the taker's
	// LeasesToTake and TotalLeases.
	LevelSummary
)

// Defaults of Options, the Java KCL's (MetricsConfig).
const (
	DefaultBufferTime   = 10 * time.Second
	DefaultMaxQueueSize = 10000
	DefaultFlushSize    = 200
	DefaultBatchSize    = 1000
	DefaultPutTimeout   = 5 * time.Second
)

// Options configures a Publisher. Zero values take the documented defaults.
type Options struct {
	// Client sends the metrics, such as a *cloudwatch.Client. Required.
	Client PutMetricDataAPI
	// Namespace is the CloudWatch namespace. Required; the Java KCL uses
	// the application name, so use Config.AppName for dashboards and alarms
	// built for it to keep working.
	Namespace string
	// BufferTime is how long metrics are accumulated before they are sent.
	// Default 10s (DefaultBufferTime).
	BufferTime time.Duration
	// MaxQueueSize caps the distinct metrics (name and dimensions)
	// accumulated between two sends; a new one beyond it is dropped and
	// counted in Dropped. Default 10000.
	MaxQueueSize int
	// FlushSize starts a send before BufferTime when this many distinct
	// metrics are accumulated. Default 200.
	FlushSize int
	// BatchSize is the most metrics sent in one PutMetricData call, at most
	// 1000 (CloudWatch's limit). Default 1000.
	BatchSize int
	// PutTimeout bounds each PutMetricData call. Default 5s.
	PutTimeout time.Duration
	// Level selects the metrics published. Default LevelDetailed.
	Level Level
	// Logger receives a warning when a send fails. Default: discard.
	Logger *slog.Logger
}

// ErrInvalidOptions reports Options that New refuses; the message names the
// field.
var ErrInvalidOptions = errors.New("kclcw: invalid options")

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Client == nil:
		return o, fmt.Errorf("%w: Client is required", ErrInvalidOptions)
	case o.Namespace == "":
		return o, fmt.Errorf("%w: Namespace is required (the Java KCL uses the application name)", ErrInvalidOptions)
	case o.BufferTime < 0, o.MaxQueueSize < 0, o.FlushSize < 0, o.BatchSize < 0, o.PutTimeout < 0:
		return o, fmt.Errorf("%w: BufferTime, MaxQueueSize, FlushSize, BatchSize and PutTimeout must not be negative", ErrInvalidOptions)
	case o.BatchSize > 1000:
		return o, fmt.Errorf("%w: BatchSize %d is above CloudWatch's limit of 1000", ErrInvalidOptions, o.BatchSize)
	}
	o.BufferTime = cmpOr(o.BufferTime, DefaultBufferTime)
	o.MaxQueueSize = cmpOr(o.MaxQueueSize, DefaultMaxQueueSize)
	o.FlushSize = cmpOr(o.FlushSize, DefaultFlushSize)
	o.BatchSize = cmpOr(o.BatchSize, DefaultBatchSize)
	o.PutTimeout = cmpOr(o.PutTimeout, DefaultPutTimeout)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Publisher publishes a gokcl consumer's metrics to CloudWatch under the
// Java KCL's names, namespace and dimensions. It is a set of hooks: set it
// in consumer.Config.Hooks. Hooks only accumulate the values in memory, as
// statistic sets (sample count, sum, minimum, maximum) per metric name and
// dimensions, as the KCL does; Run sends them with PutMetricData every
// BufferTime, off the consumer's path. One Publisher may serve several
// consumers of one application. Its methods are safe for concurrent use.
type Publisher struct {
	o       Options
	flushCh chan struct{} // capacity 1: FlushSize reached

	mu      sync.Mutex
	pending map[datumKey]stats

	dropped atomic.Int64
	started atomic.Bool
}

// New validates o and returns a Publisher; Run must be running for it to
// publish anything.
func New(o Options) (*Publisher, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Publisher{o: o, flushCh: make(chan struct{}, 1), pending: make(map[datumKey]stats)}, nil
}

// Run sends the accumulated metrics every BufferTime, or sooner when
// FlushSize distinct metrics are waiting, until ctx is cancelled; then it
// sends what is left (within PutTimeout) and returns nil. A failed send is
// logged and its metrics dropped, as the KCL does: metrics are not worth
// holding the process for. Run may be called once; a second call returns an
// error.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("kclcw: Run called twice")
	}
	t := time.NewTicker(p.o.BufferTime)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.o.PutTimeout)
			defer cancel()
			_ = p.Flush(final)
			return nil
		case <-t.C:
		case <-p.flushCh:
		}
		_ = p.Flush(ctx)
	}
}

// Flush sends what is accumulated now, in calls of at most BatchSize
// metrics, each bounded by PutTimeout. It returns the failures joined; the
// metrics of a failed call are dropped.
func (p *Publisher) Flush(ctx context.Context) error {
	data := p.drain()
	var errs []error
	for len(data) > 0 {
		n := min(len(data), p.o.BatchSize)
		if err := p.put(ctx, data[:n]); err != nil {
			errs = append(errs, err)
			p.o.Logger.Warn("could not publish metrics to CloudWatch", "namespace", p.o.Namespace, "metrics", n, "error", err)
		}
		data = data[n:]
	}
	return errors.Join(errs...)
}

func (p *Publisher) put(ctx context.Context, data []types.MetricDatum) error {
	ctx, cancel := context.WithTimeout(ctx, p.o.PutTimeout)
	defer cancel()
	_, err := p.o.Client.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(p.o.Namespace), MetricData: data})
	if err != nil {
		return fmt.Errorf("kclcw: put %d metrics in %s: %w", len(data), p.o.Namespace, err)
	}
	return nil
}

// Dropped returns how many values were dropped because MaxQueueSize
// distinct metrics were already waiting.
func (p *Publisher) Dropped() int64 { return p.dropped.Load() }

// drain takes what is accumulated, as CloudWatch datums.
func (p *Publisher) drain() []types.MetricDatum {
	p.mu.Lock()
	pending := p.pending
	p.pending = make(map[datumKey]stats, len(pending))
	p.mu.Unlock()
	out := make([]types.MetricDatum, 0, len(pending))
	for k, s := range pending {
		out = append(out, k.datum(s))
	}
	return out
}
