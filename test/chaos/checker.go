package chaos

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gokcl/kcl/checkpoint"
)

// CheckConfig is what the checker needs to know about the run.
type CheckConfig struct {
	// StaleAfter flags a delivery by a worker whose last write holding the
	// shard's lease was answered longer ago than this: a delivery on a
	// lease that had expired. The consumer stops a lease 90% of
	// FailoverTime after the start of its last successful write, so any
	// value above FailoverTime is safe; zero turns the check off.
	StaleAfter time.Duration
}

// Findings counts the violations of one property and keeps the first few.
type Findings struct {
	// N is the number of violations; Examples describes the first few
	// (at most 8).
	N        int
	Examples []string
}

const maxExamples = 8

func (f *Findings) add(format string, args ...any) {
	f.N++
	if len(f.Examples) < maxExamples {
		f.Examples = append(f.Examples, fmt.Sprintf(format, args...))
	}
}

// Report is the checker's verdict on one run.
type Report struct {
	Produced   int // user records written
	Deliveries int // user records handed to processors, duplicates included
	Unique     int // produced records delivered at least once
	Duplicates int // deliveries of produced records beyond their first

	// Lost: a checkpoint passed the record before any processor received
	// it, or it was never received and a checkpoint passed it.
	Lost Findings
	// Unprocessed: never received, and no checkpoint passed it: not
	// processed yet when the run stopped waiting (a stall, not a loss).
	Unprocessed Findings
	// OutOfOrder: a partition key's record first received after a later
	// record of the same key was.
	OutOfOrder Findings
	// Backwards: a lease write whose checkpoint is before that of the
	// lease's previous write (in counter order).
	Backwards Findings
	// SameCounter: two applied writes of one lease with the same resulting
	// counter (two owners writing one lease).
	SameCounter Findings
	// Stale: records received by a worker whose lease had expired.
	Stale Findings
	// Phantoms: deliveries of records never produced, or reported at
	// another shard or position than the producer wrote them to.
	Phantoms Findings
	// LogErrors: the lease writes seen do not explain the final lease
	// table, so the checks above may have missed writes.
	LogErrors Findings
	// Gaps counts counter increments larger than one between successive
	// logged writes of a lease (writes not seen); informational.
	Gaps int
	// BehindAtEnd: leases whose final checkpoint is before the last record
	// of their shard, although every record was processed and the workers
	// stopped gracefully: a restart would deliver those records again.
	// Informational (not a loss); empty when records were left unprocessed.
	BehindAtEnd Findings
}

// Failed reports whether any property was violated.
func (r *Report) Failed() bool {
	for _, f := range r.properties() {
		if f.f.N > 0 {
			return true
		}
	}
	return false
}

type namedFindings struct {
	name string
	f    *Findings
}

func (r *Report) properties() []namedFindings {
	return []namedFindings{
		{"lost", &r.Lost}, {"unprocessed", &r.Unprocessed}, {"out of order", &r.OutOfOrder},
		{"backwards checkpoints", &r.Backwards}, {"same counter", &r.SameCounter},
		{"deliveries on expired leases", &r.Stale}, {"phantom deliveries", &r.Phantoms},
		{"lease log errors", &r.LogErrors},
	}
}

// String describes every violation found, with examples.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "produced %d, delivered %d (%d unique, %d duplicates)", r.Produced, r.Deliveries, r.Unique, r.Duplicates)
	for _, p := range r.properties() {
		if p.f.N == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s: %d", p.name, p.f.N)
		for _, ex := range p.f.Examples {
			fmt.Fprintf(&b, "\n    %s", ex)
		}
	}
	return b.String()
}

// Check judges a run's history.
func Check(h History, cfg CheckConfig) *Report {
	r := &Report{Produced: len(h.Produced), Deliveries: len(h.Deliveries)}
	produced := indexProduced(h.Produced, r)
	first := firstDeliveries(h.Deliveries, produced, r)
	checkOrder(first, r)
	writes := leaseHistories(h.Writes, r)
	checkLost(h.Produced, first, h.Writes, r)
	checkStale(h.Deliveries, h.Writes, cfg.StaleAfter, r)
	checkFinal(writes, h.Final, r)
	if r.Unprocessed.N == 0 && r.Lost.N == 0 {
		checkFinalCheckpoints(h.Produced, h.Final, r)
	}
	return r
}

func indexProduced(recs []Record, r *Report) map[string]Record {
	out := make(map[string]Record, len(recs))
	for _, rec := range recs {
		if _, dup := out[rec.ID()]; dup {
			r.LogErrors.add("record %s produced twice", rec.ID())
		}
		out[rec.ID()] = rec
	}
	return out
}

