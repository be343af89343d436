package consumer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/lease"
)

// noKinesis satisfies KinesisAPI for New, which makes no call.
type noKinesis struct{ KinesisAPI }

func validConfig() Config {
	return Config{
		StreamName:   "s",
		AppName:      "app",
		Kinesis:      noKinesis{},
		LeaseStore:   lease.NewMemoryStore(),
		NewProcessor: func(string) RecordProcessor { return nil },
	}
}

// Every field's default, as New fills it in.
func TestConfigDefaults(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	cfg := c.cfg
	tests := []struct {
		field     string
		got, want any
	}{
		{"TableName", cfg.TableName, "app"},
		{"FailoverTime", cfg.FailoverTime, DefaultFailoverTime},
		{"TakerInterval", cfg.TakerInterval, DefaultFailoverTime / 2},
		{"HandOffTimeout", cfg.HandOffTimeout, DefaultFailoverTime},
		{"MaxLeasesForWorker", cfg.MaxLeasesForWorker, 0},
		{"ShardSyncInterval", cfg.ShardSyncInterval, DefaultShardSyncInterval},
		{"MaxRecords", cfg.MaxRecords, DefaultMaxRecords},
		{"PollInterval", cfg.PollInterval, DefaultPollInterval},
		{"CheckpointInterval", cfg.CheckpointInterval, DefaultCheckpointInterval},
		{"ManualCheckpoint", cfg.ManualCheckpoint, false},
		{"DropMisroutedAggregates", cfg.DropMisroutedAggregates, false},
		{"MaxBufferedBytes", cfg.MaxBufferedBytes, int64(DefaultMaxBufferedBytes)},
		{"ShutdownTimeout", cfg.ShutdownTimeout, DefaultShutdownTimeout},
		{"InitialPosition", cfg.InitialPosition, Latest},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.got, tt.field)
	}
	require.NotEmpty(t, cfg.WorkerID)
	require.NotNil(t, cfg.Logger)

	other, err := New(validConfig())
	require.NoError(t, err)
	require.NotEqual(t, cfg.WorkerID, other.cfg.WorkerID, "default worker ids differ")

	cfg2 := validConfig()
	cfg2.FailoverTime = 4 * time.Second
	c2, err := New(cfg2)
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, c2.cfg.TakerInterval, "TakerInterval follows FailoverTime")
}

// The lease manager is configured from the consumer's Config with the same
// values: one set of defaults.
func TestLeaseConfigIsDerived(t *testing.T) {
	cfg := validConfig()
	cfg.WorkerID, cfg.FailoverTime, cfg.MaxLeasesForWorker, cfg.HandOffTimeout = "w1", 6*time.Second, 7, 4*time.Second
	c, err := New(cfg)
	require.NoError(t, err)
	lc, err := c.cfg.leaseConfig().WithDefaults()
	require.NoError(t, err)
	require.Equal(t, "w1", lc.WorkerID)
	require.Equal(t, 6*time.Second, lc.FailoverTime)
	require.Equal(t, c.cfg.TakerInterval, lc.TakerInterval)
	require.Equal(t, 3*time.Second, lc.TakerInterval)
	require.Equal(t, 7, lc.MaxLeasesForWorker)
	require.Equal(t, 4*time.Second, lc.HandOffTimeout)
	require.Equal(t, lease.DefaultFailoverTime, DefaultFailoverTime)
}

// Every field's bad values: New returns a *ConfigError naming the field.
func TestConfigErrorsNameTheField(t *testing.T) {
	tests := []struct {
		field  string
		mutate func(*Config)
	}{
		{"StreamName", func(c *Config) { c.StreamName = "" }},
		{"StreamName", func(c *Config) { c.StreamName = "bad name!" }},
		{"AppName", func(c *Config) { c.AppName = "" }},
		{"Kinesis", func(c *Config) { c.Kinesis = nil }},
		{"DynamoDB", func(c *Config) { c.LeaseStore = nil }},
		{"NewProcessor", func(c *Config) { c.NewProcessor = nil }},
		{"TableName", func(c *Config) { c.LeaseStore = nil; c.DynamoDB = fakeDynamo{}; c.TableName = "x" }},
		{"InitialPosition", func(c *Config) { c.InitialPosition = AtTimestamp(time.Time{}) }},
		{"FailoverTime", func(c *Config) { c.FailoverTime = lease.MinFailoverTime - 1 }},
		{"FailoverTime", func(c *Config) { c.FailoverTime = -time.Second }},
		{"TakerInterval", func(c *Config) { c.TakerInterval = -1 }},
		{"HandOffTimeout", func(c *Config) { c.HandOffTimeout = time.Second }}, // not more than FailoverTime/3
		{"MaxLeasesForWorker", func(c *Config) { c.MaxLeasesForWorker = -1 }},
		{"ShardSyncInterval", func(c *Config) { c.ShardSyncInterval = -1 }},
		{"PollInterval", func(c *Config) { c.PollInterval = -1 }},
		{"CheckpointInterval", func(c *Config) { c.CheckpointInterval = -1 }},
		{"ShutdownTimeout", func(c *Config) { c.ShutdownTimeout = -1 }},
		{"MaxRecords", func(c *Config) { c.MaxRecords = 10001 }},
		{"MaxRecords", func(c *Config) { c.MaxRecords = -1 }},
		{"MaxBufferedBytes", func(c *Config) { c.MaxBufferedBytes = 1000 }},
		{"MaxBufferedBytes", func(c *Config) { c.MaxBufferedBytes = 2<<20 - 1 }},
	}
	for _, tt := range tests {
		cfg := validConfig()
		tt.mutate(&cfg)
		_, err := New(cfg)
		require.ErrorIs(t, err, ErrInvalidConfig, tt.field)
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%s: %v is a *ConfigError", tt.field, err)
		require.Equal(t, tt.field, ce.Field)
		require.True(t, strings.HasPrefix(err.Error(), "gokcl: invalid config: "+tt.field+": "), err.Error())
	}
	var ce *lease.ConfigError
	_, err := lease.NewManager(lease.NewMemoryStore(), lease.Config{})
	require.True(t, errors.As(err, &ce), "one error type for both packages")
	require.ErrorIs(t, err, ErrInvalidConfig)
}

