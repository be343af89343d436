package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

func resetCommand() *command {
	return &command{
		name: "reset",
		synopsis: "reset -app NAME -shard ID|-all -to trim-horizon|latest|timestamp=RFC3339|sequence=N[/SUB]\n" +
			"      [-stream NAME] [-force] [-dry-run] [-watch D] [-o table|json]",
		summary: "move checkpoints, safely",
		about: `Moves the checkpoint of one shard (-shard) or of every unfinished shard (-all):

  trim-horizon         process the shard again from its oldest record
  latest               skip to the newest: the next worker starts at the tip
                       when it takes the lease (records written in between are
                       skipped)
  timestamp=RFC3339    resume at the first record that arrived at or after the
                       time, a past one: the checkpoint becomes the last
                       record before it (needs -stream)
  sequence=N[/SUB]     record N (user record SUB of a KPL aggregate) counts as
                       processed: resume after it (needs -stream; -shard only)

Refuses, and writes nothing, when a live worker holds one of the leases (its
counter moves while watched, -watch), unless -force. Every write is
conditional on the owner and counter read, and leaves the lease unowned: a
worker still holding it loses it at its next renewal (within a third of the
failover time) instead of overwriting the reset with its own checkpoint, and
the next worker to take it starts from the new checkpoint.

A finished shard (SHARD_END) is skipped by -all, and refused by -shard unless
-force: its children may already have been processed, so processing it again
would deliver its records after theirs. -dry-run prints the plan.

In a multi-stream lease table, -stream (or -stream-arn) is required, shard
ids being the same from stream to stream: the reset moves that stream's
leases only (those of the stream that exists now, when the table also
holds a former stream's of the same name).`,
		examples: `  gokcl reset -app billing -shard shardId-000000000003 -to trim-horizon -dry-run
  gokcl reset -app billing -stream orders -all -to timestamp=2026-11-30T03:00:00Z
  gokcl reset -app billing -stream orders -shard shardId-000000000001 -to sequence=49590338271490256608559692538361571095921575989136588898/3
  gokcl reset -app billing -shard shardId-000000000003 -to latest -force    # while a live worker holds it
`,
		streamOptional: true,
		flags: func(fs *flag.FlagSet, o *options) {
			tableFlags(fs, o)
			streamFlags(fs, o)
			fs.StringVar(&o.shard, "shard", "", "the shard `ID` whose checkpoint to move")
			fs.BoolVar(&o.all, "all", false, "move the checkpoints of every unfinished shard")
			fs.StringVar(&o.to, "to", "", "the new `position`: trim-horizon, latest, timestamp=RFC3339 or sequence=N[/SUB]")
			fs.BoolVar(&o.force, "force", false, "reset leases held by live workers, and (with -shard) a finished shard")
			fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and write nothing")
			awsFlags(fs, o, true, true)
			watchFlags(fs, o)
			outputFlag(fs, o)
		},
		run: runReset,
	}
}

type targetKind int

const (
	toTrimHorizon targetKind = iota
	toLatest
	toTimestamp
	toSequence
)

// resetTarget is the -to flag.
type resetTarget struct {
	kind targetKind
	at   time.Time           // toTimestamp
	pos  checkpoint.Position // toSequence
}

func parseTarget(s string) (resetTarget, error) {
	kind, value, hasValue := strings.Cut(s, "=")
	switch {
	case kind == "trim-horizon" && !hasValue:
		return resetTarget{kind: toTrimHorizon}, nil
	case kind == "latest" && !hasValue:
		return resetTarget{kind: toLatest}, nil
	}
	switch kind {
	case "timestamp":
		at, err := time.Parse(time.RFC3339Nano, value)
		if err != nil {
			return resetTarget{}, fmt.Errorf("-to %s: want an RFC 3339 time such as 2026-11-30T03:00:00Z", s)
		}
		return resetTarget{kind: toTimestamp, at: at}, nil
	case "sequence":
		pos, err := checkpoint.Parse(value)
		if err != nil || pos.IsSentinel() {
			return resetTarget{}, fmt.Errorf("-to %s: want sequence=N or sequence=N/SUB with a decimal sequence number N", s)
		}
		return resetTarget{kind: toSequence, pos: pos}, nil
	case "":
		return resetTarget{}, errors.New("-to is required: trim-horizon, latest, timestamp=RFC3339 or sequence=N[/SUB]")
	}
	return resetTarget{}, fmt.Errorf("-to %s: want trim-horizon, latest, timestamp=RFC3339 or sequence=N[/SUB]", s)
}

