package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func pos(s string) checkpoint.Position {
	p, err := checkpoint.Parse(s)
	if err != nil {
		panic(err)
	}
	return p
}

// validHistory is a run with nothing wrong: shard-0 holds k:0..k:2 (the
// first two in one aggregate), shard-1 holds j:0; worker w1 takes both
// leases, processes everything, checkpoints after processing and finishes
// shard-0.
func validHistory() History {
	return History{
		Produced: []Record{
			{Key: "k", N: 0, Shard: "shard-0", Pos: pos("100")},
			{Key: "k", N: 1, Shard: "shard-0", Pos: pos("100/1")},
			{Key: "k", N: 2, Shard: "shard-0", Pos: pos("200")},
			{Key: "j", N: 0, Shard: "shard-1", Pos: pos("150")},
		},
		Writes: []LeaseWrite{
			{Op: OpCreate, Via: "w1", At: at(0), Key: "shard-0", Counter: 0, Checkpoint: checkpoint.TrimHorizon},
			{Op: OpCreate, Via: "w1", At: at(0), Key: "shard-1", Counter: 0, Checkpoint: checkpoint.TrimHorizon},
			{Op: OpUpdate, Via: "w1", At: at(10), Key: "shard-0", Owner: "w1", Counter: 1, Checkpoint: checkpoint.TrimHorizon},
			{Op: OpUpdate, Via: "w1", At: at(10), Key: "shard-1", Owner: "w1", Counter: 1, Checkpoint: checkpoint.TrimHorizon},
			{Op: OpUpdate, Via: "w1", At: at(30), Key: "shard-0", Owner: "w1", Counter: 2, Checkpoint: pos("100/1")},
			{Op: OpUpdate, Via: "w1", At: at(50), Key: "shard-0", Owner: "w1", Counter: 3, Checkpoint: checkpoint.ShardEnd},
			{Op: OpUpdate, Via: "w1", At: at(60), Key: "shard-1", Owner: "w1", Counter: 2, Checkpoint: pos("150")},
		},
		Deliveries: []Delivery{
			{Worker: "w1", Line: 0, At: at(20), Shard: "shard-0", Pos: pos("100"), Key: "k", N: 0},
			{Worker: "w1", Line: 1, At: at(20), Shard: "shard-0", Pos: pos("100/1"), Key: "k", N: 1},
			{Worker: "w1", Line: 2, At: at(40), Shard: "shard-0", Pos: pos("200"), Key: "k", N: 2},
			{Worker: "w1", Line: 3, At: at(45), Shard: "shard-1", Pos: pos("150"), Key: "j", N: 0},
		},
		Final: map[string]FinalLease{
			"shard-0": {Owner: "w1", Counter: 3, Checkpoint: checkpoint.ShardEnd},
			"shard-1": {Owner: "w1", Counter: 2, Checkpoint: pos("150")},
		},
	}
}

var cfg = CheckConfig{StaleAfter: time.Second}

func TestCheckPassesAValidHistory(t *testing.T) {
	r := Check(validHistory(), cfg)
	require.False(t, r.Failed(), r.String())
	require.Equal(t, 4, r.Produced)
	require.Equal(t, 4, r.Unique)
	require.Zero(t, r.Duplicates)
	require.Zero(t, r.Gaps)
}

