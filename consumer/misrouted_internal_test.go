package consumer

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// logRecords is a slog handler keeping the records it is given.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r)
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// warnings returns the value of attr in each warning logged so far.
func (h *logRecords) warnings(attr string) []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []int64
	for _, r := range h.recs {
		if r.Level != slog.LevelWarn {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == attr {
				out = append(out, a.Value.Int64())
			}
			return true
		})
	}
	return out
}

func TestMisroutedUserRecordsAreReportedOncePerMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &logRecords{}
		w := &shardWorker{c: &Consumer{}, log: slog.New(h)}
		w.noteMisrouted(convertResult{misrouted: 3}) // the first: at once
		w.noteMisrouted(convertResult{misrouted: 2})
		time.Sleep(30 * time.Second)
		w.noteMisrouted(convertResult{misrouted: 1})
		require.Equal(t, []int64{3}, h.warnings("user_records_delivered"))
		time.Sleep(30 * time.Second)
		w.noteMisrouted(convertResult{}) // nothing new in this batch, but some since the warning
		require.Equal(t, []int64{3, 6}, h.warnings("user_records_delivered"), "the running count")
		time.Sleep(5 * time.Minute)
		w.noteMisrouted(convertResult{})
		require.Equal(t, []int64{3, 6}, h.warnings("user_records_delivered"), "nothing new: no warning")
	})
}
