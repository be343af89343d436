package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/gokcl/kcl/lease"
)

func statusCommand() *command {
	return &command{
		name:     "status",
		synopsis: "status -app NAME -stream NAME [-watch D] [-o table|json]",
		summary:  "who holds which shard, its checkpoint, state and lag",
		about: `Lists every lease of the application, one row per shard: its parents,
owner, counter, checkpoint (sequence/sub-sequence, or a sentinel), state and
lag, then totals per worker. Shards of the stream without a lease are listed
too.

State: unowned; held (its counter moved while watched: a live worker renews
it); expired (owned, but its counter did not move: its worker is dead or cut
off); finished (SHARD_END); malformed (the row cannot be read: repair it).
Counters are watched for -watch, as workers judge expiry, and the watch ends
early once every owned lease has moved.

Lag is MillisBehindLatest of one GetRecords of limit 1 at the checkpoint:
how far the last processed record is behind the newest. "?" where it cannot
be measured (a note says why), "-" for finished shards.`,
		examples: `  gokcl status -app billing -stream orders
  gokcl status -app billing -stream orders -o json | jq '.leases[] | select(.state == "expired")'
  gokcl status -app billing -stream orders -failover 30s    # an application with FailoverTime 30s
`,
		flags: func(fs *flag.FlagSet, o *options) {
			tableFlags(fs, o)
			streamFlags(fs, o)
			awsFlags(fs, o, true, true)
			watchFlags(fs, o)
			outputFlag(fs, o)
		},
		run: runStatus,
	}
}

// Lease states.
const (
	stateNoLease   = "no lease"
	stateUnowned   = "unowned"
	stateHeld      = "held"
	stateExpired   = "expired"
	stateOwned     = "owned" // owned, not watched (-watch 0)
	stateFinished  = "finished"
	stateMalformed = "malformed"
)

// leaseState judges a lease from what the watch saw; judged is false when
// there was no watch.
func leaseState(l lease.Lease, obs *observation, judged bool) string {
	switch {
	case l.Malformed != nil:
		return stateMalformed
	case l.Finished():
		return stateFinished
	case l.Owner == "":
		return stateUnowned
	case obs.moved(l.Key):
		return stateHeld
	case !judged:
		return stateOwned
	}
	return stateExpired
}

// ownedLeasesMoved is the watch's early end: every owned, unfinished lease
// has moved, so nothing more can be learnt.
func ownedLeasesMoved(obs *observation) bool {
	for _, l := range obs.leases {
		if l.Owner != "" && l.Malformed == nil && !l.Finished() && !obs.moved(l.Key) {
			return false
		}
	}
	return true
}

func runStatus(ctx context.Context, e *env, o *options) error {
	d, err := connectDeps(ctx, e, o)
	if err != nil {
		return err
	}
	return status(ctx, e.stdout, d, o)
}

func status(ctx context.Context, w io.Writer, d deps, o *options) error {
	shards, err := listShards(ctx, d.kinesis, o.streamRef())
	if err != nil {
		return explain(err, d.streamLabel)
	}
	obs, err := watchTable(ctx, d.store, o.watch, ownedLeasesMoved)
	if err != nil {
		return explain(err, d.tableLabel)
	}
	if err := checkSingleStream(obs.leases, d.tableLabel); err != nil {
		return err
	}
	lags := map[string]*lag{}
	var jobs []lagJob
	for _, l := range obs.leases {
		if _, inStream := findShard(shards, l.Key); inStream && l.Malformed == nil && !l.Finished() {
			lags[l.Key] = &lag{}
			jobs = append(jobs, lagJob{shard: l.Key, cp: l.Checkpoint, out: lags[l.Key]})
		}
	}
	measureLags(ctx, d.kinesis, o.streamRef(), jobs)
	r := buildStatus(o.table, o.streamLabel(), obs, o.watch > 0, shards, lags)
	return r.write(w, o.output)
}

// statusReport is what status prints.
type statusReport struct {
	Table     string        `json:"table"`
	Stream    string        `json:"stream"`
	WatchedMS int64         `json:"watched_ms"`
	Leases    []statusRow   `json:"leases"`
	Workers   []workerTotal `json:"workers"`
}