// position returns the checkpoint for the shard.
func (t resetTarget) position(ctx context.Context, k shardReader, s streamRef, shard string) (checkpoint.Position, error) {
	switch t.kind {
	case toLatest:
		return checkpoint.Latest, nil
	case toTimestamp:
		return positionAt(ctx, k, s, shard, t.at)
	case toSequence:
		return t.pos, checkSequence(ctx, k, s, shard, t.pos.SequenceNumber)
	}
	return checkpoint.TrimHorizon, nil
}

// Results of a planned change, for reset and evict.
const (
	resultWould   = "would do"
	resultDone    = "done"
	resultSkipped = "skipped"
	resultRefused = "refused"
	resultFailed  = "failed"
)

// resetItem is one lease's part of a reset.
type resetItem struct {
	// Stream is the stream identifier in a multi-stream table.
	Stream     string `json:"stream,omitempty"`
	Shard      string `json:"shard"`
	Owner      string `json:"owner,omitempty"`
	Counter    int64  `json:"counter"`
	State      string `json:"state"`
	From       string `json:"from"`
	To         string `json:"to,omitempty"`
	Result     string `json:"result"`
	Reason     string `json:"reason,omitempty"`
	NewCounter *int64 `json:"new_counter,omitempty"`

	key   string // the lease key
	lease lease.Lease
	pos   checkpoint.Position
}

func (it *resetItem) refuse(format string, args ...any) {
	it.Result, it.Reason = resultRefused, fmt.Sprintf(format, args...)
}

func (it *resetItem) pending() bool { return it.Result == "" }

// resetReport is what reset prints.
type resetReport struct {
	Table  string      `json:"table"`
	To     string      `json:"to"`
	DryRun bool        `json:"dry_run"`
	Force  bool        `json:"force"`
	Items  []resetItem `json:"leases"`
}

func runReset(ctx context.Context, e *env, o *options) error {
	target, err := checkResetFlags(o)
	if err != nil {
		return err
	}
	d, err := connectDeps(ctx, e, o)
	if err != nil {
		return err
	}
	return reset(ctx, e.stdout, d, o, target)
}

func reset(ctx context.Context, w io.Writer, d deps, o *options, target resetTarget) error {
	r := &resetReport{Table: o.table, To: o.to, DryRun: o.dryRun, Force: o.force}
	if err := planReset(ctx, r, d, o, target); err != nil {
		return err
	}
	if n := r.count(resultRefused); n > 0 {
		for i := range r.Items {
			if r.Items[i].pending() {
				r.Items[i].Result = resultUnwritten
			}
		}
		if err := r.write(w, o.output); err != nil {
			return err
		}
		return fmt.Errorf("refused %s; nothing written", plural(n, "lease", "leases"))
	}
	if !o.dryRun {
		applyReset(ctx, r, d.store, o.force)
	}
	if err := r.write(w, o.output); err != nil {
		return err
	}
	if n := r.count(resultFailed); n > 0 {
		return fmt.Errorf("%s not reset", plural(n, "lease", "leases"))
	}
	return nil
}

func checkResetFlags(o *options) (resetTarget, error) {
	if (o.shard == "") == !o.all {
		return resetTarget{}, usagef("name one shard with -shard, or every unfinished shard with -all")
	}
	target, err := parseTarget(o.to)
	if err != nil {
		return resetTarget{}, usagef("%v", err)
	}
	if target.kind == toSequence && o.all {
		return resetTarget{}, usagef("a sequence number belongs to one shard: use -shard, not -all")
	}
	if (target.kind == toSequence || target.kind == toTimestamp) && !o.hasStream() {
		return resetTarget{}, usagef("-to %s reads the stream: name it with -stream (or -stream-arn)", o.to)
	}
	// A checkpoint names a record written already: it cannot make workers
	// skip the records still to arrive before a time to come. (Looking back
	// from such a time, positionAt would also step back further than a
	// time.Duration holds for one centuries away.)
	if target.kind == toTimestamp && target.at.After(time.Now()) {
		return resetTarget{}, usagef("-to %s is in the future: a checkpoint cannot skip records not written yet (-to latest skips to the newest record)", o.to)
	}
	return target, nil
}

