package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

func workersCommand() *command {
	return &command{
		name:     "workers",
		synopsis: "workers -app NAME [-watch D] [-o table|json]",
		summary:  "the workers holding leases, and which of them are alive",
		about: `Lists the workers that own leases: how many (unfinished) leases each holds,
how many of them were seen renewed while the counters were watched, and
when a renewal was last seen. A worker none of whose leases moved during the
watch is expired: dead, or cut off from the table. Workers holding no lease
do not appear in the table, so they are not listed.`,
		examples: `  gokcl workers -app billing
  gokcl workers -app billing -failover 30s -o json
`,
		flags: func(fs *flag.FlagSet, o *options) {
			tableFlags(fs, o)
			awsFlags(fs, o, false, true)
			watchFlags(fs, o)
			outputFlag(fs, o)
		},
		run: runWorkers,
	}
}

func runWorkers(ctx context.Context, e *env, o *options) error {
	d, err := connectDeps(ctx, e, o)
	if err != nil {
		return err
	}
	obs, err := watchTable(ctx, d.store, o.watch, ownedLeasesMoved)
	if err != nil {
		return explain(err, d.tableLabel)
	}
	return buildWorkers(o.table, obs, o.watch > 0, time.Now()).write(e.stdout, o.output)
}

// workersReport is what workers prints.
type workersReport struct {
	Table     string      `json:"table"`
	WatchedMS int64       `json:"watched_ms"`
	At        time.Time   `json:"at"`
	Workers   []workerRow `json:"workers"`
}

// workerRow is one worker.
type workerRow struct {
	Worker          string     `json:"worker"`
	Leases          int        `json:"leases"`
	Renewed         int        `json:"renewed"`
	State           string     `json:"state"` // live, expired, or owned (not watched)
	LastRenewalSeen *time.Time `json:"last_renewal_seen"`
}

func buildWorkers(table string, obs *observation, judged bool, now time.Time) workersReport {
	byWorker := map[string]*workerRow{}
	for _, l := range obs.leases {
		if l.Owner == "" || l.Malformed != nil || l.Finished() {
			continue
		}
		w := byWorker[l.Owner]
		if w == nil {
			w = &workerRow{Worker: l.Owner}
			byWorker[l.Owner] = w
		}
		w.Leases++
		if at, ok := obs.changed[l.Key]; ok {
			w.Renewed++
			if w.LastRenewalSeen == nil || at.After(*w.LastRenewalSeen) {
				w.LastRenewalSeen = ptr(at)
			}
		}
	}
	r := workersReport{Table: table, WatchedMS: millis(obs.watched()), At: now, Workers: []workerRow{}}
	for _, w := range byWorker {
		switch {
		case w.Renewed > 0:
			w.State = "live"
		case judged:
			w.State = stateExpired
		default:
			w.State = stateOwned
		}
		r.Workers = append(r.Workers, *w)
	}
	slices.SortFunc(r.Workers, func(a, b workerRow) int { return strings.Compare(a.Worker, b.Worker) })
	return r
}

func (r workersReport) write(w io.Writer, format string) error {
	if format == "json" {
		return writeJSON(w, r)
	}
	if len(r.Workers) == 0 {
		_, err := fmt.Fprintf(w, "No worker holds a lease in table %s.\n", r.Table)
		return err
	}
	var rows [][]string
	for _, wr := range r.Workers {
		seen := "none in " + formatMillis(r.WatchedMS)
		if wr.LastRenewalSeen != nil {
			seen = formatAge(r.At.Sub(*wr.LastRenewalSeen))
		}
		rows = append(rows, []string{wr.Worker, strconv.Itoa(wr.Leases), fmt.Sprintf("%d/%d", wr.Renewed, wr.Leases), wr.State, seen})
	}
	if err := writeTable(w, []string{"WORKER", "LEASES", "RENEWED", "STATE", "LAST RENEWAL SEEN"}, rows); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s in table %s; counters watched for %s.\n", plural(len(r.Workers), "worker", "workers"), r.Table, formatMillis(r.WatchedMS))
	return err
}
