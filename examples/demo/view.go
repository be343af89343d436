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
	fmt.Fprintf(&b, "produced %d  processed %d  duplicates %d  out of order %d\n\n",
		s.produced, s.processed, s.duplicates, s.outOfOrder)
	v.table(ctx, &b)
	v.mu.Lock()
	b.WriteString("\nevents:\n")
	for _, ev := range v.events {
		b.WriteString("  " + ev + "\n")
	}
	v.mu.Unlock()
	fmt.Fprint(v.out, b.String())
}

func (v *view) table(ctx context.Context, b *strings.Builder) {
	leases, err := v.e.table.List(ctx)
	if err != nil {
		fmt.Fprintf(b, "(lease table: %v)\n", err)
		return
	}
	stats := v.e.tracker.shardStats()
	sort.Slice(leases, func(i, j int) bool { return leases[i].Key < leases[j].Key })
	fmt.Fprintf(b, "%-22s %-10s %-26s %9s %8s\n", "SHARD", "OWNER", "CHECKPOINT", "RECORDS", "LAG")
	for _, l := range leases {
		owner := l.Owner
		if owner == "" {
			owner = "-"
		}
		st := stats[l.Key]
		fmt.Fprintf(b, "%-22s %-10s %-26s %9d %7dms\n", l.Key, owner, short(l.Checkpoint), st.records, st.lag)
	}
}

// short abbreviates a sequence number to its last digits.
func short(p checkpoint.Position) string {
	s := p.String()
	if p.IsSentinel() || len(s) <= 26 {
		return s
	}
	return "…" + s[len(s)-25:]
}
