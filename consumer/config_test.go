package consumer

import (
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

func TestConfigDefaults(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	cfg := c.cfg
	require.Equal(t, "app", cfg.TableName)
	require.NotEmpty(t, cfg.WorkerID)
	require.Equal(t, DefaultFailoverTime, cfg.FailoverTime)
	require.Equal(t, DefaultFailoverTime/2, cfg.TakerInterval)
	require.Equal(t, DefaultMaxRecords, cfg.MaxRecords)
	require.Equal(t, DefaultPollInterval, cfg.PollInterval)
	require.Equal(t, DefaultCheckpointInterval, cfg.CheckpointInterval)
	require.EqualValues(t, DefaultMaxBufferedBytes, cfg.MaxBufferedBytes)
	require.Equal(t, DefaultShutdownTimeout, cfg.ShutdownTimeout)
	require.Equal(t, DefaultShardSyncInterval, cfg.ShardSyncInterval)
	require.Equal(t, Latest, cfg.InitialPosition)
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
		{"FailoverTime", func(c *Config) { c.FailoverTime = 100 * time.Millisecond }},
		{"FailoverTime", func(c *Config) { c.FailoverTime = -time.Second }},
		{"TakerInterval", func(c *Config) { c.TakerInterval = -1 }},
		{"ShardSyncInterval", func(c *Config) { c.ShardSyncInterval = -1 }},
		{"PollInterval", func(c *Config) { c.PollInterval = -1 }},
		{"CheckpointInterval", func(c *Config) { c.CheckpointInterval = -1 }},
		{"ShutdownTimeout", func(c *Config) { c.ShutdownTimeout = -1 }},
		{"MaxRecords", func(c *Config) { c.MaxRecords = 10001 }},
		{"MaxRecords", func(c *Config) { c.MaxRecords = -1 }},
		{"MaxLeasesForWorker", func(c *Config) { c.MaxLeasesForWorker = -1 }},
		{"MaxBufferedBytes", func(c *Config) { c.MaxBufferedBytes = 1000 }},
		{"MaxBufferedBytes", func(c *Config) { c.MaxBufferedBytes = 2<<20 - 1 }},
	}
	for _, tt := range tests {
		cfg := validConfig()
		tt.mutate(&cfg)
		_, err := New(cfg)
		require.ErrorIs(t, err, ErrInvalidConfig, tt.field)
		require.True(t, strings.Contains(err.Error(), tt.field), "error %q names %s", err, tt.field)
	}
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