// planReset reads the table, picks the leases, resolves the new positions
// and, unless forced, watches the counters; every item ends pending (to be
// written) or with a result saying why not.
func planReset(ctx context.Context, r *resetReport, d deps, o *options, target resetTarget) error {
	leases, err := d.store.List(ctx)
	if err != nil {
		return explain(err, d.tableLabel)
	}
	leases, ref, err := resetStream(ctx, leases, d, o)
	if err != nil {
		return err
	}
	r.Items = selectResets(leases, o.shard, o.force)
	if len(r.Items) == 0 {
		if o.shard != "" {
			return fmt.Errorf("no lease for shard %s in %s", o.shard, d.tableLabel)
		}
		return fmt.Errorf("no lease in %s", d.tableLabel)
	}
	if err := resolvePositions(ctx, r.Items, d, ref, target); err != nil {
		return err
	}
	if o.force {
		return nil
	}
	return checkNotHeld(ctx, r.Items, d, o)
}

// resetStream returns the leases a reset may move and the stream to read
// positions from: every lease of a single-stream table, and the -stream
// named with it; in a multi-stream table, the leases of the stream -stream
// names, which must be named (shard ids repeat from stream to stream), and
// of the one that exists now if the table holds several of that name.
func resetStream(ctx context.Context, leases []lease.Lease, d deps, o *options) ([]lease.Lease, streamRef, error) {
	multi, err := tableMode(leases, d.tableLabel)
	if err != nil || !multi {
		return leases, o.streamRef(), err
	}
	if !o.hasStream() {
		return nil, streamRef{}, usagef("%s is a multi-stream lease table: name the stream with -stream (or -stream-arn)", d.tableLabel)
	}
	ids, err := selectStreams(streamIDs(leases), o)
	if err != nil {
		return nil, streamRef{}, err
	}
	if len(ids) == 0 {
		return nil, streamRef{}, fmt.Errorf("no lease of %s in %s", o.streamLabel(), d.tableLabel)
	}
	ts, err := currentStream(ctx, d, ids, d.tableLabel)
	if err != nil {
		return nil, streamRef{}, err
	}
	var out []lease.Lease
	for _, l := range leases {
		if leaseStream(l) == ts.id.String() {
			out = append(out, l)
		}
	}
	return out, ts.ref, nil
}

// selectResets returns the items of the leases to reset: the named shard,
// or every lease (finished ones skipped).
func selectResets(leases []lease.Lease, shard string, force bool) []resetItem {
	var items []resetItem
	for _, l := range leases {
		if shard != "" && leaseShard(l) != shard {
			continue
		}
		it := resetItem{Stream: leaseStream(l), Shard: leaseShard(l), Owner: l.Owner, Counter: l.Counter, From: l.Checkpoint.String(), key: l.Key, lease: l}
		it.State = leaseState(l, &observation{}, false)
		switch {
		case l.Malformed != nil:
			it.From = "?"
			it.refuse("the row cannot be read; repair it by hand: %v", l.Malformed)
		case l.Finished() && shard == "":
			it.Result, it.Reason = resultSkipped, "finished (SHARD_END); to move it, name it with -shard and -force"
		case l.Finished() && !force:
			it.refuse("the shard is finished (SHARD_END): its children %s may already have been processed, "+
				"and processing it again would deliver its records after theirs; -force to move it anyway", childList(l))
		}
		items = append(items, it)
	}
	return items
}

func childList(l lease.Lease) string {
	if len(l.ChildShardIDs) == 0 {
		return "(not recorded)"
	}
	return strings.Join(l.ChildShardIDs, ", ")
}

// resolvePositions works out each pending item's new checkpoint, eight
// shards at a time. A position the stream refuses refuses the item; any
// other failure (the stream missing, access denied) ends the command.
func resolvePositions(ctx context.Context, items []resetItem, d deps, ref streamRef, target resetTarget) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(lagParallelism)
	for i := range items {
		it := &items[i] // each goroutine writes its own item only
		if !it.pending() {
			continue
		}
		g.Go(func() error {
			pos, err := target.position(gctx, d.kinesis, ref, it.Shard)
			switch {
			case errors.Is(err, errNotInShard):
				it.refuse("%v", err)
			case err != nil:
				return explain(err, fmt.Sprintf("shard %s of %s", it.Shard, d.streamLabel))
			default:
				it.pos, it.To = pos, pos.String()
			}
			return nil
		})
	}
	return g.Wait()
}

