package lease

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func keysOf(ls []Lease) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Key
	}
	return out
}

func noShuffle([]*Lease) {}

// viewOf builds the view of worker me over a table given as owner per
// lease ("" for unowned), all leases live and unfinished.
func viewOf(me string, owners []string, lingering ...string) *view {
	v := &view{me: me, lingering: make(map[string]bool), owned: make(map[string][]*Lease)}
	for i, o := range owners {
		l := &Lease{Key: modelKey(i), Owner: o}
		v.total++
		switch o {
		case me:
			v.mine++
		case "":
			v.available = append(v.available, l)
		default:
			v.owned[o] = append(v.owned[o], l)
		}
	}
	for _, k := range lingering {
		v.lingering[k] = true
	}
	return v
}

var modelKeys []string

// modelKey returns "k%03d" for i, from a cache: the property test builds
// millions of views.
func modelKey(i int) string {
	for len(modelKeys) <= i {
		modelKeys = append(modelKeys, fmt.Sprintf("k%03d", len(modelKeys)))
	}
	return modelKeys[i]
}

// repeat returns owner n times.
func repeat(owner string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = owner
	}
	return out
}

func concat(parts ...[]string) []string { return slices.Concat(parts...) }

func TestPlanBalancedStatesAreStable(t *testing.T) {
	// 10 leases on 3 workers: 4, 3, 3 whoever holds the 4.
	for _, owners := range [][]string{
		concat(repeat("a", 4), repeat("b", 3), repeat("c", 3)),
		concat(repeat("a", 3), repeat("b", 4), repeat("c", 3)),
		concat(repeat("a", 3), repeat("b", 3), repeat("c", 4)),
		concat(repeat("a", 10), repeat("b", 10)),
		concat(repeat("a", 1), repeat("b", 1), repeat("c", 1)),
	} {
		for _, me := range slices.Compact(slices.Clone(owners)) {
			p := planAcquisitions(viewOf(me, owners), limits{}, noShuffle)
			require.Empty(t, p.take, "%s in %v", me, owners)
			require.Empty(t, p.steal, "%s in %v", me, owners)
		}
	}
}

func TestPlan442(t *testing.T) {
	// ceil(10/3) = 4: nobody is above the KCL's target, but the quotas are
	// 4 (a, first with 4), 3 (b), 3 (c): b gives c one.
	owners := concat(repeat("a", 4), repeat("b", 4), repeat("c", 2))
	p := planAcquisitions(viewOf("c", owners), limits{}, noShuffle)
	require.Equal(t, []string{"k004"}, keysOf(p.steal))
	require.Empty(t, planAcquisitions(viewOf("a", owners), limits{}, noShuffle).steal)
	require.Empty(t, planAcquisitions(viewOf("b", owners), limits{}, noShuffle).steal)
}

func TestPlanScaleOutIntervals(t *testing.T) {
	// 100 leases: a holds 91, nine newcomers hold one each (their probes).
	owners := repeat("a", 91)
	var joiners []string
	for i := 1; i <= 9; i++ {
		id := fmt.Sprintf("j%d", i)
		joiners = append(joiners, id)
		owners = append(owners, id)
	}
	seen := make(map[string]string)
	for _, j := range joiners {
		p := planAcquisitions(viewOf(j, owners), limits{}, noShuffle)
		require.Empty(t, p.take)
		require.Len(t, p.steal, 9, j)
		for _, l := range p.steal {
			require.Equal(t, "a", l.Owner)
			require.Empty(t, seen[l.Key], "%s planned by %s and %s", l.Key, seen[l.Key], j)
			seen[l.Key] = j
		}
	}
	require.Len(t, seen, 81)
}

func TestPlanTakesAvailableBeforeStealing(t *testing.T) {
	// 12 leases: a 8, b 1, 3 unowned: quotas 6, 6: b takes the 3 and steals 2.
	owners := concat(repeat("a", 8), repeat("b", 1), repeat("", 3))
	p := planAcquisitions(viewOf("b", owners), limits{}, noShuffle)
	require.Equal(t, []string{"k009", "k010", "k011"}, keysOf(p.take))
	require.Equal(t, []string{"k000", "k001"}, keysOf(p.steal))

	// Capped at 5 in all, and at 1 steal per cycle.
	p = planAcquisitions(viewOf("b", owners), limits{maxLeases: 5, maxSteal: 1}, noShuffle)
	require.Len(t, p.take, 3)
	require.Len(t, p.steal, 1)
	p = planAcquisitions(viewOf("b", owners), limits{maxLeases: 3}, noShuffle)
	require.Len(t, p.take, 2)
	require.Empty(t, p.steal)
}

