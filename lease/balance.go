package lease

import (
	"cmp"
	"slices"
	"strings"
)

// Balancing: how a worker decides what to take and steal in one taker cycle.
//
// Every worker runs planAcquisitions on its own scan and carries out only its
// own part of the plan. The plan is a function of the scan alone (plus a
// random order for one special case), so workers that read the same table
// compute the same plan and do not collide; workers that read it at
// different moments compute plans that agree on what is left to do (see
// "Intervals" below).
//
// Definitions, over unfinished leases only (a SHARD_END lease is never taken,
// never stolen and counts in no load):
//
//   - N is the number of unfinished leases.
//   - A lease is available when it is unowned, expired (owned by another
//     worker whose counter this worker saw unchanged for FailoverTime), or an
//     orphan (owned by this worker's ID but not held: left by a previous
//     process with the same WorkerID, or dropped locally).
//   - load(w) is the number of w's live (owned and unexpired) leases; this
//     worker's load is what it holds. A lease being handed off counts for
//     its new owner (Owner), whoever computes the plan, the holder included:
//     a hand-off is a move already made, like a take.
//   - W is the set of workers with a load of at least 1, plus the workers
//     with a live row (WorkerStore), plus this worker.
//   - With q = N / |W| and r = N mod |W|, the quota of a worker is q+1 for
//     the first r workers in the quota order, and q for the others. Quotas
//     sum to N. The KCL's target, ceil(N/|W|), is the largest quota.
//     MaxLeasesForWorker caps this worker's own quota.
//   - The quota order puts first the workers with a load of q+1 or more,
//     then the others; each group by ID. Workers already at q+1 keep their
//     extra lease, so no lease moves just to change who holds one. The order
//     is by ID within groups, not by load, so that quotas do not change
//     while a round of takes is under way: ordered by load, a worker rising
//     to q would pass the others and take the q+1 that an earlier scan gave
//     one of them, leaving a lease for a later cycle.
//
// A worker below its quota takes its interval of the available leases, then
// steals its interval of the leases that workers above their quota can give
// (load − quota each, among their leases not being handed off, which cannot
// be asked for twice), never more than MaxLeasesToStealAtOnce per cycle. A
// worker never takes a victim below the victim's quota. The state is
// balanced when every load equals its quota: loads are q or q+1, so
// max − min ≤ 1, and nobody moves anything.
//
// Why quotas rather than "steal from workers above ceil(N/|W|)": with 10
// leases and 3 workers holding 4, 4 and 2, nobody is above the target of 4,
// and the 2 would stay 2 forever. With quotas, the first 4 keeps q+1 = 4 and
// the second 4 gives one to the 2, ending at 4, 3, 3; and 4, 3, 3 is stable
// because the 4 is first in the order and its quota is 4.
//
// Termination. Take a fleet that stays the same and scans that see the
// table as it is. A steal moves a lease from v (load > quota(v)) to s (load
// < quota(s)). If quota(s) = q+1 and quota(v) = q, s comes before v in the
// quota order; but load(v) ≥ q+1 > load(s) puts v in the first group and s
// in the second: impossible. So either
// quota(v) = q+1, and load(v) ≥ q+2; or quota(s) = q, and load(s) ≤ q−1,
// while load(v) ≥ q+1. Either way the move lowers D = Σ (load(w) − q)² by at
// least 2: ΔD = 2(load(s) − load(v)) + 2 ≤ −2. A take of an available lease
// lowers the number of available leases, and D only rises through takes. So
// (available leases, D) falls in lexicographic order at every move and is
// bounded below: moves stop, and they stop only where no worker is below
// its quota with something to take, that is, balanced.
//
// In fact one round suffices: the quotas of one scan send every surplus
// lease straight to a worker that ends at its quota, so each moved lease
// moves once. The quotas stay the same while the round is carried out: a
// worker joins the first group only by reaching a quota of q+1, and leaves
// it only by giving down to a quota of q, so the first r workers of the
// order stay the first r. A worker that received leases therefore never
// becomes a victim.
//
// Intervals. Needy workers (below quota), in ID order, consume the available
// leases in key order, then what the victims give: each victim, in ID order,
// gives the first load − quota of its leases in key order. Each worker's
// share is an interval of these sequences. When a worker has carried out its
// share, its need and the sequences shrink by the same leases, so a later
// scan by another worker computes the same remaining intervals: no two
// workers try for the same lease and no victim is taken below its quota. A
// worker whose scan is older than another's takes only risks a conflict
// (ErrConflict: nothing moves) on leases that changed.
//
// Probing. A worker that holds nothing is invisible to the others, and they
// to it: nine workers joining a one-worker fleet would each see two workers
// and each steal half. So a worker holding nothing takes or steals a single
// lease, chosen at random (several newcomers probe at once), and plans in
// full on its next scan, when newcomers that started with it are visible.
// This costs a new worker one taker cycle; a fleet of newcomers then
// converges on the next cycle, with every moved lease moving once. A worker
// whose probe lost every race to other newcomers scans again within a tenth
// of a cycle (see probeRetry), to be visible when the others plan in full.
//
// Lingering leases. An available lease that stays available from one full
// plan of this worker to its next scan (a probe hands nothing out) belongs
// to an interval nobody took: its worker is capped by its
// own MaxLeasesForWorker, or has stopped taking (shutting down), or is dead
// without its leases having expired yet, or saw a different table. Any worker
// may take it, up to its own cap and beyond its quota, so that shards are not
// left unprocessed while some worker has room; if that leaves the load
// uneven, the next cycles even it out by stealing.
type view struct {
	me        string
	total     int                 // N
	rows      int                 // rows read, finished and malformed ones included
	mine      int                 // this worker's load
	available []*Lease            // sorted by key
	lingering map[string]bool     // keys of available leases already available at this worker's last full plan
	owned     map[string][]*Lease // other workers' live leases, each sorted by key
	present   []string            // other workers with a live row (WorkerStore)
	visible   bool                // this worker's own row is written: others count it

	// What the scan found besides the plan (see Manager.afterScan).
	asked      []string // held leases another worker asked for, unknown to their entry
	handedHere []*Lease // leases handed to this worker that it does not wait for yet
	dead       []Worker // rows of workers gone for twice FailoverTime
}