// Each case breaks one property of the valid history; the checker must
// report exactly that property.
func TestCheckFindsEachViolation(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(*History)
		want    func(*Report) *Findings
		n       int
		text    string
	}{{
		name:    "never delivered, passed by a checkpoint",
		breakIt: func(h *History) { h.Deliveries = h.Deliveries[1:] },
		want:    func(r *Report) *Findings { return &r.Lost },
		n:       1, text: "k:0 (shard-0 at 100): never delivered, and passed by update shard-0 via w1 at 03:04:05.030: owner \"w1\" counter 2 checkpoint 100/1",
	}, {
		name: "checkpoint written before the record was delivered",
		breakIt: func(h *History) {
			h.Deliveries[2].At = at(55) // after SHARD_END was written at 50
		},
		want: func(r *Report) *Findings { return &r.Lost },
		n:    1, text: "k:2 (shard-0 at 200): checkpoint passed it before its first delivery",
	}, {
		name: "never delivered, no checkpoint past it",
		breakIt: func(h *History) {
			h.Deliveries = h.Deliveries[:3] // j:0 never delivered
			h.Writes = h.Writes[:6]         // nor checkpointed
			h.Final["shard-1"] = FinalLease{Owner: "w1", Counter: 1, Checkpoint: checkpoint.TrimHorizon}
		},
		want: func(r *Report) *Findings { return &r.Unprocessed },
		n:    1, text: "j:0 (shard-1 at 150)",
	}, {
		name: "a key's records first received out of order",
		breakIt: func(h *History) {
			h.Deliveries[0].At, h.Deliveries[1].At = at(21), at(20)
		},
		want: func(r *Report) *Findings { return &r.OutOfOrder },
		n:    1, text: "k:0 by w1#0 in shard-0",
	}, {
		name: "out of order across workers",
		breakIt: func(h *History) {
			// w2 took shard-0 first and delivered k:2 before w1 stole it
			// and delivered k:0 and k:1.
			h.Deliveries[2] = Delivery{Worker: "w2", At: at(19), Shard: "shard-0", Pos: pos("200"), Key: "k", N: 2}
			h.Writes = append(h.Writes, LeaseWrite{Op: OpUpdate, Via: "w2", At: at(5), Key: "shard-0", Owner: "w2", Counter: 1, Checkpoint: checkpoint.TrimHorizon})
			h.Writes[2].Counter, h.Writes[4].Counter, h.Writes[5].Counter = 2, 3, 4
			h.Final["shard-0"] = FinalLease{Owner: "w1", Counter: 4, Checkpoint: checkpoint.ShardEnd}
		},
		want: func(r *Report) *Findings { return &r.OutOfOrder },
		n:    2, // k:0 and k:1 both after k:2
	}, {
		name: "checkpoint moved back",
		breakIt: func(h *History) {
			h.Writes = append(h.Writes, LeaseWrite{Op: OpUpdate, Via: "w1", At: at(70), Key: "shard-1", Owner: "w1", Counter: 3, Checkpoint: pos("149/5")})
			h.Final["shard-1"] = FinalLease{Owner: "w1", Counter: 3, Checkpoint: pos("149/5")}
		},
		want: func(r *Report) *Findings { return &r.Backwards },
		n:    1, text: "checkpoint 149/5 after update shard-1",
	}, {
		name: "sub-sequence number moved back",
		breakIt: func(h *History) {
			h.Writes[4].Checkpoint = pos("100/1")
			h.Writes = append(h.Writes, LeaseWrite{Op: OpUpdate, Via: "w1", At: at(35), Key: "shard-0", Owner: "w1", Counter: 2, Checkpoint: pos("100")})
			h.Writes[5].Counter, h.Writes[7].Counter = 4, 3
			h.Final["shard-0"] = FinalLease{Owner: "w1", Counter: 4, Checkpoint: checkpoint.ShardEnd}
		},
		want: func(r *Report) *Findings { return &r.Backwards },
		n:    1,
	}, {
		name: "a sentinel after a sequence number",
		breakIt: func(h *History) {
			h.Writes = append(h.Writes, LeaseWrite{Op: OpUpdate, Via: "w1", At: at(70), Key: "shard-1", Owner: "w1", Counter: 3, Checkpoint: checkpoint.TrimHorizon})
			h.Final["shard-1"] = FinalLease{Owner: "w1", Counter: 3, Checkpoint: checkpoint.TrimHorizon}
		},
		want: func(r *Report) *Findings { return &r.Backwards },
		n:    1,
	}, {
		name: "a sequence number after SHARD_END",
		breakIt: func(h *History) {
			h.Writes = append(h.Writes, LeaseWrite{Op: OpUpdate, Via: "w1", At: at(70), Key: "shard-0", Owner: "w1", Counter: 4, Checkpoint: pos("200")})
			h.Final["shard-0"] = FinalLease{Owner: "w1", Counter: 4, Checkpoint: pos("200")}
		},
		want: func(r *Report) *Findings { return &r.Backwards },
		n:    1,
	}, {
		name: "two owners wrote the same counter",
		breakIt: func(h *History) {
			h.Writes = append(h.Writes, LeaseWrite{Op: OpUpdate, Via: "w2", At: at(31), Key: "shard-0", Owner: "w2", Counter: 2, Checkpoint: pos("100/1")})
		},
		want: func(r *Report) *Findings { return &r.SameCounter },
		n:    1, text: `owner "w2" counter 2`,
	}, {
		name: "delivery long after the worker's last write of the lease",
		breakIt: func(h *History) {
			h.Deliveries[3].At = at(10 + 1001) // its take of shard-1 was at 10
			h.Writes[6].At = at(1100)
		},
		want: func(r *Report) *Findings { return &r.Stale },
		n:    1, text: "j:0 by w1#0 in shard-1",
	}, {
		name: "delivery by a worker that never held the lease",
		breakIt: func(h *History) {
			h.Deliveries = append(h.Deliveries, Delivery{Worker: "w3", At: at(46), Shard: "shard-1", Pos: pos("150"), Key: "j", N: 0})
		},
		want: func(r *Report) *Findings { return &r.Stale },
		n:    1, text: "it had written no lease of the shard before",
	}, {
		name: "delivery of a record never produced",
		breakIt: func(h *History) {
			h.Deliveries = append(h.Deliveries, Delivery{Worker: "w1", Line: 4, At: at(46), Shard: "shard-1", Pos: pos("160"), Key: "j", N: 1})
		},
		want: func(r *Report) *Findings { return &r.Phantoms },
		n:    1, text: "never produced",
	}, {
		name: "delivery at another position than produced",
		breakIt: func(h *History) {
			h.Deliveries = append(h.Deliveries, Delivery{Worker: "w1", Line: 4, At: at(46), Shard: "shard-1", Pos: pos("151"), Key: "j", N: 0})
		},
		want: func(r *Report) *Findings { return &r.Phantoms },
		n:    1, text: "produced to shard-1 at 150",
	}, {
		name: "final table not explained by the writes seen",
		breakIt: func(h *History) {
			h.Final["shard-1"] = FinalLease{Owner: "w1", Counter: 3, Checkpoint: pos("150")}
		},
		want: func(r *Report) *Findings { return &r.LogErrors },
		n:    1, text: "lease shard-1: final table has owner \"w1\" checkpoint owner \"\" counter 3",
	}, {
		name: "a lease in the final table never written",
		breakIt: func(h *History) {
			h.Final["shard-2"] = FinalLease{Counter: 0, Checkpoint: checkpoint.TrimHorizon}
		},
		want: func(r *Report) *Findings { return &r.LogErrors },
		n:    1, text: "shard-2 in the final table",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := validHistory()
			c.breakIt(&h)
			r := Check(h, cfg)
			require.True(t, r.Failed())
			got := c.want(r)
			require.Equal(t, c.n, got.N, r.String())
			if c.text != "" {
				require.Contains(t, strings.Join(got.Examples, "\n"), c.text)
			}
			total := 0
			for _, p := range r.properties() {
				total += p.f.N
			}
			require.Equal(t, c.n, total, "only the broken property is reported:\n%s", r)
		})
	}
}