func TestPlanProbe(t *testing.T) {
	// A worker holding nothing takes or steals one lease, trying candidates
	// in random order.
	owners := concat(repeat("a", 10), repeat("", 2))
	p := planAcquisitions(viewOf("n", owners), limits{}, noShuffle)
	require.True(t, p.probe)
	require.Equal(t, []string{"k010", "k011"}, keysOf(p.take))
	require.Empty(t, p.steal)

	p = planAcquisitions(viewOf("n", repeat("a", 10)), limits{}, noShuffle)
	require.True(t, p.probe)
	require.Len(t, p.steal, 5, "candidates: what a gives above its quota")

	// More workers than leases: a quota of 0, nothing to do.
	require.Empty(t, planAcquisitions(viewOf("n", []string{"a", "b"}), limits{}, noShuffle).steal)
}

func TestPlanLingering(t *testing.T) {
	// b at its quota of 5; the leases in capped a's interval (k005, k006)
	// linger; b takes them, beyond its quota, up to its cap.
	owners := concat(repeat("a", 3), repeat("b", 5), repeat("", 2))
	p := planAcquisitions(viewOf("b", owners, "k008", "k009"), limits{}, noShuffle)
	require.Equal(t, []string{"k008", "k009"}, keysOf(p.take))
	p = planAcquisitions(viewOf("b", owners, "k008", "k009"), limits{maxLeases: 6}, noShuffle)
	require.Len(t, p.take, 1)
	// Not yet lingering: a's interval, not b's.
	require.Empty(t, planAcquisitions(viewOf("b", owners), limits{}, noShuffle).take)
}

// modelLease is a lease in the balance model: an owner and a version that
// every take increments, so that stale takes fail as conditional writes do.
// With hand-offs, holder is set while the lease is being handed from holder
// to owner.
type modelLease struct {
	owner   string
	holder  string
	version int
	moves   int
}

// model runs planAcquisitions for a fleet on a table without time: in each
// round every worker scans and acts once, in a random interleaving, so that
// some act on scans older than other workers' takes.
//
// With visible set, every worker has a row (WorkerStore) from the start, so
// none probes; and steals are hand-offs, which stay pending (counted for the
// new owner, not to be asked for again) until a random later event.
type model struct {
	rng     *rand.Rand
	leases  []modelLease
	workers []string
	visible bool
	debug   func(string, ...any)
}

func (m *model) view(me string) (*view, []int) {
	owners := make([]string, len(m.leases))
	versions := make([]int, len(m.leases))
	for i, l := range m.leases {
		owners[i], versions[i] = l.owner, l.version
	}
	v := viewOf(me, owners)
	if m.visible {
		v.visible = true
		for _, w := range m.workers {
			if w != me {
				v.present = append(v.present, w)
			}
		}
		for _, ls := range v.owned {
			for _, l := range ls {
				i, _ := strconv.Atoi(l.Key[1:])
				l.CheckpointOwner = m.leases[i].holder
			}
		}
	}
	return v, versions
}

// completeHandOffs ends each pending hand-off with probability 1/3: the
// holder released, and the new owner took the lease.
func (m *model) completeHandOffs() (pending bool) {
	for i := range m.leases {
		l := &m.leases[i]
		if l.holder == "" {
			continue
		}
		if m.rng.IntN(3) == 0 {
			l.holder = ""
			l.version++
		} else {
			pending = true
		}
	}
	return pending
}

// round runs one round and returns the number of successful takes.
func (m *model) round() int {
	type scan struct {
		p        plan
		versions []int
	}
	scans := make(map[string]scan)
	var events []string // "s:<id>" scan, "a:<id>" act
	for _, w := range m.workers {
		events = append(events, "s:"+w)
	}
	m.rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	// Insert each worker's act at a random place after its scan.
	for _, w := range m.workers {
		at := slices.Index(events, "s:"+w)
		pos := at + 1 + m.rng.IntN(len(events)-at)
		events = slices.Insert(events, pos, "a:"+w)
	}
	takes := 0
	for e := 0; e < len(events); e++ {
		ev := events[e]
		w := ev[2:]
		if ev[0] == 's' {
			if m.debug != nil {
				m.debug("%s scans", w)
			}
			v, versions := m.view(w)
			scans[w] = scan{planAcquisitions(v, limits{}, func(ls []*Lease) {
				m.rng.Shuffle(len(ls), func(i, j int) { ls[i], ls[j] = ls[j], ls[i] })
			}), versions}
			continue
		}
		sc := scans[w]
		took := false
		steals := len(sc.p.take)
		for n, l := range append(sc.p.take, sc.p.steal...) {
			i, _ := strconv.Atoi(l.Key[1:])
			cur := &m.leases[i]
			if m.visible && n >= steals {
				// A hand-off: conditional on the owner alone, and on no
				// hand-off pending.
				if cur.owner != l.Owner || cur.holder != "" {
					continue
				}
				cur.moves++
				cur.holder, cur.owner = cur.owner, w
				takes++
				took = true
				continue
			}
			if cur.version != sc.versions[i] {
				continue // ErrConflict
			}
			if cur.owner != "" {
				cur.moves++
			}
			if m.debug != nil {
				m.debug("%s takes %s from %q (probe %v)", w, l.Key, cur.owner, sc.p.probe)
			}
			cur.owner, cur.version = w, cur.version+1
			takes++
			took = true
			if sc.p.probe {
				break
			}
		}
		if m.visible {
			m.completeHandOffs()
		}
		if sc.p.probe && !took {
			// A failed probe scans again soon, within the round.
			at := e + 1 + m.rng.IntN(len(events)-e)
			events = slices.Insert(events, at, "s:"+w)
			events = slices.Insert(events, at+1+m.rng.IntN(len(events)-at), "a:"+w)
		}
	}
	return takes
}

