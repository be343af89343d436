package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/gokcl/kcl/lease"
)

// KinesisAPI is the part of the Kinesis API a consumer uses;
// *kinesis.Client satisfies it.
type KinesisAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// DynamoDBAPI is the part of the DynamoDB API the lease table uses;
// *dynamodb.Client satisfies it.
type DynamoDBAPI = lease.DynamoDBAPI

// Defaults of Config's fields.
const (
	DefaultFailoverTime       = lease.DefaultFailoverTime
	DefaultMaxRecords         = 10000
	DefaultPollInterval       = time.Second
	DefaultCheckpointInterval = 5 * time.Second
	DefaultMaxBufferedBytes   = 256 << 20
	DefaultShutdownTimeout    = 30 * time.Second
	DefaultShardSyncInterval  = time.Minute
)

// Config configures a Consumer. Fields left zero take the documented
// defaults; New reports every invalid value with an error naming the field.
type Config struct {
	// StreamName names the stream to consume. Set StreamName or StreamARN,
	// or, to consume several streams, Streams or DiscoverStreams.
	StreamName string
	// StreamARN identifies the stream by ARN, for streams in other accounts.
	StreamARN string

	// Streams are the streams a multi-stream consumer consumes, each with
	// its own initial position, through one lease table and one lease
	// manager: the workers of the application balance the leases of all the
	// streams together. Set Streams or DiscoverStreams instead of
	// StreamName and StreamARN. The lease table is then in the Java KCL's
	// multi-stream format (leases keyed account:stream:creationEpoch:shardId),
	// readable by a KCL application in multi-stream mode and by it alone;
	// a single-stream table cannot be consumed in multi-stream mode, nor the
	// other way round (each mode ignores the other's leases).
	//
	// Kinesis must also provide DescribeStreamSummary, which tells each
	// stream's account and creation time (*kinesis.Client does).
	Streams []StreamConfig
	// DiscoverStreams returns the streams to consume; it is called at start
	// and every StreamDiscoveryInterval, so that streams added or removed
	// while the application runs are picked up or dropped. An error, or an
	// empty result, changes nothing (a discovery that fails must not stop
	// every stream); a stream it stops returning is a former stream (see
	// FormerStreams). It is called from one goroutine, one call at a time,
	// with a context cancelled when the consumer stops.
	DiscoverStreams func(ctx context.Context) ([]StreamConfig, error)
	// StreamDiscoveryInterval is how often DiscoverStreams is called.
	// Default 1m (DefaultStreamDiscoveryInterval), the Java KCL's interval;
	// at least 1ms.
	StreamDiscoveryInterval time.Duration
	// FormerStreams says what becomes of the leases of a stream no longer
	// consumed. Default: they are kept.
	FormerStreams FormerStreams
	// AppName names the application; workers with the same AppName (and
	// TableName) share the stream's shards. Required.
	AppName string
	// TableName is the DynamoDB lease table. Default: AppName. It is created
	// (on-demand capacity) when missing.
	TableName string
	// WorkerID identifies this worker in the lease table; it must differ
	// between the workers of an application. Default: the host name followed
	// by a random suffix.
	WorkerID string

	// Kinesis is the Kinesis client, such as a *kinesis.Client. Required.
	Kinesis KinesisAPI
	// DynamoDB is the DynamoDB client, such as a *dynamodb.Client, for the
	// lease table. Required unless LeaseStore is set.
	DynamoDB DynamoDBAPI
	// LeaseStore replaces the DynamoDB lease table, for example with
	// lease.NewMemoryStore() for tests or a single process. Default: the
	// table TableName through DynamoDB.
	LeaseStore lease.Store

	// NewProcessor returns the processor for a shard this worker has just
	// acquired. Set NewProcessor or NewShardProcessor. It is called from the
	// consumer's goroutines, one call at a time. A multi-stream consumer's
	// shard ids repeat from stream to stream: such a processor learns its
	// stream from each Batch (Batch.Stream), or use NewShardProcessor.
	NewProcessor func(shardID string) RecordProcessor
	// NewShardProcessor is NewProcessor told the whole shard: its id, its
	// stream, its parents and its checkpoint. Set it or NewProcessor; it is
	// called as NewProcessor is.
	NewShardProcessor func(shard ShardInfo) RecordProcessor

	// InitialPosition is where a brand-new application starts: Latest (the
	// default), TrimHorizon or AtTimestamp(t). Shards with a checkpoint
	// resume from it.
	InitialPosition InitialPosition

	// FailoverTime is how long a lease may go without renewal before other
	// workers take it over. Leases are renewed every FailoverTime/3. Default
	// 10s (lease.DefaultFailoverTime); at least 300ms (lease.MinFailoverTime).
	FailoverTime time.Duration
	// TakerInterval is how often the worker scans the lease table to take
	// unowned or expired leases and to balance the load. Default
	// FailoverTime/2.
	TakerInterval time.Duration
	// HandOffTimeout bounds a graceful hand-off. Leases move between workers
	// (to balance the load) by hand-off: the worker that wants a lease asks
	// its holder, whose shard worker finishes the batch in flight, calls
	// ShutdownRequested, checkpoints and releases the lease to it, so that no
	// record is processed twice; the holder hears of the request at its next
	// lease renewal (every FailoverTime/3). A holder that has not released
	// the lease within HandOffTimeout loses it to a plain steal (LeaseLost).
	// Default FailoverTime; more than FailoverTime/3.
	HandOffTimeout time.Duration
	// MaxLeasesForWorker caps how many leases this worker holds. Default 0:
	// no cap.
	MaxLeasesForWorker int
	// ShardSyncInterval is how often the shard list is read to find new
	// shards. Children of a shard read to its end are found at once, from
	// the last GetRecords response. Default 1m.
	ShardSyncInterval time.Duration

	// MaxRecords is the most records one GetRecords call returns, 1 to
	// 10000. Default 10000.
	MaxRecords int
	// PollInterval is the pause between GetRecords calls once a shard is
	// caught up (MillisBehindLatest 0). A shard that is behind is read
	// without pause. Default 1s.
	PollInterval time.Duration
	// CheckpointInterval bounds how often automatic checkpoints are written
	// per shard: at most one write per interval, carried on a lease renewal
	// when one is due. Checkpoints are always written at shard end, before
	// a lease is released, and at shutdown. Default 5s.
	CheckpointInterval time.Duration
	// ManualCheckpoint turns automatic checkpoints off: only Batch.Checkpoint
	// and Batch.CheckpointAt write them, plus the SHARD_END checkpoint at the
	// end of a shard, which the consumer writes as soon as ShardEnded returns
	// nil (at once for a processor without ShardEnded): a processor that
	// checkpoints asynchronously must finish that work in ShardEnded, and at
	// shutdown in ShutdownRequested, through a Batch it kept.
	ManualCheckpoint bool
	// Retrieval is how records are read: Polling() (the default, also the
	// zero value), EnhancedFanOut(name) or EnhancedFanOutARN(arn). With
	// enhanced fan-out, Kinesis must provide more calls (see
	// EnhancedFanOut); MaxRecords and PollInterval do not apply.
	Retrieval Retrieval
	// DropMisroutedAggregates drops, whole, every aggregated record that
	// holds a user record whose hash key falls outside the shard it was read
	// from, as the Java KCL does. Default false: such user records are
	// delivered (with the rest of their aggregate), counted, and reported
	// in a warning at most once a minute per shard.
	//
	// Which to choose depends on the producer. The KPL puts an aggregate
	// whose user records it computed for one shard; if its shard map was
	// stale (after a reshard) and the aggregate landed where some of them
	// do not belong, it puts those again to the right shard: dropping the
	// aggregate then avoids processing them twice. The aggregation
	// libraries for Node, Python and Java (awslabs/kinesis-aggregation),
	// used with a partition key or explicit hash key per user record, put
	// user records of several shards in one aggregate and never put them
	// again: dropping loses them. So set it only when every producer is the
	// KPL and duplicates cost more than the records.
	DropMisroutedAggregates bool

	// MaxBufferedBytes bounds the record bytes fetched but not yet
	// processed, across all shards: payloads plus the Record values
	// describing them. It is a bound, not a target: before each GetRecords
	// call the consumer reserves the most the response may hold (Kinesis
	// sends records of at most 1 MiB and 10 MiB per call) and lowers the
	// call's Limit to fit. With enhanced fan-out, Kinesis pushes the events:
	// a shard's subscription takes its next event only once it has the
	// budget for it, so beyond the bound each subscription holds at most the
	// event waiting for budget and what the SDK and the connection have
	// read ahead (two events, and the HTTP/2 window). Default 256 MiB; at
	// least 2 MiB.
	MaxBufferedBytes int64
	// ShutdownTimeout bounds a graceful shutdown: finishing the batches in
	// flight and ShutdownRequested. When it is overrun, the processors'
	// contexts are cancelled; the final checkpoints and the release of the
	// leases are still written after that, within two lease renewal
	// intervals (2/3 of FailoverTime). Default 30s.
	ShutdownTimeout time.Duration

	// Logger receives the consumer's logs. Default: discard.
	Logger *slog.Logger

	// Hooks observe the consumer, for metrics: each receives the events of
	// the Hook* interfaces it implements, of this package and of package
	// lease (see Hook for the contract: called synchronously, concurrently,
	// and must not block). The metrics modules of this repository provide
	// Prometheus, OpenTelemetry and CloudWatch hooks. Default: none.
	Hooks []Hook
}

