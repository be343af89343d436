//go:build integration

package main

import (
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A worker process dies: status and workers call it expired while the
// survivor is live; evict refuses the live survivor, releases the dead
// worker's leases, and the survivor takes them within its taker cycle,
// long before they would expire.
func TestIntegrationEvictDeadWorker(t *testing.T) {
	const (
		shards   = 4
		failover = 30 * time.Second
		taker    = time.Second
	)
	a := newApp(t, shards)
	proc := a.startWorkerProcess("doomed", failover)
	cfg := a.config("survivor", failover)
	cfg.TakerInterval = taker
	a.start(cfg)
	waitFor(t, 2*time.Minute, "2 leases each", func() bool {
		o := a.owners()
		return o["doomed"] == 2 && o["survivor"] == 2
	})

	// The survivor is alive: evict watches its counters and refuses.
	r := gokcl(t, "evict", "-app", a.stream, "-worker", "survivor", "-failover", failover.String())
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stderr, `worker "survivor" is alive`)
	require.Equal(t, 2, a.owners()["survivor"], "nothing released")

	require.NoError(t, proc.Signal(syscall.SIGKILL))
	killed := time.Now()

	// Watched longer than a renewal interval (failover/3), the survivor's
	// leases move and the dead worker's do not. Both commands watch at once.
	watch := (failover/3 + time.Second).String()
	var wr, sr result
	var wg sync.WaitGroup
	wg.Go(func() {
		wr = gokcl(t, "workers", "-app", a.stream, "-failover", failover.String(), "-watch", watch, "-o", "json")
	})
	wg.Go(func() {
		sr = gokcl(t, "status", "-app", a.stream, "-stream", a.stream, "-failover", failover.String(), "-watch", watch, "-o", "json")
	})
	wg.Wait()
	var ws workersReport
	var st statusReport
	decodeJSON(t, wr, &ws)
	decodeJSON(t, sr, &st)
	states := map[string]string{}
	for _, w := range ws.Workers {
		states[w.Worker] = w.State
	}
	require.Equal(t, map[string]string{"doomed": stateExpired, "survivor": "live"}, states)
	require.Len(t, st.Leases, shards)
	for _, row := range st.Leases {
		want := map[string]string{"doomed": stateExpired, "survivor": stateHeld}[row.Owner]
		require.Equal(t, want, row.State, "%s of %s", row.Shard, row.Owner)
	}

	r = gokcl(t, "evict", "-app", a.stream, "-worker", "doomed", "-failover", failover.String(), "-watch", "2s")
	require.Equal(t, exitOK, r.code, r.stderr)
	evicted := time.Now()
	waitFor(t, 2*taker+3*time.Second, "the survivor to take every lease", func() bool { return a.owners()["survivor"] == shards })
	t.Logf("taken over %v after the evict, %v after the kill (failover %v)", time.Since(evicted), time.Since(killed), failover)
	// The survivor saw the dead worker's last renewal at the earliest a
	// renewal interval before the kill, so expiry could not hand it the
	// leases before 2/3 of the failover time after the kill.
	require.Less(t, time.Since(killed), failover*2/3, "taken because of the evict, not by expiry")
}
