package kcltest

import "time"

// Option configures a Stream made by NewStream.
type Option func(*options)

type options struct {
	name          string
	account       string
	retention     time.Duration
	shardsPerPage int
	responseBytes int
	seed          uint64
}

// WithName names the stream; consumers must be configured with this name
// (or the stream's ARN). Default "test-stream".
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithAccount sets the id of the AWS account the stream belongs to, which
// its ARN and DescribeStreamSummary show, and so the stream identifier a
// multi-stream consumer writes in its lease keys. Default DefaultAccount;
// anything but 12 decimal digits keeps the default.
func WithAccount(id string) Option { return func(o *options) { o.account = id } }

// WithRetention sets how long records stay in the stream, and how long a
// closed shard stays listed after it closed. Default 24h, the service's
// default; unlike the service, shorter periods are accepted. Zero or less
// keeps the default.
func WithRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithShardsPerPage caps the shards of one ListShards page below the
// caller's MaxResults, so that a test exercises paging with few shards.
// Default 1000, the service's default page. Values below 1 keep the default.
func WithShardsPerPage(n int) Option { return func(o *options) { o.shardsPerPage = n } }

// WithResponseBytes caps the record bytes of one GetRecords response
// (always at least one record). Default MaxResponseBytes, 10 MiB, the
// service's cap. A consumer reads a shard at most 5 times a second, as the
// service allows, so the cap bounds a shard's throughput as it does with the
// service; raise it to benchmark the CPU cost of a consumer rather than the
// service's limits. Values below 1 keep the default.
func WithResponseBytes(n int) Option { return func(o *options) { o.responseBytes = n } }

// WithSeed seeds the random source of FailRate, so that a test's faults
// repeat from run to run (given the same order of calls). Default 1.
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }
