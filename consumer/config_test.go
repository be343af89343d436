package consumer

import (
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
	cfg.WorkerID, cfg.FailoverTime, cfg.MaxLeasesForWorker = "w1", 6*time.Second, 7
	c, err := New(cfg)
	require.NoError(t, err)
	lc, err := c.cfg.leaseConfig().WithDefaults()
	require.NoError(t, err)
	require.Equal(t, "w1", lc.WorkerID)
	require.Equal(t, 6*time.Second, lc.FailoverTime)
	require.Equal(t, c.cfg.TakerInterval, lc.TakerInterval)
	require.Equal(t, 3*time.Second, lc.TakerInterval)
	require.Equal(t, 7, lc.MaxLeasesForWorker)
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
