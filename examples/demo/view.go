package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/consumer"
)

// view draws the live table: on a terminal it redraws in place twice a
// second; otherwise it prints a short status line every five seconds.
type view struct {
	e     *env
	out   io.Writer
	tty   bool
	start time.Time

	mu     sync.Mutex
	events []string
}

func newView(e *env) *view {
	return &view{e: e, out: os.Stdout, tty: isTerminal(os.Stdout), start: time.Now()}
}

func (v *view) event(s string) {
	v.mu.Lock()
	v.events = append(v.events, fmt.Sprintf("%5.1fs  %s", time.Since(v.start).Seconds(), s))
	v.mu.Unlock()
	if !v.tty {
		fmt.Fprintf(v.out, "%5.1fs  %s\n", time.Since(v.start).Seconds(), s)
	}
}

func (v *view) run(ctx context.Context) {
	every := 500 * time.Millisecond
	if !v.tty {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			v.render(ctx, false)
		}
	}
}

// render draws the view once; final forces the full table even when the
// output is not a terminal.
func (v *view) render(ctx context.Context, final bool) {
	s := v.e.tracker.summary()
	if !v.tty && !final {
		fmt.Fprintf(v.out, "%5.1fs  produced %d, processed %d, duplicates %d\n",
			time.Since(v.start).Seconds(), s.produced, s.processed, s.duplicates)
		return
	}
	var b strings.Builder
	if v.tty {
		b.WriteString("\033[H\033[2J")
	}
	mode := "polling"
	if v.e.o.fanOut {
		mode = "enhanced fan-out"
	}
	fmt.Fprintf(&b, "gokcl demo — stream %s — %s — %.0fs\n", v.e.stream, mode, time.Since(v.start).Seconds())
	fmt.Fprintf(&b, "produced %d  processed %d  duplicates %d  out of order %d\n",
		s.produced, s.processed, s.duplicates, s.outOfOrder)
	fmt.Fprintf(&b, "metrics: %s/metrics  status: %s/status\n\n", v.e.metrics.url, v.e.metrics.url)
	v.table(ctx, &b)
	v.mu.Lock()
	b.WriteString("\nevents:\n")
	for _, ev := range v.events {
		b.WriteString("  " + ev + "\n")
	}
	v.mu.Unlock()
	fmt.Fprint(v.out, b.String())
}

// table lists the shards each worker holds, from the workers' Status, and
// counts the lease table's leases (finished ones, and those nobody holds).
func (v *view) table(ctx context.Context, b *strings.Builder) {
	type row struct {
		worker string
		s      consumer.ShardStatus
	}
	var rows []row
	for _, st := range v.e.statuses() {
		for _, s := range st.Shards {
			rows = append(rows, row{st.WorkerID, s})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].s.ShardID < rows[j].s.ShardID })
	fmt.Fprintf(b, "%-22s %-9s %-22s %-26s %9s %9s\n", "SHARD", "WORKER", "STATE", "CHECKPOINT", "RECORDS", "LAG")
	for _, r := range rows {
		state := r.s.State.String()
		if r.s.HandOffTo != "" {
			state += " → " + r.s.HandOffTo
		}
		fmt.Fprintf(b, "%-22s %-9s %-22s %-26s %9d %7dms\n",
			r.s.ShardID, r.worker, state, short(r.s.Checkpoint), r.s.RecordsProcessed, r.s.MillisBehindLatest)
	}
	leases, err := v.e.table.List(ctx)
	if err != nil {
		fmt.Fprintf(b, "(lease table: %v)\n", err)
		return
	}
	finished, free := 0, 0
	for _, l := range leases {
		switch {
		case l.Finished():
			finished++
		case l.Owner == "":
			free++
		}
	}
	fmt.Fprintf(b, "lease table: %d leases, %d finished, %d held by nobody (RECORDS: processed since the worker took the lease)\n",
		len(leases), finished, free)
}

// short abbreviates a sequence number to its last digits.
func short(p checkpoint.Position) string {
	s := p.String()
	if p.IsSentinel() || len(s) <= 26 {
		return s
	}
	return "…" + s[len(s)-25:]
}