// A final checkpoint behind its shard's last record is reported, and is not
// a failure.
func TestCheckReportsFinalCheckpointsBehind(t *testing.T) {
	h := validHistory()
	h.Writes[6].Checkpoint = checkpoint.TrimHorizon // shard-1 never checkpointed j:0
	h.Final["shard-1"] = FinalLease{Owner: "w1", Counter: 2, Checkpoint: checkpoint.TrimHorizon}
	r := Check(h, cfg)
	require.False(t, r.Failed(), r.String())
	require.Equal(t, 1, r.BehindAtEnd.N)
	require.Equal(t, []string{"lease shard-1: checkpoint TRIM_HORIZON, last record 150"}, r.BehindAtEnd.Examples)
	require.Zero(t, Check(validHistory(), cfg).BehindAtEnd.N)
}

// A graceful hand-off keeps the counter; the old holder, now checkpoint
// owner, goes on processing and checkpointing until it releases, and the
// new owner processes only once it has taken the lease.
func TestCheckFollowsAGracefulHandOff(t *testing.T) {
	h := validHistory()
	h.Writes = append(h.Writes,
		LeaseWrite{Op: OpUpdate, Via: "w2", At: at(62), KeepsCounter: true, Key: "shard-1", Owner: "w2", CheckpointOwner: "w1", Counter: 2, Checkpoint: pos("150")},
		LeaseWrite{Op: OpUpdate, Via: "w1", At: at(900), Key: "shard-1", Owner: "w2", CheckpointOwner: "w1", Counter: 3, Checkpoint: pos("150")},
		LeaseWrite{Op: OpUpdate, Via: "w1", At: at(950), Key: "shard-1", Owner: "w2", Counter: 4, Checkpoint: pos("150")}, // released to w2
		LeaseWrite{Op: OpUpdate, Via: "w2", At: at(960), Key: "shard-1", Owner: "w2", Counter: 5, Checkpoint: pos("150")}, // taken
	)
	h.Produced = append(h.Produced, Record{Key: "j", N: 1, Shard: "shard-1", Pos: pos("160")}, Record{Key: "j", N: 2, Shard: "shard-1", Pos: pos("170")})
	h.Deliveries = append(h.Deliveries,
		Delivery{Worker: "w1", Line: 4, At: at(1800), Shard: "shard-1", Pos: pos("160"), Key: "j", N: 1}, // w1 holds it still
		Delivery{Worker: "w2", At: at(1900), Shard: "shard-1", Pos: pos("170"), Key: "j", N: 2})
	h.Final["shard-1"] = FinalLease{Owner: "w2", Counter: 5, Checkpoint: pos("150")}
	r := Check(h, cfg)
	require.False(t, r.Failed(), r.String())

	// The same, but w2 processes before taking the lease: it did not hold it.
	h.Deliveries[len(h.Deliveries)-1].At = at(940)
	r = Check(h, cfg)
	require.Equal(t, 1, r.Stale.N, r.String())
	require.Contains(t, r.Stale.Examples[0], "j:2 by w2#0 in shard-1")

	// Two writes setting one counter are still two holders, hand-off or not.
	h = validHistory()
	h.Writes = append(h.Writes,
		LeaseWrite{Op: OpUpdate, Via: "w2", At: at(62), KeepsCounter: true, Key: "shard-1", Owner: "w2", CheckpointOwner: "w1", Counter: 2, Checkpoint: pos("150")},
		LeaseWrite{Op: OpUpdate, Via: "w1", At: at(70), Key: "shard-1", Owner: "w2", CheckpointOwner: "w1", Counter: 3, Checkpoint: pos("150")},
		LeaseWrite{Op: OpUpdate, Via: "w2", At: at(71), Key: "shard-1", Owner: "w2", Counter: 3, Checkpoint: pos("150")})
	h.Final["shard-1"] = FinalLease{Owner: "w2", Counter: 3, Checkpoint: pos("150")}
	r = Check(h, cfg)
	require.Equal(t, 1, r.SameCounter.N, r.String())
}