// InitialPosition is where a brand-new application starts reading. The zero
// value is Latest in Config, and Config's in a StreamConfig.
type InitialPosition struct {
	kind initialKind
	at   time.Time
}

type initialKind uint8

const (
	// initialDefault is the zero value: Latest in Config.InitialPosition
	// (withDefaults sets it), Config's in StreamConfig.InitialPosition.
	initialDefault initialKind = iota
	initialLatest
	initialTrimHorizon
	initialAtTimestamp
)

// Initial positions.
var (
	// Latest starts after the newest record: only records written after the
	// application's first start are processed.
	Latest = InitialPosition{kind: initialLatest}
	// TrimHorizon starts at the oldest record still in the stream.
	TrimHorizon = InitialPosition{kind: initialTrimHorizon}
)

// AtTimestamp starts at the first record that arrived at or after t. Unlike
// the Java KCL, the timestamp is kept for every shard the application starts
// from, including those reached later through the shard lineage.
func AtTimestamp(t time.Time) InitialPosition {
	return InitialPosition{kind: initialAtTimestamp, at: t}
}

// String names the position.
func (p InitialPosition) String() string {
	switch p.kind {
	case initialTrimHorizon:
		return "TRIM_HORIZON"
	case initialAtTimestamp:
		return "AT_TIMESTAMP(" + p.at.Format(time.RFC3339Nano) + ")"
	}
	return "LATEST"
}