// firstDeliveries returns each produced record's first delivery, counting
// duplicates and phantoms.
func firstDeliveries(ds []Delivery, produced map[string]Record, r *Report) map[string]Delivery {
	first := make(map[string]Delivery, len(produced))
	for _, d := range ds {
		id := recordData(d.Key, d.N)
		rec, ok := produced[id]
		switch {
		case !ok:
			r.Phantoms.add("%s: never produced", d)
			continue
		case rec.Shard != d.Shard || rec.Pos != d.Pos:
			r.Phantoms.add("%s at %s: produced to %s at %s", d, d.Pos, rec.Shard, rec.Pos)
			continue
		}
		if f, seen := first[id]; !seen || d.before(f) {
			first[id] = d
		}
	}
	r.Unique = len(first)
	r.Duplicates = len(ds) - r.Phantoms.N - r.Unique
	return first
}

// checkOrder checks that each key's records were first received in the
// order they were written.
func checkOrder(first map[string]Delivery, r *Report) {
	byKey := map[string][]Delivery{}
	for _, d := range first {
		byKey[d.Key] = append(byKey[d.Key], d)
	}
	for _, key := range sortedKeys(byKey) {
		ds := byKey[key]
		slices.SortFunc(ds, compareDeliveries)
		var latest Delivery
		for i, d := range ds {
			if i > 0 && d.N < latest.N {
				r.OutOfOrder.add("%s first received after %s", d, latest)
			}
			if i == 0 || d.N > latest.N {
				latest = d
			}
		}
	}
}

// leaseHistories checks each lease's writes in counter order: checkpoints
// never move back, no two writes share a resulting counter. A delete starts
// a new history (the lease may be created again). It returns the writes of
// each lease's last history, in counter order.
func leaseHistories(ws []LeaseWrite, r *Report) map[string][]LeaseWrite {
	byKey := map[string][]LeaseWrite{}
	for _, w := range ws {
		byKey[w.Key] = append(byKey[w.Key], w)
	}
	last := map[string][]LeaseWrite{}
	for _, key := range sortedKeys(byKey) {
		all := byKey[key]
		slices.SortStableFunc(all, func(a, b LeaseWrite) int { return a.At.Compare(b.At) })
		var gen []LeaseWrite
		for _, w := range all {
			if w.Op == OpDelete {
				checkLease(gen, r)
				gen = nil
				continue
			}
			gen = append(gen, w)
		}
		checkLease(gen, r)
		last[key] = gen
		if all[len(all)-1].Op == OpDelete {
			last[key] = nil
		}
	}
	return last
}

