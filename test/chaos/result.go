package chaos

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gokcl/kcl/test/chaos/faultproxy"
)

// Result is one run's outcome.
type Result struct {
	Seed     uint64        // the run's seed: the same seed replays it
	Profile  string        // the profile's name
	Dir      string        // the workers' outputs and logs
	Duration time.Duration // the whole run's, chaos and drain
	Report   *Report       // the checker's findings; nil if the run ended before the check
	// Problems are failures outside the checker's properties: a worker
	// that exited on its own or did not stop when asked, a harness error.
	Problems []string
	// Faults counts the requests per fault (None: untouched).
	Faults map[faultproxy.Kind]int
	// Actions counts the events done; Skipped those that had no target.
	Actions, Skipped map[Action]int
	// LineageBehind counts the lineages made while P was unfinished.
	LineageBehind int
	// DrainTimedOut reports that not every record was processed in time.
	DrainTimedOut bool
}

// Failed reports whether the run found anything wrong.
func (r *Result) Failed() bool {
	return len(r.Problems) > 0 || r.Report == nil || r.Report.Failed()
}

// Replay is the command that replays the run.
func (r *Result) Replay() string {
	return fmt.Sprintf("make chaos RUNS=1 SEED=%d PROFILE=%s", r.Seed, r.Profile)
}

func (r *Result) faults() int {
	n := 0
	for _, k := range faultproxy.Kinds {
		n += r.Faults[k]
	}
	return n
}

func (r *Result) reshards() int {
	return r.Actions[Split] + r.Actions[Merge] + 2*r.Actions[Lineage] + r.Actions[ShardCount]
}

// Summary is the run's one-line summary.
func (r *Result) Summary() string {
	verdict := "ok"
	if r.Failed() {
		verdict = "FAILED"
	}
	rep := r.Report
	if rep == nil {
		rep = &Report{}
	}
	return fmt.Sprintf("seed %d (%s): %s in %v: produced %d, delivered %d (%d duplicates); "+
		"%d faults, %d kills, %d pauses, %d restarts, %d partitions, %d reshards (lineage behind: %d); "+
		"lost %d, unprocessed %d, out of order %d, backwards %d, same counter %d, stale %d, problems %d",
		r.Seed, r.Profile, verdict, r.Duration.Round(100*time.Millisecond), rep.Produced, rep.Deliveries, rep.Duplicates,
		r.faults(), r.Actions[Kill], r.Actions[Pause], r.Actions[Restart], r.Actions[Partition], r.reshards(), r.LineageBehind,
		rep.Lost.N, rep.Unprocessed.N, rep.OutOfOrder.N, rep.Backwards.N, rep.SameCounter.N, rep.Stale.N, len(r.Problems)) +
		r.notes()
}

// notes lists what is worth knowing but not a failure.
func (r *Result) notes() string {
	var notes []string
	for a, n := range r.Skipped {
		notes = append(notes, fmt.Sprintf("%d %s skipped (no target)", n, a))
	}
	slices.Sort(notes)
	if r.Report != nil && r.Report.BehindAtEnd.N > 0 {
		notes = append(notes, fmt.Sprintf("%d final checkpoints behind the last record", r.Report.BehindAtEnd.N))
	}
	if len(notes) == 0 {
		return ""
	}
	return " [" + strings.Join(notes, "; ") + "]"
}

// Details describes what went wrong.
func (r *Result) Details() string {
	var b strings.Builder
	if r.Report != nil {
		b.WriteString(r.Report.String())
	}
	if r.DrainTimedOut {
		b.WriteString("\nthe workers had not processed every record when the run stopped waiting")
	}
	if rep := r.Report; rep != nil && rep.BehindAtEnd.N > 0 {
		fmt.Fprintf(&b, "\nfinal checkpoints behind the last record (duplicates on a restart; not a failure): %d", rep.BehindAtEnd.N)
		for _, ex := range rep.BehindAtEnd.Examples {
			b.WriteString("\n    " + ex)
		}
	}
	for _, p := range r.Problems {
		b.WriteString("\nproblem: " + p)
	}
	fmt.Fprintf(&b, "\noutputs and logs: %s\nreplay: %s", r.Dir, r.Replay())
	return b.String()
}

// WriteTable prints the totals of several runs.
func WriteTable(w io.Writer, results []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := []string{"seed", "time", "produced", "dups"}
	for _, k := range faultproxy.Kinds {
		header = append(header, k.String())
	}
	header = append(header, "kills", "pauses", "restarts", "partitions", "reshards", "lost", "unproc", "order", "backwards", "samectr", "stale", "problems", "")
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	var total Result
	total.Faults, total.Actions, total.Report = map[faultproxy.Kind]int{}, map[Action]int{}, &Report{}
	var failed int
	for _, r := range results {
		writeRow(tw, fmt.Sprint(r.Seed), r)
		add(&total, r)
		if r.Failed() {
			failed++
		}
	}
	writeRow(tw, fmt.Sprintf("%d runs, %d failed", len(results), failed), &total)
	tw.Flush()
}

func writeRow(w io.Writer, name string, r *Result) {
	rep := r.Report
	if rep == nil {
		rep = &Report{}
	}
	row := []string{name, r.Duration.Round(time.Second).String(), fmt.Sprint(rep.Produced), fmt.Sprint(rep.Duplicates)}
	for _, k := range faultproxy.Kinds {
		row = append(row, fmt.Sprint(r.Faults[k]))
	}
	for _, n := range []int{r.Actions[Kill], r.Actions[Pause], r.Actions[Restart], r.Actions[Partition], r.reshards(),
		rep.Lost.N, rep.Unprocessed.N, rep.OutOfOrder.N, rep.Backwards.N, rep.SameCounter.N, rep.Stale.N, len(r.Problems)} {
		row = append(row, fmt.Sprint(n))
	}
	fmt.Fprintln(w, strings.Join(row, "\t")+"\t")
}

func add(total, r *Result) {
	total.Duration += r.Duration
	for k, n := range r.Faults {
		total.Faults[k] += n
	}
	for a, n := range r.Actions {
		total.Actions[a] += n
	}
	if rep := r.Report; rep != nil {
		t := total.Report
		t.Produced += rep.Produced
		t.Duplicates += rep.Duplicates
		t.Lost.N += rep.Lost.N
		t.Unprocessed.N += rep.Unprocessed.N
		t.OutOfOrder.N += rep.OutOfOrder.N
		t.Backwards.N += rep.Backwards.N
		t.SameCounter.N += rep.SameCounter.N
		t.Stale.N += rep.Stale.N
	}
	total.Problems = append(total.Problems, r.Problems...)
}
