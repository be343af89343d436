package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gokcl/kcl/lease"
)

func evictCommand() *command {
	return &command{
		name:     "evict",
		synopsis: "evict -app NAME -worker ID [-force] [-dry-run] [-watch D] [-o table|json]",
		summary:  "release a dead worker's leases at once",
		about: `Releases every lease the worker owns, so that the other workers take them at
their next taker scan instead of waiting for the leases to expire. For a
worker known to be dead: evict first watches the worker's lease counters
(-watch, as status does) and refuses, writing nothing, if any moves (the
worker is alive). When status or workers has just shown the worker expired,
or its host is known to be gone, -force releases at once, without the
watch. Each release is conditional on the owner and counter read; a live
worker whose lease is released loses it at its next renewal. A lease the
worker was handing over to another is released to that worker at once; a
lease another worker is handing over to it is left alone (skipped): its
holder still processes it, and evict can release it once the holder has
handed it over.`,
		examples: `  gokcl evict -app billing -worker ip-10-0-3-17-6f1c2a -dry-run
  gokcl evict -app billing -worker ip-10-0-3-17-6f1c2a
  gokcl evict -app billing -worker ip-10-0-3-17-6f1c2a -force    # status just showed it expired
`,
		flags: func(fs *flag.FlagSet, o *options) {
			tableFlags(fs, o)
			fs.StringVar(&o.worker, "worker", "", "the worker `ID` whose leases to release")
			fs.BoolVar(&o.force, "force", false, "release without watching whether the worker is alive")
			fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and write nothing")
			awsFlags(fs, o, false, true)
			watchFlags(fs, o)
			outputFlag(fs, o)
		},
		run: runEvict,
	}
}

// evictItem is one lease of the evicted worker.
type evictItem struct {
	// Stream is the stream identifier in a multi-stream table.
	Stream     string `json:"stream,omitempty"`
	Shard      string `json:"shard"`
	Counter    int64  `json:"counter"`
	Checkpoint string `json:"checkpoint"`
	Result     string `json:"result"`
	Reason     string `json:"reason,omitempty"`
	NewCounter *int64 `json:"new_counter,omitempty"`

	lease lease.Lease
}

// evictReport is what evict prints.
type evictReport struct {
	Table  string      `json:"table"`
	Worker string      `json:"worker"`
	DryRun bool        `json:"dry_run"`
	Items  []evictItem `json:"leases"`
}

func runEvict(ctx context.Context, e *env, o *options) error {
	if o.worker == "" {
		return usagef("name the worker to evict with -worker")
	}
	if !o.force && o.watch == 0 {
		return usagef("-watch 0 cannot tell whether worker %q is alive: watch, or -force", o.worker)
	}
	d, err := connectDeps(ctx, e, o)
	if err != nil {
		return err
	}
	return evict(ctx, e.stdout, d, o)
}

func evict(ctx context.Context, w io.Writer, d deps, o *options) error {
	window := o.watch
	if o.force {
		window = 0
	}
	// The worker's leases are those it holds: owned, or being handed over
	// by it to another worker (it is their CheckpointOwner). Releasing one
	// of the latter completes the hand-off: the new owner starts at once
	// from its last checkpoint.
	held := func(l lease.Lease) bool { return l.Holder() == o.worker }
	owned := func(obs *observation) bool {
		for _, l := range obs.leases {
			if held(l) && obs.moved(l.Key) {
				return true
			}
		}
		return false
	}
	obs, err := watchTable(ctx, d.store, window, owned)
	if err != nil {
		return explain(err, d.tableLabel)
	}
	r := &evictReport{Table: o.table, Worker: o.worker, DryRun: o.dryRun}
	var moved []string
	var skipped []evictItem
	for _, l := range obs.leases {
		if l.Owner == o.worker && !held(l) {
			// Another worker is handing this lease over to the evicted one:
			// a release would complete the hand-off to a dead worker. The
			// holder keeps processing; once it has released the lease to
			// this worker, evict again.
			skipped = append(skipped, evictItem{Stream: leaseStream(l), Shard: leaseShard(l), Counter: l.Counter, Checkpoint: checkpointText(l), Result: resultSkipped,
				Reason: fmt.Sprintf("%s is handing it over to this worker and still processes it; evict again once it has released it", l.CheckpointOwner)})
			continue
		}
		if !held(l) {
			continue
		}
		r.Items = append(r.Items, evictItem{Stream: leaseStream(l), Shard: leaseShard(l), Counter: l.Counter, Checkpoint: checkpointText(l), lease: l})
		if obs.moved(l.Key) {
			moved = append(moved, fmt.Sprintf("%s (counter %d, then %d)", l.Key, obs.first[l.Key].Counter, l.Counter))
		}
	}
	if len(r.Items) == 0 && len(skipped) == 0 {
		return fmt.Errorf("worker %q owns no lease in %s", o.worker, d.tableLabel)
	}
	if len(moved) > 0 {
		for i := range r.Items {
			r.Items[i].Result = resultRefused
		}
		_ = r.write(w, o.output)
		return fmt.Errorf("worker %q is alive: it renewed %s within %s; nothing written (evict only a dead worker, or -force)",
			o.worker, strings.Join(moved, ", "), formatMillis(millis(obs.watched())))
	}
	r.Items = append(r.Items, skipped...)
	if !o.dryRun {
		for i := range r.Items {
			if r.Items[i].Result != "" {
				continue
			}
			it := &r.Items[i]
			res, err := d.store.Release(ctx, it.lease)
			if err != nil {
				it.Result, it.Reason = resultFailed, err.Error()
				continue
			}
			it.Result, it.NewCounter = resultDone, ptr(res.Counter)
		}
	}
	if err := r.write(w, o.output); err != nil {
		return err
	}
	failed := 0
	for _, it := range r.Items {
		if it.Result == resultFailed {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%s not released (changed since read: the worker or another took or renewed it)", plural(failed, "lease", "leases"))
	}
	return nil
}

func checkpointText(l lease.Lease) string {
	if l.Malformed != nil {
		return "?"
	}
	return l.Checkpoint.String()
}

func (r *evictReport) write(w io.Writer, format string) error {
	for i := range r.Items {
		if r.Items[i].Result == "" {
			r.Items[i].Result = resultWould
		}
	}
	if format == "json" {
		return writeJSON(w, r)
	}
	fmt.Fprintf(w, "Evict worker %s from lease table %s%s\n\n", r.Worker, r.Table, dryRunNote(r.DryRun))
	var rows [][]string
	var notes []string
	multi := false
	for _, it := range r.Items {
		multi = multi || it.Stream != ""
	}
	for _, it := range r.Items {
		result := it.Result
		if it.NewCounter != nil {
			result += " (counter " + strconv.FormatInt(*it.NewCounter, 10) + ")"
		}
		row := []string{it.Shard, strconv.FormatInt(it.Counter, 10), it.Checkpoint, result}
		if multi {
			row = append([]string{it.Stream}, row...)
		}
		rows = append(rows, row)
		if it.Reason != "" {
			notes = append(notes, strings.TrimSpace(it.Stream+" "+it.Shard)+": "+it.Reason)
		}
	}
	header := []string{"SHARD", "COUNTER", "CHECKPOINT", "RESULT"}
	if multi {
		header = append([]string{"STREAM"}, header...)
	}
	if err := writeTable(w, header, rows); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nNotes:\n  %s\n", strings.Join(notes, "\n  "))
	}
	return nil
}
