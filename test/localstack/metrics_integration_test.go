//go:build integration

package localstack

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/testenv"
)

// metricsWorker is examples/worker run with -metrics-addr: its output lines
// are collected, and its metrics and health scraped over HTTP.
type metricsWorker struct {
	*workerProcess
	url string // http://host:port
}

var metricsURLRE = regexp.MustCompile(`worker: metrics on (http://[^/\s]+)/metrics`)

func startMetricsWorker(t *testing.T, f *fixture, bin, id string, failover time.Duration) *metricsWorker {
	t.Helper()
	k, d := testenv.Endpoints(t)
	cmd := exec.Command(bin, "-stream", f.stream, "-app", f.stream, "-worker", id,
		"-kinesis-endpoint", k, "-dynamodb-endpoint", d, "-failover", failover.String(), "-metrics-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	errOut, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &workerProcess{cmd: cmd, seen: map[int]int{}, done: make(chan struct{})}
	stderrDone := make(chan struct{})
	urls := make(chan string, 1)
	go func() {
		defer close(stderrDone)
		sc := bufio.NewScanner(errOut)
		for sc.Scan() {
			if m := metricsURLRE.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
			if os.Getenv("GOKCL_TEST_LOG") != "" {
				t.Log(id + ": " + sc.Text())
			}
		}
	}()
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, _, n, ok := parseWorkerLine(sc.Text()); ok {
				p.mu.Lock()
				p.seen[n]++
				p.n++
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		<-stderrDone
		_ = cmd.Wait()
	})
	select {
	case u := <-urls:
		return &metricsWorker{workerProcess: p, url: u}
	case <-time.After(time.Minute):
		t.Fatalf("worker %s did not say where its metrics are served", id)
		return nil
	}
}

func (w *metricsWorker) unique() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

// sample is one series of a scrape: its labels and value.
type sample struct {
	labels map[string]string
	value  float64
}

var (
	sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// scrape reads /metrics and returns the series of each metric, from
// Prometheus's text format.
func (w *metricsWorker) scrape(t *testing.T) map[string][]sample {
	t.Helper()
	resp, err := http.Get(w.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string][]sample{}
	for _, line := range strings.Split(string(body), "\n") {
		m := sampleRE.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		require.NoError(t, err, line)
		s := sample{labels: map[string]string{}, value: v}
		for _, l := range labelRE.FindAllStringSubmatch(m[2], -1) {
			s.labels[l[1]] = l[2]
		}
		out[m[1]] = append(out[m[1]], s)
	}
	return out
}

// health reads /healthz: its status code and the Status it carries.
func (w *metricsWorker) health(t *testing.T) (int, consumer.Status) {
	t.Helper()
	resp, err := http.Get(w.url + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var st consumer.Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return resp.StatusCode, st
}

func sum(ss []sample) float64 {
	total := 0.0
	for _, s := range ss {
		total += s.value
	}
	return total
}

// events returns the series of gokcl_lease_events_total with the event
// label, and the reason label unless reason is empty.
func events(m map[string][]sample, event, reason string) []sample {
	var out []sample
	for _, s := range m["gokcl_lease_events_total"] {
		if s.labels["event"] == event && (reason == "" || s.labels["reason"] == reason) {
			out = append(out, s)
		}
	}
	return out
}

// shards returns the shard label of each series, sorted.
func shards(ss []sample) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.labels["shard"])
	}
	sort.Strings(out)
	return out
}

// A real worker process serves its metrics: after processing a known set of
// records, gokcl_records_processed_total adds up to them and
// gokcl_millis_behind_latest has one series per shard held; when a second
// worker takes a shard over, the shard's series disappear from the first.
func TestIntegrationWorkerMetrics(t *testing.T) {
	f := newFixture(t, 2)
	f.putPlain(200, 20)
	bin := buildWorker(t)
	const failover = 3 * time.Second
	a := startMetricsWorker(t, f, bin, "a", failover)
	waitFor(t, time.Minute, "worker a to process every record", func() bool { return a.unique() == 200 })

	var m map[string][]sample
	waitFor(t, time.Minute, "the processed records in a's metrics", func() bool {
		m = a.scrape(t)
		return sum(m["gokcl_records_processed_total"]) == 200
	})
	both := []string{"shardId-000000000000", "shardId-000000000001"}
	require.Equal(t, both, shards(m["gokcl_millis_behind_latest"]))
	require.Equal(t, both, shards(m["gokcl_records_processed_total"]))
	for _, s := range m["gokcl_millis_behind_latest"] {
		require.Equal(t, f.stream, s.labels["stream"])
		require.Equal(t, "a", s.labels["worker"])
	}
	require.Equal(t, 2.0, sum(m["gokcl_leases_held"]))
	require.Equal(t, 1.0, sum(m["gokcl_healthy"]))
	// A worker that started at once may have processed every record before
	// its first checkpoint write (deferred to the next renewal).
	waitFor(t, time.Minute, "a checkpoint write in a's metrics", func() bool {
		return len(a.scrape(t)["gokcl_checkpoints_total"]) > 0
	})
	require.NotEmpty(t, m["go_goroutines"], "the Go runtime's metrics too")
	code, st := a.health(t)
	require.Equal(t, http.StatusOK, code)
	require.True(t, st.Running)
	require.Equal(t, "a", st.WorkerID)
	require.Len(t, st.Shards, 2)

	// Worker b takes one shard over (the balance gives each one).
	b := startMetricsWorker(t, f, bin, "b", failover)
	waitFor(t, time.Minute, "one shard each", func() bool {
		o := f.owners()
		return o["a"] == 1 && o["b"] == 1
	})
	var kept, moved string
	waitFor(t, time.Minute, "the moved shard's series gone from a", func() bool {
		ma, mb := a.scrape(t), b.scrape(t)
		la, lb := shards(ma["gokcl_millis_behind_latest"]), shards(mb["gokcl_millis_behind_latest"])
		if len(la) != 1 || len(lb) != 1 || la[0] == lb[0] {
			return false
		}
		kept, moved = la[0], lb[0]
		return len(ma["gokcl_records_processed_total"]) == 1
	})
	ma := a.scrape(t)
	require.Equal(t, []string{kept}, shards(ma["gokcl_records_processed_total"]), "no stale series of %s", moved)
	require.Equal(t, 1.0, sum(ma["gokcl_leases_held"]))
	code, st = b.health(t)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, moved, st.Shards[0].ShardID)
	// The shard moved by a graceful hand-off: counted as such on both
	// workers, and as a loss on neither.
	require.Equal(t, 1.0, sum(events(ma, "handed_off", "hand_off")))
	require.Equal(t, 1.0, sum(events(b.scrape(t), "taken", "hand_off")))
	require.Empty(t, events(ma, "lost", ""))

	// A graceful stop of a releases its shard; b takes it.
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	<-a.done
	waitFor(t, time.Minute, "b to hold both shards", func() bool {
		return len(b.scrape(t)["gokcl_millis_behind_latest"]) == 2
	})
}
