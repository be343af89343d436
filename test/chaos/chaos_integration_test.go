//go:build integration

package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/internal/testenv"
)

// TestIntegrationChaos runs the chaos suite against the test servers:
// GOKCL_CHAOS_RUNS runs (default 1) of profile GOKCL_CHAOS_PROFILE (default
// short, the run inside make test), the first with seed GOKCL_CHAOS_SEED
// (default: from the clock) and each next one with the next seed. It prints
// one summary line per run and a table of the runs and their totals. A
// failed run prints what went wrong and the command that replays it.
//
// GOKCL_CHAOS_KEEP=1 keeps the workers' outputs and logs of passing runs
// too; GOKCL_CHAOS_DEBUG=1 has the workers log at debug level;
// GOKCL_CHAOS_RACE=0 or 1 builds the workers without or with the race
// detector (default: as this test is built).
func TestIntegrationChaos(t *testing.T) {
	runs := envInt(t, "GOKCL_CHAOS_RUNS", 1)
	name := os.Getenv("GOKCL_CHAOS_PROFILE")
	if name == "" {
		name = "short"
	}
	profile, ok := Profiles[name]
	require.True(t, ok, "GOKCL_CHAOS_PROFILE=%q: want short or long", name)
	seed := uint64(time.Now().UnixNano() % 1e9)
	if s := os.Getenv("GOKCL_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 0, 64)
		require.NoError(t, err, "GOKCL_CHAOS_SEED")
		seed = v
	}
	kinesisURL, dynamoURL := testenv.Endpoints(t)
	env := Env{
		Kinesis: testenv.Kinesis(t), DynamoDB: testenv.DynamoDB(t),
		KinesisURL: kinesisURL, DynamoURL: dynamoURL,
		WorkerBin: buildWorker(t, envInt(t, "GOKCL_CHAOS_RACE", map[bool]int{false: 0, true: 1}[raceEnabled]) == 1),
		Debug:     os.Getenv("GOKCL_CHAOS_DEBUG") == "1",
	}
	var results []*Result
	for i := range runs {
		s := seed + uint64(i)
		t.Run(fmt.Sprintf("seed-%d", s), func(t *testing.T) {
			results = append(results, runOnce(t, env, s, profile))
		})
	}
	fmt.Println()
	WriteTable(os.Stdout, results)
}

func runOnce(t *testing.T, env Env, seed uint64, p Profile) *Result {
	dir, err := os.MkdirTemp("", "gokcl-chaos-")
	require.NoError(t, err)
	keep := os.Getenv("GOKCL_CHAOS_KEEP") == "1"
	t.Cleanup(func() { // after r.Close (cleanups run last first)
		if !t.Failed() && !keep {
			_ = os.RemoveAll(dir)
		}
	})
	env.Logf = t.Logf
	ctx := testenv.Context(t, p.Chaos+p.Drain+3*time.Minute)
	r, err := NewRun(ctx, env, seed, p, dir)
	t.Cleanup(r.Close)
	require.NoError(t, err, "set up the run; replay: make chaos RUNS=1 SEED=%d PROFILE=%s", seed, p.Name)
	res := r.Execute(ctx)
	fmt.Println(res.Summary())
	if res.Failed() {
		t.Errorf("%s\n%s", res.Summary(), res.Details())
	}
	return res
}

// buildWorker builds examples/worker once for every run.
func buildWorker(t *testing.T, race bool) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	// examples/ is a module of its own (its worker serves Prometheus
	// metrics, which the library does not depend on).
	cmd := exec.Command("go", append(args, "./worker")...)
	cmd.Dir = filepath.Join("..", "..", "examples")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Run(), "build examples/worker")
	return bin
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, name)
	return n
}