// statusRow is one shard.
type statusRow struct {
	Shard      string   `json:"shard"`
	Parents    []string `json:"parents"`
	Owner      string   `json:"owner,omitempty"`
	Counter    *int64   `json:"counter,omitempty"`
	Checkpoint string   `json:"checkpoint,omitempty"`
	State      string   `json:"state"`
	LagMS      *int64   `json:"lag_ms"`
	LagNote    string   `json:"lag_note,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// workerTotal sums up one worker's leases.
type workerTotal struct {
	Worker   string `json:"worker"`
	Leases   int    `json:"leases"`
	Expired  int    `json:"expired"`
	MaxLagMS *int64 `json:"max_lag_ms"`
}

func buildStatus(table, stream string, obs *observation, judged bool, shards []shardInfo, lags map[string]*lag) statusReport {
	r := statusReport{Table: table, Stream: stream, WatchedMS: millis(obs.watched()), Leases: []statusRow{}, Workers: []workerTotal{}}
	leased := map[string]bool{}
	for _, l := range obs.leases {
		leased[l.Key] = true
		row := statusRow{Shard: l.Key, Parents: nonNil(l.ParentShardIDs), Owner: l.Owner, State: leaseState(l, obs, judged)}
		if l.Malformed != nil {
			row.Error = l.Malformed.Error()
			r.Leases = append(r.Leases, row)
			continue
		}
		row.Counter, row.Checkpoint = ptr(l.Counter), l.Checkpoint.String()
		switch lg := lags[l.Key]; {
		case l.Finished():
		case lg == nil:
			row.LagNote = "the shard is not in the stream"
		case lg.ok:
			row.LagMS = ptr(lg.millis)
		default:
			row.LagNote = lg.why
		}
		r.Leases = append(r.Leases, row)
	}
	for _, s := range shards {
		if !leased[s.id] {
			r.Leases = append(r.Leases, statusRow{Shard: s.id, Parents: nonNil(s.parents), State: stateNoLease})
		}
	}
	slices.SortFunc(r.Leases, func(a, b statusRow) int { return strings.Compare(a.Shard, b.Shard) })
	r.Workers = workerTotals(r.Leases)
	return r
}

func workerTotals(rows []statusRow) []workerTotal {
	byWorker := map[string]*workerTotal{}
	for _, row := range rows {
		if row.Owner == "" || (row.State != stateHeld && row.State != stateExpired && row.State != stateOwned) {
			continue
		}
		w := byWorker[row.Owner]
		if w == nil {
			w = &workerTotal{Worker: row.Owner}
			byWorker[row.Owner] = w
		}
		w.Leases++
		if row.State == stateExpired {
			w.Expired++
		}
		if row.LagMS != nil && (w.MaxLagMS == nil || *row.LagMS > *w.MaxLagMS) {
			w.MaxLagMS = ptr(*row.LagMS)
		}
	}
	out := []workerTotal{}
	for _, w := range byWorker {
		out = append(out, *w)
	}
	slices.SortFunc(out, func(a, b workerTotal) int { return strings.Compare(a.Worker, b.Worker) })
	return out
}

func (r statusReport) write(w io.Writer, format string) error {
	if format == "json" {
		return writeJSON(w, r)
	}
	fmt.Fprintf(w, "Lease table %s, %s\n\n", r.Table, r.Stream)
	var rows [][]string
	counts := map[string]int{}
	for _, l := range r.Leases {
		counts[l.State]++
		counter, lagText := "", "?"
		if l.Counter != nil {
			counter = strconv.FormatInt(*l.Counter, 10)
		}
		switch {
		case l.State == stateFinished || l.State == stateNoLease:
			lagText = "-"
		case l.LagMS != nil:
			lagText = formatMillis(*l.LagMS)
		}
		checkpointText := l.Checkpoint
		if l.State == stateMalformed {
			checkpointText = "?"
		}
		rows = append(rows, []string{l.Shard, strings.Join(l.Parents, ","), l.Owner, counter, checkpointText, l.State, lagText})
	}
	if err := writeTable(w, []string{"SHARD", "PARENTS", "OWNER", "COUNTER", "CHECKPOINT", "STATE", "LAG"}, rows); err != nil {
		return err
	}
	if len(r.Workers) > 0 {
		fmt.Fprintln(w)
		rows = rows[:0]
		for _, t := range r.Workers {
			maxLag := "?"
			if t.MaxLagMS != nil {
				maxLag = formatMillis(*t.MaxLagMS)
			}
			rows = append(rows, []string{t.Worker, strconv.Itoa(t.Leases), strconv.Itoa(t.Expired), maxLag})
		}
		if err := writeTable(w, []string{"WORKER", "LEASES", "EXPIRED", "MAX LAG"}, rows); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\n%s\n", r.summary(counts))
	var notes []string
	for _, l := range r.Leases {
		switch {
		case l.Error != "":
			notes = append(notes, fmt.Sprintf("%s: the row cannot be read; repair it by hand: %s", l.Shard, l.Error))
		case l.LagNote != "":
			notes = append(notes, fmt.Sprintf("%s: lag not measured: %s", l.Shard, l.LagNote))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nNotes:\n  %s\n", strings.Join(notes, "\n  "))
	}
	return nil
}

// summary is the line under the tables: counts by state, and the watch.
func (r statusReport) summary(counts map[string]int) string {
	leases := len(r.Leases) - counts[stateNoLease]
	var parts []string
	for _, s := range []string{stateHeld, stateExpired, stateOwned, stateUnowned, stateFinished, stateMalformed} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	line := plural(leases, "lease", "leases")
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	if n := counts[stateNoLease]; n > 0 {
		line += ", " + plural(n, "shard", "shards") + " without a lease"
	}
	return line + fmt.Sprintf("; counters watched for %s.", formatMillis(r.WatchedMS))
}

func ptr[T any](v T) *T { return &v }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