// limits are this worker's caps; 0 means none.
type limits struct {
	maxLeases int  // Config.MaxLeasesForWorker
	maxSteal  int  // Config.MaxLeasesToStealAtOnce
	noSteal   bool // a newcomer still settling (see Visibility): take, do not steal
}

// plan is what this worker tries in one cycle.
type plan struct {
	take  []Lease // available leases
	steal []Lease // other workers' leases
	probe bool    // take and steal are candidates: stop at the first success
}

type workerLoad struct {
	id   string
	load int
}

// planAcquisitions computes this worker's part of the balance plan for v;
// shuffle randomizes the probe's candidates.
func planAcquisitions(v *view, lim limits, shuffle func([]*Lease)) plan {
	if v.total == 0 {
		return plan{}
	}
	loads := v.loads()
	quota := quotas(loads, v.total)
	gives := v.gives(loads, quota)
	if v.mine == 0 && !v.visible {
		return probe(v, quota[v.me], gives, shuffle)
	}
	needs := needsOf(loads, quota)
	from, n, rest := share(v.me, needs, len(v.available))
	take := slices.Clip(v.available[from : from+n])
	from, n, _ = share(v.me, rest, len(gives))
	steal := gives[from : from+n]

	room := capAt(quota[v.me], lim.maxLeases) - v.mine
	take = take[:clamp(len(take), room)]
	steal = steal[:clamp(len(steal), min(room-len(take), capAt(len(steal), lim.maxSteal)))]
	if lim.noSteal {
		steal = nil
	}
	room = capAt(v.total, lim.maxLeases) - v.mine - len(take) - len(steal)
	take = append(take, v.lingeringOutside(take, room, shuffle)...)
	return plan{take: values(take), steal: values(steal)}
}

