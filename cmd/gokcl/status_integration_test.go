//go:build integration

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// status of a live two-worker application: both workers, every shard once,
// the checkpoints the table holds, and measured lags; once the workers stop
// and records keep coming, the lag grows.
func TestIntegrationStatusOfTwoWorkers(t *testing.T) {
	const shards = 4
	a := newApp(t, shards)
	last := map[string]string{} // shard → sequence number of its last record
	for i := range shards {
		seqs := a.put(i, shards, i*100, i*100+50)
		last[shardID(i)] = seqs[len(seqs)-1]
	}
	w1, w2 := a.start(a.config("w1", 3*time.Second)), a.start(a.config("w2", 3*time.Second))
	waitFor(t, time.Minute, "every record processed, 2 leases each", func() bool {
		o := a.owners()
		return a.col.all(0, 50, 1) && a.col.all(300, 350, 1) && o["w1"] == 2 && o["w2"] == 2
	})
	waitFor(t, 30*time.Second, "checkpoints at the last records", func() bool {
		for key, l := range a.leases() {
			if l.Checkpoint.String() != last[key] {
				return false
			}
		}
		return true
	})

	var st statusReport
	gokclJSON(t, &st, "status", "-app", a.stream, "-stream", a.stream, "-failover", "3s")
	require.Len(t, st.Leases, shards, "every shard once")
	owners := map[string]int{}
	for i, row := range st.Leases {
		require.Equal(t, shardID(i), row.Shard)
		require.Equal(t, last[row.Shard], row.Checkpoint, row.Shard)
		require.Equal(t, stateHeld, row.State, row.Shard)
		require.NotNil(t, row.LagMS, "lag of %s measured: %s", row.Shard, row.LagNote)
		require.Zero(t, *row.LagMS, "caught up: %s", row.Shard)
		owners[row.Owner]++
	}
	require.Equal(t, map[string]int{"w1": 2, "w2": 2}, owners)
	require.Len(t, st.Workers, 2)
	for _, w := range st.Workers {
		require.Equal(t, 2, w.Leases, w.Worker)
		require.Zero(t, w.Expired, w.Worker)
	}

	var ws workersReport
	gokclJSON(t, &ws, "workers", "-app", a.stream, "-failover", "3s")
	require.Len(t, ws.Workers, 2)
	for _, w := range ws.Workers {
		require.Equal(t, "live", w.State, w.Worker)
		require.Equal(t, 2, w.Leases, w.Worker)
		require.NotNil(t, w.LastRenewalSeen, w.Worker)
	}

	// The table format says the same.
	r := gokcl(t, "status", "-app", a.stream, "-stream", a.stream, "-failover", "3s")
	require.Equal(t, exitOK, r.code, r.stderr)
	for i := range shards {
		require.Equal(t, 1, strings.Count(r.stdout, shardID(i)+" "), "shard %d listed once", i)
	}
	require.Contains(t, r.stdout, "4 leases (4 held)")

	// Stopped workers release their leases; records written a second later
	// leave every checkpoint behind by about that second.
	w1.stop()
	w2.stop()
	time.Sleep(time.Second)
	for i := range shards {
		a.put(i, shards, i*100+50, i*100+60)
	}
	gokclJSON(t, &st, "status", "-app", a.stream, "-stream", a.stream, "-failover", "3s")
	for _, row := range st.Leases {
		require.Equal(t, stateUnowned, row.State, row.Shard)
		require.NotNil(t, row.LagMS, row.Shard)
		require.GreaterOrEqual(t, *row.LagMS, int64(900), "behind by the second: %s", row.Shard)
	}
	require.Empty(t, st.Workers)
}
