package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gokcl/kcl/lease"
)

func statusCommand() *command {
	return &command{
		name:     "status",
		synopsis: "status -app NAME -stream NAME|-all-streams [-watch D] [-o table|json]",
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
be measured (a note says why), "-" for finished shards.

A multi-stream lease table (the Java KCL's multi-stream mode, or gokcl's
Config.Streams) holds the leases of many streams: -stream shows one of
them, -all-streams every one, with a STREAM column and a table of the
streams. A stream the table names but Kinesis no longer has (deleted, or
deleted and created again: another creation time, so other leases) is
shown as deleted or re-created: its leases are a former stream's.`,
		examples: `  gokcl status -app billing -stream orders
  gokcl status -app billing -stream orders -o json | jq '.leases[] | select(.state == "expired")'
  gokcl status -app billing -stream orders -failover 30s    # an application with FailoverTime 30s
  gokcl status -app tenants -all-streams                       # a multi-stream application
`,
		streamOptional: true,
		flags: func(fs *flag.FlagSet, o *options) {
			tableFlags(fs, o)
			streamFlags(fs, o)
			fs.BoolVar(&o.allStreams, "all-streams", false, "every stream of a multi-stream lease table")
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
	if !o.hasStream() && !o.allStreams {
		return usagef("name the stream with -stream (or -stream-arn; -all-streams shows every stream of a multi-stream table)")
	}
	d, err := connectDeps(ctx, e, o)
	if err != nil {
		return err
	}
	return status(ctx, e.stdout, d, o)
}

func status(ctx context.Context, w io.Writer, d deps, o *options) error {
	obs, err := watchTable(ctx, d.store, o.watch, ownedLeasesMoved)
	if err != nil {
		return explain(err, d.tableLabel)
	}
	multi, err := tableMode(obs.leases, d.tableLabel)
	if err != nil {
		return err
	}
	if multi {
		return multiStatus(ctx, w, d, o, obs)
	}
	if !o.hasStream() {
		return fmt.Errorf("%s is a single-stream lease table: name its stream with -stream (or -stream-arn)", d.tableLabel)
	}
	shards, err := listShards(ctx, d.kinesis, o.streamRef())
	if err != nil {
		return explain(err, d.streamLabel)
	}
	g := statusGroup{leases: obs.leases, shards: shards, lags: map[string]*lag{}}
	measureGroupLags(ctx, d.kinesis, o.streamRef(), &g)
	r := buildStatus(o.table, o.streamLabel(), obs, o.watch > 0, []statusGroup{g})
	return r.write(w, o.output)
}

// multiStatus reports on a multi-stream table: the leases of the streams
// -stream names (all with -all-streams), each stream described, its shards
// listed and its lags measured when it still exists.
func multiStatus(ctx context.Context, w io.Writer, d deps, o *options, obs *observation) error {
	ids, err := selectStreams(streamIDs(obs.leases), o)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("%s is a multi-stream lease table with no lease of %s", d.tableLabel, o.streamLabel())
	}
	label := "all streams"
	if o.hasStream() {
		label = o.streamLabel()
	}
	var groups []statusGroup
	for _, id := range ids {
		ts := describeStream(ctx, d, id)
		g := statusGroup{stream: ts, multi: true, lags: map[string]*lag{}}
		for _, l := range obs.leases {
			if leaseStream(l) == id.String() {
				g.leases = append(g.leases, l)
			}
		}
		if ts.state == streamCurrent {
			g.shards = ts.shards
			measureGroupLags(ctx, d.kinesis, ts.ref, &g)
		}
		groups = append(groups, g)
	}
	r := buildStatus(o.table, label, obs, o.watch > 0, groups)
	return r.write(w, o.output)
}

// statusGroup is the leases of one stream and what Kinesis says of it: the
// whole table of a single-stream table, one stream of a multi-stream one.
type statusGroup struct {
	multi  bool
	stream tableStream // multi-stream only
	leases []lease.Lease
	shards []shardInfo     // the stream's listing: nil when not listed
	lags   map[string]*lag // by lease key
}

// measureGroupLags measures the lag of every unfinished lease whose shard
// the listing has.
func measureGroupLags(ctx context.Context, k shardReader, ref streamRef, g *statusGroup) {
	var jobs []lagJob
	for _, l := range g.leases {
		if _, inStream := findShard(g.shards, leaseShard(l)); inStream && l.Malformed == nil && !l.Finished() {
			g.lags[l.Key] = &lag{}
			jobs = append(jobs, lagJob{shard: leaseShard(l), cp: l.Checkpoint, out: g.lags[l.Key]})
		}
	}
	measureLags(ctx, k, ref, jobs)
}

// statusReport is what status prints.
type statusReport struct {
	Table     string        `json:"table"`
	Stream    string        `json:"stream"`
	WatchedMS int64         `json:"watched_ms"`
	Leases    []statusRow   `json:"leases"`
	Workers   []workerTotal `json:"workers"`
	// Streams are the streams of a multi-stream table shown.
	Streams []streamRow `json:"streams,omitempty"`
}

// statusRow is one shard.
type statusRow struct {
	// Stream is the stream identifier (account:name:creationEpoch) in a
	// multi-stream table; StreamName is its name.
	Stream     string   `json:"stream,omitempty"`
	StreamName string   `json:"stream_name,omitempty"`
	Shard      string   `json:"shard"`
	Parents    []string `json:"parents"`
	Owner      string   `json:"owner,omitempty"`      // the worker processing the shard
	HandingTo  string   `json:"handing_to,omitempty"` // the new owner of a hand-off under way
	Counter    *int64   `json:"counter,omitempty"`
	Checkpoint string   `json:"checkpoint,omitempty"`
	State      string   `json:"state"`
	LagMS      *int64   `json:"lag_ms"`
	LagNote    string   `json:"lag_note,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// streamRow is one stream of a multi-stream table.
type streamRow struct {
	Stream  string    `json:"stream"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	State   string    `json:"state"`
	Note    string    `json:"note,omitempty"`
	Leases  int       `json:"leases"`
}

// workerTotal sums up one worker's leases.
type workerTotal struct {
	Worker   string `json:"worker"`
	Leases   int    `json:"leases"`
	Expired  int    `json:"expired"`
	MaxLagMS *int64 `json:"max_lag_ms"`
}

func buildStatus(table, stream string, obs *observation, judged bool, groups []statusGroup) statusReport {
	r := statusReport{Table: table, Stream: stream, WatchedMS: millis(obs.watched()), Leases: []statusRow{}, Workers: []workerTotal{}}
	names := streamNames(groups)
	for _, g := range groups {
		r.Leases = append(r.Leases, groupRows(g, obs, judged, names)...)
		if g.multi {
			r.Streams = append(r.Streams, streamRow{Stream: g.stream.id.String(), Name: g.stream.id.Name, Created: g.stream.id.CreationTime().UTC(),
				State: g.stream.state, Note: g.stream.note, Leases: len(g.leases)})
		}
	}
	slices.SortFunc(r.Leases, func(a, b statusRow) int {
		return cmp.Or(strings.Compare(a.Stream, b.Stream), strings.Compare(a.Shard, b.Shard))
	})
	r.Workers = workerTotals(r.Leases)
	return r
}

// streamNames returns how the table output names each stream: by name,
// or by identifier where two streams of the same name (a stream deleted and
// created again) are shown.
func streamNames(groups []statusGroup) map[string]string {
	count := map[string]int{}
	for _, g := range groups {
		count[g.stream.id.Name]++
	}
	out := map[string]string{}
	for _, g := range groups {
		id := g.stream.id
		out[id.String()] = id.Name
		if count[id.Name] > 1 {
			out[id.String()] = id.String()
		}
	}
	return out
}

// groupRows returns the rows of one stream: its leases, then its listed
// shards without a lease.
func groupRows(g statusGroup, obs *observation, judged bool, names map[string]string) []statusRow {
	var rows []statusRow
	stream := ""
	if g.multi {
		stream = g.stream.id.String()
	}
	leased := map[string]bool{}
	for _, l := range g.leases {
		shard := leaseShard(l)
		leased[shard] = true
		row := statusRow{Stream: stream, StreamName: names[stream], Shard: shard, Parents: nonNil(l.ParentShardIDs), Owner: l.Holder(), State: leaseState(l, obs, judged)}
		if l.HandOffPending() {
			row.HandingTo = l.Owner
		}
		if l.Malformed != nil {
			row.Error = l.Malformed.Error()
			rows = append(rows, row)
			continue
		}
		row.Counter, row.Checkpoint = ptr(l.Counter), l.Checkpoint.String()
		switch lg := g.lags[l.Key]; {
		case l.Finished():
		case lg == nil && g.multi && g.stream.state != streamCurrent:
			row.LagNote = g.stream.note
		case lg == nil:
			row.LagNote = "the shard is not in the stream"
		case lg.ok:
			row.LagMS = ptr(lg.millis)
		default:
			row.LagNote = lg.why
		}
		rows = append(rows, row)
	}
	for _, s := range g.shards {
		if !leased[s.id] {
			rows = append(rows, statusRow{Stream: stream, StreamName: names[stream], Shard: s.id, Parents: nonNil(s.parents), State: stateNoLease})
		}
	}
	return rows
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
		owner := l.Owner
		if l.HandingTo != "" {
			owner += "→" + l.HandingTo
		}
		row := []string{l.Shard, strings.Join(l.Parents, ","), owner, counter, checkpointText, l.State, lagText}
		if r.Streams != nil {
			row = append([]string{l.StreamName}, row...)
		}
		rows = append(rows, row)
	}
	header := []string{"SHARD", "PARENTS", "OWNER", "COUNTER", "CHECKPOINT", "STATE", "LAG"}
	if r.Streams != nil {
		header = append([]string{"STREAM"}, header...)
	}
	if err := writeTable(w, header, rows); err != nil {
		return err
	}
	if err := r.writeStreams(w); err != nil {
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
		case l.LagNote != "" && r.Streams != nil:
			notes = append(notes, fmt.Sprintf("%s %s: lag not measured: %s", l.StreamName, l.Shard, l.LagNote))
		case l.LagNote != "":
			notes = append(notes, fmt.Sprintf("%s: lag not measured: %s", l.Shard, l.LagNote))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nNotes:\n  %s\n", strings.Join(notes, "\n  "))
	}
	return nil
}

// writeStreams writes the streams of a multi-stream table: identifier,
// state, leases.
func (r statusReport) writeStreams(w io.Writer) error {
	if len(r.Streams) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	var rows [][]string
	for _, s := range r.Streams {
		rows = append(rows, []string{s.Stream, s.Created.Format(time.RFC3339), s.State, strconv.Itoa(s.Leases)})
	}
	return writeTable(w, []string{"STREAM ID", "CREATED", "STREAM STATE", "LEASES"}, rows)
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