// checkLease checks one history of one lease, sorting it by counter; a
// hand-off, which keeps the counter, comes after the write that set it.
func checkLease(gen []LeaseWrite, r *Report) {
	slices.SortStableFunc(gen, func(a, b LeaseWrite) int {
		return cmp.Or(cmp.Compare(a.Counter, b.Counter), compareBool(a.KeepsCounter, b.KeepsCounter), a.At.Compare(b.At))
	})
	for i := 1; i < len(gen); i++ {
		prev, w := gen[i-1], gen[i]
		switch {
		case w.KeepsCounter:
		case w.Counter == prev.Counter:
			r.SameCounter.add("%s and %s", prev, w)
		case w.Counter > prev.Counter+1:
			r.Gaps++
		}
		if comparePositions(w.Checkpoint, prev.Checkpoint) < 0 {
			r.Backwards.add("%s after %s", w, prev)
		}
	}
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// comparePositions orders checkpoints for the backwards check: the starting
// sentinels (TRIM_HORIZON, LATEST, AT_TIMESTAMP) alike, then sequence
// numbers, then SHARD_END.
func comparePositions(a, b checkpoint.Position) int {
	if ra, rb := positionRank(a), positionRank(b); ra != rb || ra != 1 {
		return cmp.Compare(ra, rb)
	}
	return a.Compare(b)
}

func positionRank(p checkpoint.Position) int {
	switch {
	case p.IsShardEnd():
		return 2
	case p.IsSentinel():
		return 0
	}
	return 1
}

// checkLost finds the records a checkpoint passed before anyone received
// them, and those never received.
func checkLost(recs []Record, first map[string]Delivery, ws []LeaseWrite, r *Report) {
	// Per shard, its writes in time order, and for each the highest
	// checkpoint written up to it.
	type shardWrites struct {
		writes  []LeaseWrite
		highest []int // index of the highest checkpoint in writes[:i+1]
	}
	byShard := map[string]*shardWrites{}
	for _, w := range ws {
		if w.Op == OpDelete {
			continue
		}
		s := byShard[w.Key]
		if s == nil {
			s = &shardWrites{}
			byShard[w.Key] = s
		}
		s.writes = append(s.writes, w)
	}
	for _, s := range byShard {
		slices.SortStableFunc(s.writes, func(a, b LeaseWrite) int { return a.At.Compare(b.At) })
		for i, w := range s.writes {
			if i == 0 || comparePositions(w.Checkpoint, s.writes[s.highest[i-1]].Checkpoint) > 0 {
				s.highest = append(s.highest, i)
			} else {
				s.highest = append(s.highest, s.highest[i-1])
			}
		}
	}
	for _, rec := range recs {
		d, delivered := first[rec.ID()]
		var passed *LeaseWrite
		if s := byShard[rec.Shard]; s != nil {
			// The writes answered before the first delivery (all of them
			// if there was none) must all be before the record.
			n := len(s.writes)
			if delivered {
				n, _ = slices.BinarySearchFunc(s.writes, d.At, func(w LeaseWrite, t time.Time) int { return w.At.Compare(t) })
			}
			// The highest checkpoint so far only grows: the first write
			// that passed the record is found by bisection.
			i := sort.Search(n, func(i int) bool { return comparePositions(s.writes[s.highest[i]].Checkpoint, rec.Pos) >= 0 })
			if i < n {
				passed = &s.writes[s.highest[i]]
			}
		}
		switch {
		case passed != nil && delivered:
			r.Lost.add("%s (%s at %s): checkpoint passed it before its first delivery %s: %s", rec.ID(), rec.Shard, rec.Pos, d, passed)
		case passed != nil:
			r.Lost.add("%s (%s at %s): never delivered, and passed by %s", rec.ID(), rec.Shard, rec.Pos, passed)
		case !delivered:
			r.Unprocessed.add("%s (%s at %s)", rec.ID(), rec.Shard, rec.Pos)
		}
	}
}

// checkStale finds deliveries by a worker whose last write holding the lease
// was answered more than staleAfter before.
func checkStale(ds []Delivery, ws []LeaseWrite, staleAfter time.Duration, r *Report) {
	if staleAfter <= 0 {
		return
	}
	type holder struct{ key, worker string }
	held := map[holder][]time.Time{}
	for _, w := range ws {
		if w.Op != OpDelete && w.Holder() != "" && w.Holder() == w.Via {
			k := holder{w.Key, w.Via}
			held[k] = append(held[k], w.At)
		}
	}
	for _, ts := range held {
		slices.SortFunc(ts, time.Time.Compare)
	}
	type batch struct {
		worker string
		inc    int
		shard  string
		at     time.Time
	}
	reported := map[batch]bool{}
	for _, d := range ds {
		ts := held[holder{d.Shard, d.Worker}]
		i, _ := slices.BinarySearchFunc(ts, d.At, time.Time.Compare) // writes before i answered before d
		var why string
		switch {
		case i == 0:
			why = "it had written no lease of the shard before"
		case d.At.Sub(ts[i-1]) > staleAfter:
			why = fmt.Sprintf("its last write holding the lease was answered %v before", d.At.Sub(ts[i-1]).Round(time.Millisecond))
		default:
			continue
		}
		b := batch{d.Worker, d.Incarnation, d.Shard, d.At}
		if reported[b] {
			r.Stale.N++
			continue
		}
		reported[b] = true
		r.Stale.add("%s: %s", d, why)
	}
}

// checkFinal compares the final lease table with the last write logged of
// each lease.
func checkFinal(last map[string][]LeaseWrite, final map[string]FinalLease, r *Report) {
	if final == nil {
		return
	}
	for _, key := range sortedKeys(final) {
		f := final[key]
		gen := last[key]
		if len(gen) == 0 {
			r.LogErrors.add("lease %s in the final table (counter %d) but no write of it logged", key, f.Counter)
			continue
		}
		w := gen[len(gen)-1]
		if w.Counter != f.Counter || w.Owner != f.Owner || w.CheckpointOwner != f.CheckpointOwner || w.Checkpoint != f.Checkpoint {
			r.LogErrors.add("lease %s: final table has owner %q checkpoint owner %q counter %d checkpoint %s; last logged write: %s",
				key, f.Owner, f.CheckpointOwner, f.Counter, f.Checkpoint, w)
		}
	}
	for _, key := range sortedKeys(last) {
		if _, ok := final[key]; !ok && len(last[key]) > 0 {
			r.LogErrors.add("lease %s written (last: %s) but not in the final table", key, last[key][len(last[key])-1])
		}
	}
}

// checkFinalCheckpoints finds the leases whose final checkpoint is before
// the last record produced to their shard.
func checkFinalCheckpoints(recs []Record, final map[string]FinalLease, r *Report) {
	last := map[string]checkpoint.Position{}
	for _, rec := range recs {
		if p, ok := last[rec.Shard]; !ok || rec.Pos.Compare(p) > 0 {
			last[rec.Shard] = rec.Pos
		}
	}
	for _, shard := range sortedKeys(last) {
		f, ok := final[shard]
		if ok && comparePositions(f.Checkpoint, last[shard]) < 0 {
			r.BehindAtEnd.add("lease %s: checkpoint %s, last record %s", shard, f.Checkpoint, last[shard])
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