// Duplicates are counted, not failures; a lease deleted and created again
// starts a new history.
func TestCheckAllowsDuplicatesAndRecreatedLeases(t *testing.T) {
	h := validHistory()
	h.Deliveries = append(h.Deliveries,
		Delivery{Worker: "w1", Line: 9, At: at(25), Shard: "shard-0", Pos: pos("100"), Key: "k", N: 0},
		Delivery{Worker: "w1", Incarnation: 1, At: at(26), Shard: "shard-0", Pos: pos("100/1"), Key: "k", N: 1})
	h.Writes = append(h.Writes,
		LeaseWrite{Op: OpDelete, Via: "w1", At: at(80), Key: "shard-0"},
		LeaseWrite{Op: OpCreate, Via: "w2", At: at(90), Key: "shard-0", Counter: 0, Checkpoint: checkpoint.TrimHorizon})
	h.Writes[5].Counter = 5 // counters 3 and 4 not seen
	h.Final["shard-0"] = FinalLease{Counter: 0, Checkpoint: checkpoint.TrimHorizon}
	r := Check(h, cfg)
	require.False(t, r.Failed(), r.String())
	require.Equal(t, 2, r.Duplicates)
	require.Equal(t, 4, r.Unique)
	require.Equal(t, 1, r.Gaps)
}

// The tail reads only complete lines, each once, as the file grows.
func TestTailReadsCompleteLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w2-3.out")
	tl := &tail{path: path, worker: "w2", incarnation: 3}
	ds, err := tl.read()
	require.NoError(t, err, "no file yet")
	require.Empty(t, ds)

	appendTo := func(s string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		require.NoError(t, err)
		_, err = f.WriteString(s)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	appendTo("1767322245000000000 shard-0 100/0 k k:0\n" +
		"1767322245000000000 shard-0 100/1 k k:1\n" +
		"1767322246000000000 shard-1 200/0 j-1 j-1:17\n" +
		"1767322247000000000 shard-1 300/0 j-1 j-") // being written
	ds, err = tl.read()
	require.NoError(t, err)
	require.Len(t, ds, 3)
	require.Equal(t, Delivery{Worker: "w2", Incarnation: 3, Line: 2, At: time.Unix(0, 1767322246000000000),
		Shard: "shard-1", Pos: pos("200"), Key: "j-1", N: 17}, ds[2])
	require.Equal(t, pos("100/1"), ds[1].Pos)

	appendTo("1:18\n")
	ds, err = tl.read()
	require.NoError(t, err)
	require.Equal(t, []Delivery{{Worker: "w2", Incarnation: 3, Line: 3, At: time.Unix(0, 1767322247000000000),
		Shard: "shard-1", Pos: pos("300"), Key: "j-1", N: 18}}, ds)
	ds, err = tl.read()
	require.NoError(t, err)
	require.Empty(t, ds, "nothing new")
}

func TestParseDeliveryRefusesMalformedLines(t *testing.T) {
	for _, bad := range []string{
		"x shard-0 100/0 k k:0",
		"1 shard-0 100/x k k:0",
		"1 shard-0 100/0 k j:0",
		"1 shard-0 100/0 k k:-1",
		"1 shard-0 100/0 k",
	} {
		_, err := parseDelivery(bad)
		require.Error(t, err, bad)
	}
}