var (
	tableNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)
	streamRE    = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
)

// withDefaults returns cfg with defaults filled in, or a *ConfigError naming
// the first invalid field. The lease settings (FailoverTime, TakerInterval,
// HandOffTimeout, MaxLeasesForWorker) are filled and checked by
// lease.Config.WithDefaults, the one place that does it.
func (cfg Config) withDefaults() (Config, error) {
	bad := func(field string, format string, args ...any) (Config, error) {
		return Config{}, &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	multi := cfg.multiStream()
	switch {
	case multi && (cfg.StreamName != "" || cfg.StreamARN != ""):
		return bad("StreamName", "set StreamName or StreamARN for one stream, Streams or DiscoverStreams for several, not both")
	case !multi && cfg.StreamName == "" && cfg.StreamARN == "":
		return bad("StreamName", "set StreamName or StreamARN (or Streams or DiscoverStreams)")
	case cfg.StreamName != "" && !streamRE.MatchString(cfg.StreamName):
		return bad("StreamName", "%q is not a valid stream name", cfg.StreamName)
	case cfg.AppName == "":
		return bad("AppName", "required")
	case cfg.Kinesis == nil:
		return bad("Kinesis", "required")
	case cfg.DynamoDB == nil && cfg.LeaseStore == nil:
		return bad("DynamoDB", "required (or set LeaseStore)")
	case cfg.NewProcessor == nil && cfg.NewShardProcessor == nil:
		return bad("NewProcessor", "required (or NewShardProcessor)")
	case cfg.NewProcessor != nil && cfg.NewShardProcessor != nil:
		return bad("NewShardProcessor", "set NewProcessor or NewShardProcessor, not both")
	}
	if err := cfg.checkStreams(); err != nil {
		return Config{}, err
	}
	if cfg.TableName == "" {
		cfg.TableName = cfg.AppName
	}
	if cfg.LeaseStore == nil && !tableNameRE.MatchString(cfg.TableName) {
		return bad("TableName", "%q is not a valid DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)", cfg.TableName)
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = defaultWorkerID()
	}
	if cfg.InitialPosition.kind == initialDefault {
		cfg.InitialPosition = Latest
	}
	if cfg.InitialPosition.kind == initialAtTimestamp && cfg.InitialPosition.at.IsZero() {
		return bad("InitialPosition", "AtTimestamp with a zero time")
	}
	lc, err := cfg.leaseConfig().WithDefaults()
	if err != nil {
		return Config{}, err
	}
	cfg.FailoverTime, cfg.TakerInterval, cfg.HandOffTimeout = lc.FailoverTime, lc.TakerInterval, lc.HandOffTimeout
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
		min  time.Duration
	}{
		{"ShardSyncInterval", &cfg.ShardSyncInterval, DefaultShardSyncInterval, time.Millisecond},
		{"PollInterval", &cfg.PollInterval, DefaultPollInterval, time.Millisecond},
		{"CheckpointInterval", &cfg.CheckpointInterval, DefaultCheckpointInterval, 0},
		{"ShutdownTimeout", &cfg.ShutdownTimeout, DefaultShutdownTimeout, time.Millisecond},
	}
	for _, d := range durations {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < d.min {
			return bad(d.name, "%v is less than the minimum %v", *d.v, d.min)
		}
	}
	switch {
	case cfg.MaxRecords == 0:
		cfg.MaxRecords = DefaultMaxRecords
	case cfg.MaxRecords < 1 || cfg.MaxRecords > 10000:
		return bad("MaxRecords", "%d is outside 1..10000", cfg.MaxRecords)
	}
	switch {
	case cfg.MaxBufferedBytes == 0:
		cfg.MaxBufferedBytes = DefaultMaxBufferedBytes
	case cfg.MaxBufferedBytes < minBufferedBytes:
		return bad("MaxBufferedBytes", "%d is less than the minimum 2 MiB (one 1 MiB record and room for another shard's batch)", cfg.MaxBufferedBytes)
	}
	if err := cfg.Retrieval.check(&cfg); err != nil {
		return Config{}, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// leaseConfig is the lease manager's configuration derived from cfg, without
// the callbacks, which the consumer sets when it runs. The manager gets the
// consumer's hooks, and its logger with the stream and the application (it
// adds the worker itself).
func (cfg Config) leaseConfig() lease.Config {
	return lease.Config{
		WorkerID:           cfg.WorkerID,
		FailoverTime:       cfg.FailoverTime,
		TakerInterval:      cfg.TakerInterval,
		HandOffTimeout:     cfg.HandOffTimeout,
		MaxLeasesForWorker: cfg.MaxLeasesForWorker,
		Logger:             cfg.logger(),
		Stream:             cfg.stream(),
		Hooks:              leaseHooks(cfg.Hooks),
	}
}

// stream names the stream in logs, hook events and Status.
func (cfg Config) stream() string {
	if cfg.StreamName != "" {
		return cfg.StreamName
	}
	return cfg.StreamARN
}

// logger is Logger with the keys every log of the consumer carries: stream
// and app (and worker, added by the consumer and the lease manager).
func (cfg Config) logger() *slog.Logger {
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if cfg.multiStream() {
		return l.With("app", cfg.AppName) // each stream's logs name it (stream.log)
	}
	return l.With("stream", cfg.stream(), "app", cfg.AppName)
}

func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
