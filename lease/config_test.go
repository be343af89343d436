package lease

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigDefaults(t *testing.T) {
	m, err := NewManager(NewMemoryStore(), Config{WorkerID: "w"})
	require.NoError(t, err)
	cfg := m.Config()
	require.Equal(t, 10*time.Second, cfg.FailoverTime)
	require.Equal(t, 10*time.Second/3, cfg.RenewInterval)
	require.Equal(t, 5*time.Second, cfg.TakerInterval)
	require.Zero(t, cfg.MaxLeasesForWorker)
	require.Zero(t, cfg.MaxLeasesToStealAtOnce)
	require.NotNil(t, cfg.Logger)
	require.Equal(t, 9*time.Second, cfg.dropAfter())

	m, err = NewManager(NewMemoryStore(), Config{WorkerID: "w", FailoverTime: 30 * time.Second})
	require.NoError(t, err)
	require.Equal(t, 10*time.Second, m.Config().RenewInterval, "derived from FailoverTime")
	require.Equal(t, 15*time.Second, m.Config().TakerInterval)
}

func TestConfigInvalid(t *testing.T) {
	valid := Config{WorkerID: "w"}
	tests := []struct {
		field   string
		mutate  func(*Config)
		problem string
	}{
		{"WorkerID", func(c *Config) { c.WorkerID = "" }, "must not be empty"},
		{"FailoverTime", func(c *Config) { c.FailoverTime = -time.Second }, "must be positive, got -1s"},
		{"FailoverTime", func(c *Config) { c.FailoverTime = 50 * time.Millisecond }, "must be at least 300ms, got 50ms"},
		{"RenewInterval", func(c *Config) { c.RenewInterval = -time.Second }, "must be positive, got -1s"},
		{"RenewInterval", func(c *Config) { c.RenewInterval = 5 * time.Second }, "must be less than FailoverTime/2 (5s), got 5s"},
		{"TakerInterval", func(c *Config) { c.TakerInterval = -time.Second }, "must be positive, got -1s"},
		{"MaxLeasesForWorker", func(c *Config) { c.MaxLeasesForWorker = -1 }, "must not be negative, got -1"},
		{"MaxLeasesToStealAtOnce", func(c *Config) { c.MaxLeasesToStealAtOnce = -2 }, "must not be negative, got -2"},
	}
	for _, tt := range tests {
		cfg := valid
		tt.mutate(&cfg)
		m, err := NewManager(NewMemoryStore(), cfg)
		require.Nil(t, m)
		require.ErrorIs(t, err, ErrInvalidConfig, tt.field)
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), tt.field)
		require.Equal(t, tt.field, ce.Field)
		require.Equal(t, "gokcl: invalid config: "+tt.field+": "+tt.problem, err.Error())
	}
}

func TestNewManagerNilStore(t *testing.T) {
	_, err := NewManager(nil, Config{WorkerID: "w"})
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.ErrorContains(t, err, "Store")
}