// probe is the plan of a worker holding nothing: one lease, at random.
func probe(v *view, quota int, gives []*Lease, shuffle func([]*Lease)) plan {
	switch {
	case quota == 0:
		return plan{}
	case len(v.available) > 0:
		c := slices.Clone(v.available)
		shuffle(c)
		return plan{take: values(c), probe: true}
	case len(gives) > 0:
		shuffle(gives)
		return plan{steal: values(gives), probe: true}
	}
	return plan{}
}

// values returns copies of the leases.
func values(ls []*Lease) []Lease {
	out := make([]Lease, len(ls))
	for i, l := range ls {
		out[i] = *l
	}
	return out
}

// loads returns W with each worker's load, sorted by ID.
func (v *view) loads() []workerLoad {
	out := []workerLoad{{id: v.me, load: v.mine}}
	for id, ls := range v.owned {
		if len(ls) > 0 && id != v.me {
			out = append(out, workerLoad{id: id, load: len(ls)})
		}
	}
	for _, id := range v.present {
		if len(v.owned[id]) == 0 && id != v.me {
			out = append(out, workerLoad{id: id})
		}
	}
	slices.SortFunc(out, func(a, b workerLoad) int { return strings.Compare(a.id, b.id) })
	return out
}

// quotas gives q+1 = N/|W| + 1 to the first N mod |W| workers of the quota
// order, q to the others. loads is sorted by ID.
func quotas(loads []workerLoad, total int) map[string]int {
	q, r := total/len(loads), total%len(loads)
	order := slices.Clone(loads)
	slices.SortStableFunc(order, func(a, b workerLoad) int {
		return cmp.Compare(b2i(b.load > q), b2i(a.load > q))
	})
	out := make(map[string]int, len(order))
	for i, w := range order {
		out[w.id] = q
		if i < r {
			out[w.id] = q + 1
		}
	}
	return out
}

// needsOf returns the workers below their quota with what they lack, in ID
// order (loads is sorted by ID).
func needsOf(loads []workerLoad, quota map[string]int) []workerLoad {
	var out []workerLoad
	for _, w := range loads {
		if d := quota[w.id] - w.load; d > 0 {
			out = append(out, workerLoad{id: w.id, load: d})
		}
	}
	return out
}

// gives returns the sequence of leases the workers above their quota give:
// each, in ID order, its first load − quota leases in key order that are not
// being handed off.
func (v *view) gives(loads []workerLoad, quota map[string]int) []*Lease {
	var out []*Lease
	for _, w := range loads {
		d := w.load - quota[w.id]
		if d <= 0 || w.id == v.me {
			continue
		}
		for _, l := range v.owned[w.id] {
			if d == 0 {
				break
			}
			if !l.HandOffPending() {
				out = append(out, l)
				d--
			}
		}
	}
	return out
}

// share hands supply items out to needs in order and returns me's interval
// [from, from+n) and what each worker still lacks afterwards.
func share(me string, needs []workerLoad, supply int) (from, n int, rest []workerLoad) {
	pos := 0
	rest = make([]workerLoad, 0, len(needs))
	for _, w := range needs {
		k := min(w.load, supply-pos)
		if w.id == me {
			from, n = pos, k
		}
		pos += k
		if w.load > k {
			rest = append(rest, workerLoad{id: w.id, load: w.load - k})
		}
	}
	return from, n, rest
}

// lingeringOutside returns up to max lingering leases not in planned, in
// random order so that several workers with room do not all try the same.
func (v *view) lingeringOutside(planned []*Lease, max int, shuffle func([]*Lease)) []*Lease {
	if max <= 0 || len(v.lingering) == 0 {
		return nil
	}
	skip := make(map[string]bool, len(planned))
	for _, l := range planned {
		skip[l.Key] = true
	}
	var out []*Lease
	for _, l := range v.available {
		if v.lingering[l.Key] && !skip[l.Key] {
			out = append(out, l)
		}
	}
	shuffle(out)
	return out[:clamp(len(out), max)]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// capAt returns n capped at limit, unless limit is 0 (no cap).
func capAt(n, limit int) int {
	if limit > 0 {
		return min(n, limit)
	}
	return n
}

// clamp returns n limited to [0, hi].
func clamp(n, hi int) int { return max(0, min(n, hi)) }