// The boundaries: the smallest accepted values are accepted.
func TestConfigMinimumsAreAccepted(t *testing.T) {
	cfg := validConfig()
	cfg.FailoverTime = lease.MinFailoverTime
	cfg.MaxRecords = 1
	cfg.MaxBufferedBytes = 2 << 20
	cfg.CheckpointInterval = 0
	_, err := New(cfg)
	require.NoError(t, err)
}

func TestInitialPositionString(t *testing.T) {
	require.Equal(t, "LATEST", Latest.String())
	require.Equal(t, "TRIM_HORIZON", TrimHorizon.String())
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.Equal(t, "AT_TIMESTAMP(2026-01-02T03:04:05Z)", AtTimestamp(at).String())
}

// fakeDynamo satisfies DynamoDBAPI for configuration tests; it is never
// called.
type fakeDynamo struct{ DynamoDBAPI }

// describingKinesis also has DescribeStreamSummary, as a multi-stream
// consumer needs.
type describingKinesis struct {
	noKinesis
	streamDescriber
}

func validMultiConfig() Config {
	cfg := validConfig()
	cfg.StreamName = ""
	cfg.Kinesis = describingKinesis{}
	cfg.Streams = []StreamConfig{{Name: "a"}, {ARN: "arn:aws:kinesis:us-east-1:123456789012:stream/b", InitialPosition: TrimHorizon}}
	return cfg
}

// The multi-stream settings' defaults and bad values.
func TestMultiStreamConfig(t *testing.T) {
	c, err := New(validMultiConfig())
	require.NoError(t, err)
	require.Equal(t, DefaultStreamDiscoveryInterval, c.cfg.StreamDiscoveryInterval)
	require.Equal(t, FormerStreams{Delete: KeepStreamLeases, After: DefaultFormerStreamsAfter}, c.cfg.FormerStreams)
	require.True(t, c.cfg.multiStream())

	discover := func(c *Config) {
		c.Streams = nil
		c.DiscoverStreams = func(context.Context) ([]StreamConfig, error) { return nil, nil }
	}
	cfg := validMultiConfig()
	discover(&cfg)
	_, err = New(cfg)
	require.NoError(t, err)

	tests := []struct {
		field  string
		mutate func(*Config)
	}{
		{"StreamName", func(c *Config) { c.StreamName = "s" }},
		{"StreamName", func(c *Config) { c.Streams = nil }},
		{"Streams", func(c *Config) { c.Streams = []StreamConfig{} }},
		{"Streams", func(c *Config) { c.DiscoverStreams = func(context.Context) ([]StreamConfig, error) { return nil, nil } }},
		{"Streams", func(c *Config) { c.Streams = []StreamConfig{{}} }},
		{"Streams", func(c *Config) {
			c.Streams = []StreamConfig{{Name: "a", ARN: "arn:aws:kinesis:us-east-1:123456789012:stream/a"}}
		}},
		{"Streams", func(c *Config) { c.Streams = []StreamConfig{{Name: "bad name"}} }},
		{"Streams", func(c *Config) { c.Streams = []StreamConfig{{ARN: "arn:aws:s3:::bucket"}} }},
		{"Streams", func(c *Config) { c.Streams = []StreamConfig{{Name: "a", InitialPosition: AtTimestamp(time.Time{})}} }},
		{"StreamDiscoveryInterval", func(c *Config) { discover(c); c.StreamDiscoveryInterval = -1 }},
		{"StreamDiscoveryInterval", func(c *Config) { discover(c); c.StreamDiscoveryInterval = time.Nanosecond }},
		{"FormerStreams", func(c *Config) { c.FormerStreams.After = -1 }},
		{"FormerStreams", func(c *Config) { c.FormerStreams.Delete = 9 }},
		{"Kinesis", func(c *Config) { c.Kinesis = noKinesis{} }},
		{"NewShardProcessor", func(c *Config) { c.NewShardProcessor = func(ShardInfo) RecordProcessor { return nil } }},
		{"Retrieval", func(c *Config) {
			c.Retrieval = EnhancedFanOutARN("arn:aws:kinesis:us-east-1:123456789012:stream/a/consumer/x:1")
		}},
	}
	for _, tt := range tests {
		cfg := validMultiConfig()
		tt.mutate(&cfg)
		_, err := New(cfg)
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%s: %v is a *ConfigError", tt.field, err)
		require.Equal(t, tt.field, ce.Field, err.Error())
	}

	// NewShardProcessor alone will do, in either mode.
	cfg = validConfig()
	cfg.NewProcessor, cfg.NewShardProcessor = nil, func(ShardInfo) RecordProcessor { return nil }
	_, err = New(cfg)
	require.NoError(t, err)
}

// StreamConfig's zero InitialPosition is Config's; Config's is Latest.
func TestStreamInitialPositionDefault(t *testing.T) {
	require.NotEqual(t, InitialPosition{}, Latest, "an explicit Latest differs from the zero value")
	require.Equal(t, "LATEST", InitialPosition{}.String())
}