// checkNotHeld watches the counters of the pending items (if any is owned)
// and refuses those a live worker holds: their counter or owner moved. It
// stops as soon as one moves, since the reset is refused then anyway.
func checkNotHeld(ctx context.Context, items []resetItem, d deps, o *options) error {
	owned := false
	for _, it := range items {
		owned = owned || it.pending() && it.Owner != ""
	}
	if !owned {
		return nil // an unowned lease taken meanwhile fails the conditional write
	}
	obs, err := watchTable(ctx, d.store, o.watch, func(obs *observation) bool {
		for _, it := range items {
			if it.pending() && obs.moved(it.key) {
				return true
			}
		}
		return false
	})
	if err != nil {
		return explain(err, d.tableLabel)
	}
	for i := range items {
		it := &items[i]
		if !it.pending() {
			continue
		}
		now, ok := obs.lease(it.key)
		switch {
		case !ok:
			it.refuse("the lease was deleted while watched")
		case obs.moved(it.key):
			it.State = stateHeld
			it.refuse("held by live worker %q (counter %d, then %d, within %s); -force to reset it anyway", now.Owner, it.Counter, now.Counter, formatMillis(millis(obs.watched())))
		case it.Owner != "" && o.watch == 0:
			it.refuse("owned by %q, and -watch 0 cannot tell whether it is alive; -force to reset it anyway", it.Owner)
		case it.Owner != "" && obs.watched() >= o.watch:
			it.State = stateExpired
		case it.Owner != "":
			// The watch ended early, when another lease moved: not judged,
			// and not written either, since that one is refused.
			it.State = stateOwned
		}
		it.lease = now
	}
	return nil
}

// applyReset writes the pending items. A write refused because the lease
// changed since read is retried on a fresh read when forced (a live holder
// renews it every few seconds), and fails the item otherwise.
func applyReset(ctx context.Context, r *resetReport, store adminStore, force bool) {
	for i := range r.Items {
		it := &r.Items[i]
		if !it.pending() {
			continue
		}
		for attempt := 1; ; attempt++ {
			res, err := store.ResetCheckpoint(ctx, it.lease, it.pos)
			if err == nil {
				it.Result, it.NewCounter = resultDone, ptr(res.Counter)
				break
			}
			if !errors.Is(err, lease.ErrConflict) || !force || attempt == 5 {
				it.Result, it.Reason = resultFailed, err.Error()
				break
			}
			if err := reread(ctx, store, it); err != nil {
				it.Result, it.Reason = resultFailed, err.Error()
				break
			}
		}
	}
}

// reread replaces the item's lease with the stored one, checking that it
// may still be reset.
func reread(ctx context.Context, store lease.Store, it *resetItem) error {
	leases, err := store.List(ctx)
	if err != nil {
		return err
	}
	for _, l := range leases {
		if l.Key != it.key {
			continue
		}
		if l.Finished() && !it.lease.Finished() {
			return errors.New("the shard reached its end (SHARD_END) meanwhile; not moved")
		}
		it.lease = l
		return nil
	}
	return errors.New("the lease was deleted meanwhile")
}

func (r *resetReport) count(result string) int {
	n := 0
	for _, it := range r.Items {
		if it.Result == result {
			n++
		}
	}
	return n
}

func (r *resetReport) write(w io.Writer, format string) error {
	if r.DryRun {
		for i := range r.Items {
			if r.Items[i].pending() {
				r.Items[i].Result = resultWould
			}
		}
	}
	if format == "json" {
		return writeJSON(w, r)
	}
	var rows [][]string
	var notes []string
	held, multi := false, false
	for _, it := range r.Items {
		multi = multi || it.Stream != ""
	}
	for _, it := range r.Items {
		result := it.Result
		if it.NewCounter != nil {
			result += " (counter " + strconv.FormatInt(*it.NewCounter, 10) + ")"
		}
		row := []string{it.Shard, it.Owner, strconv.FormatInt(it.Counter, 10), it.State, it.From, it.To, result}
		if multi {
			row = append([]string{it.Stream}, row...)
		}
		rows = append(rows, row)
		if it.Reason != "" {
			notes = append(notes, strings.TrimSpace(it.Stream+" "+it.Shard)+": "+it.Reason)
		}
		held = held || it.Owner != "" && (it.Result == resultDone || it.Result == resultWould)
	}
	fmt.Fprintf(w, "Reset in lease table %s to %s%s\n\n", r.Table, r.To, dryRunNote(r.DryRun))
	header := []string{"SHARD", "OWNER", "COUNTER", "STATE", "FROM", "TO", "RESULT"}
	if multi {
		header = append([]string{"STREAM"}, header...)
	}
	if err := writeTable(w, header, rows); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nNotes:\n  %s\n", strings.Join(notes, "\n  "))
	}
	if held {
		fmt.Fprint(w, "\nA reset lease is left unowned: a worker still holding it loses it at its next renewal,\n"+
			"and the next worker to take it starts from the new checkpoint.\n")
	}
	return nil
}