func (m *model) spread() (int, int) {
	counts := make(map[string]int)
	for _, l := range m.leases {
		counts[l.owner]++
	}
	return spread(counts, m.workers)
}

var propertyIterations = 1000

// The balancing property with worker rows and hand-offs, as the Manager
// runs on a WorkerStore and HandOffStore: from random fleets and tables
// (newcomers visible from their first scan, steals pending for a while), the
// plan converges to max − min ≤ 1 with nothing unowned and stays there; in
// scale-outs from a balanced fleet no lease moves twice; and a fleet
// starting together on an unowned table moves nothing at all.
func TestPlanConvergesWithHandOffsProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 12))
	worstRounds := 0
	for iter := range propertyIterations {
		m := &model{rng: rng, visible: true}
		existing, joining := 1+rng.IntN(8), rng.IntN(10)
		n := rng.IntN(120)
		for i := range existing + joining {
			m.workers = append(m.workers, fmt.Sprintf("w%02d", rng.IntN(1000)*100+i))
		}
		kind := rng.IntN(3) // 0: balanced fleet, scale-out; 1: uneven; 2: fresh table
		for i := range n {
			owner := m.workers[rng.IntN(existing)]
			switch {
			case kind == 0:
				owner = m.workers[i%existing]
			case kind == 2 || rng.IntN(4) == 0:
				owner = ""
			}
			m.leases = append(m.leases, modelLease{owner: owner})
		}
		rounds := 0
		for m.round() > 0 || m.completeHandOffs() {
			rounds++
			require.LessOrEqual(t, rounds, 12, "iteration %d: no convergence: %d workers (%d new), %d leases", iter, existing+joining, joining, n)
		}
		worstRounds = max(worstRounds, rounds)
		d, free := m.spread()
		require.LessOrEqual(t, d, 1, "iteration %d", iter)
		require.Zero(t, free, "iteration %d", iter)
		require.Zero(t, m.round(), "iteration %d: not stable", iter)
		for i, l := range m.leases {
			switch kind {
			case 0:
				require.LessOrEqual(t, l.moves, 1, "iteration %d: lease %d moved %d times", iter, i, l.moves)
			case 2:
				require.Zero(t, l.moves, "iteration %d: lease %d moved on a fresh start", iter, i)
			}
		}
	}
	t.Logf("worst case: %d rounds with moves or pending hand-offs", worstRounds)
}

// The balancing property: from random fleets and tables (some leases
// unowned, existing workers unevenly loaded, newcomers joining at once), the
// plan converges in a few rounds to max − min ≤ 1 with nothing unowned,
// stays there, and in scale-outs from a balanced fleet no lease moves twice.
func TestPlanConvergesProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 11))
	worstRounds := 0
	for iter := range propertyIterations {
		m := &model{rng: rng}
		existing, joining := 1+rng.IntN(8), rng.IntN(10)
		n := rng.IntN(120)
		for i := range existing + joining {
			m.workers = append(m.workers, fmt.Sprintf("w%02d", rng.IntN(1000)*100+i))
		}
		balanced := rng.IntN(2) == 0
		for i := range n {
			owner := m.workers[rng.IntN(existing)]
			switch {
			case balanced:
				owner = m.workers[i%existing]
			case rng.IntN(4) == 0:
				owner = ""
			}
			m.leases = append(m.leases, modelLease{owner: owner})
		}
		rounds := 0
		if m.debug != nil {
			m.debug("workers %v existing %d; leases %v", m.workers, existing, m.leases)
		}
		for m.round() > 0 {
			rounds++
			require.LessOrEqual(t, rounds, 4, "iteration %d: no convergence: %d workers (%d new), %d leases", iter, existing+joining, joining, n)
		}
		worstRounds = max(worstRounds, rounds)
		d, free := m.spread()
		require.LessOrEqual(t, d, 1, "iteration %d", iter)
		require.Zero(t, free, "iteration %d", iter)
		require.Zero(t, m.round(), "iteration %d: not stable", iter)
		if balanced {
			for i, l := range m.leases {
				require.LessOrEqual(t, l.moves, 1, "iteration %d: lease %d moved %d times", iter, i, l.moves)
			}
		}
	}
	t.Logf("worst case: %d rounds with moves", worstRounds)
}
