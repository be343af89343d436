package shardgraph

import (
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// id names shard n as Kinesis does.
func id(n int) string { return shardID(n) }

// keyAt returns the first key of the k-th of n equal slices of the key space
// (2^128 when k == n).
func keyAt(k, n int64) *big.Int {
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	return space.Mul(space, big.NewInt(k)).Div(space, big.NewInt(n))
}

// shard returns shard n covering the slices [from, to) of n equal slices of
// the key space, open, with the given parents.
func shard(num int, from, to, of int64, parents ...int) Shard {
	s := Shard{ID: id(num), HashKeyStart: keyAt(from, of),
		HashKeyEnd: new(big.Int).Sub(keyAt(to, of), big.NewInt(1)), StartingSequence: "1"}
	for _, p := range parents {
		s.ParentIDs = append(s.ParentIDs, id(p))
	}
	return s
}

// closed returns s closed.
func closed(s Shard) Shard {
	s.EndingSequence = "99"
	return s
}

func ids(nums ...int) []string {
	var out []string
	for _, n := range nums {
		out = append(out, id(n))
	}
	return out
}

// waves drains g with Ready, marking each whole answer done.
func waves(g *Graph) [][]string {
	done := map[string]bool{}
	var out [][]string
	for ready := g.Ready(nil); len(ready) > 0; ready = g.Ready(func(id string) bool { return done[id] }) {
		out = append(out, ready)
		for _, id := range ready {
			done[id] = true
		}
	}
	return out
}

type readyCase struct {
	done []string // shards done
	want []string // what Ready returns
}

type graphCase struct {
	name                string
	shards              []Shard
	open, closed        []string
	parents, children   map[string][]string // only those listed are checked
	latest, trimHorizon []string
	waves               [][]string // draining from nothing done, whole answers at a time
	ready               []readyCase
	coverage            error // the sentinel Coverage wraps, or nil
}

var graphCases = []graphCase{
	{
		name:   "one shard",
		shards: []Shard{shard(0, 0, 1, 1)},
		open:   ids(0),
		latest: ids(0), trimHorizon: ids(0),
		waves: [][]string{ids(0)},
	},
	{
		name:   "split",
		shards: []Shard{closed(shard(0, 0, 1, 1)), shard(1, 0, 1, 2, 0), shard(2, 1, 2, 2, 0)},
		open:   ids(1, 2), closed: ids(0),
		parents:  map[string][]string{id(0): nil, id(1): ids(0), id(2): ids(0)},
		children: map[string][]string{id(0): ids(1, 2), id(1): nil},
		latest:   ids(1, 2), trimHorizon: ids(0),
		waves: [][]string{ids(0), ids(1, 2)},
		ready: []readyCase{{done: ids(1), want: ids(0)}}, // a done child does not unblock its parent
	},
	{
		name:   "merge waits for both parents",
		shards: []Shard{closed(shard(0, 0, 1, 2)), closed(shard(1, 1, 2, 2)), shard(2, 0, 1, 1, 1, 0)},
		open:   ids(2), closed: ids(0, 1),
		parents:  map[string][]string{id(2): ids(0, 1)},
		children: map[string][]string{id(0): ids(2), id(1): ids(2)},
		latest:   ids(2), trimHorizon: ids(0, 1),
		waves: [][]string{ids(0, 1), ids(2)},
		ready: []readyCase{
			{done: ids(0), want: ids(1)},
			{done: ids(1), want: ids(0)},
			{done: ids(0, 1), want: ids(2)},
			{done: ids(0, 1, 2), want: nil},
		},
	},
	{
		name: "split of a child",
		shards: []Shard{closed(shard(0, 0, 1, 1)), closed(shard(1, 0, 2, 4, 0)), shard(2, 2, 4, 4, 0),
			shard(3, 0, 1, 4, 1), shard(4, 1, 2, 4, 1)},
		open: ids(2, 3, 4), closed: ids(0, 1),
		children: map[string][]string{id(0): ids(1, 2), id(1): ids(3, 4), id(2): nil},
		latest:   ids(2, 3, 4), trimHorizon: ids(0),
		waves: [][]string{ids(0), ids(1, 2), ids(3, 4)},
		ready: []readyCase{{done: ids(0, 2), want: ids(1)}},
	},
	{
		name: "merge of split children",
		shards: []Shard{closed(shard(0, 0, 1, 1)), closed(shard(1, 0, 1, 2, 0)), closed(shard(2, 1, 2, 2, 0)),
			shard(3, 0, 1, 1, 2, 1)},
		open: ids(3), closed: ids(0, 1, 2),
		parents: map[string][]string{id(3): ids(1, 2)},
		latest:  ids(3), trimHorizon: ids(0),
		waves: [][]string{ids(0), ids(1, 2), ids(3)},
		ready: []readyCase{{done: ids(0, 1), want: ids(2)}, {done: ids(0, 2), want: ids(1)}},
	},
	{
		name:     "parent trimmed",
		shards:   []Shard{shard(1, 0, 1, 2, 0), shard(2, 1, 2, 2, 0)},
		open:     ids(1, 2),
		parents:  map[string][]string{id(1): ids(0)},
		children: map[string][]string{id(0): ids(1, 2)}, // a trimmed shard still has children
		latest:   ids(1, 2), trimHorizon: ids(1, 2),
		waves: [][]string{ids(1, 2)},
	},
	{
		name:    "both parents of a merge trimmed",
		shards:  []Shard{shard(2, 0, 1, 1, 0, 1)},
		open:    ids(2),
		parents: map[string][]string{id(2): ids(0, 1)},
		latest:  ids(2), trimHorizon: ids(2),
		waves: [][]string{ids(2)},
	},
	{
		name:   "one parent of a merge trimmed",
		shards: []Shard{closed(shard(1, 1, 2, 2)), shard(2, 0, 1, 1, 0, 1)},
		open:   ids(2), closed: ids(1),
		parents: map[string][]string{id(2): ids(0, 1)},
		latest:  ids(2), trimHorizon: ids(1),
		waves: [][]string{ids(1), ids(2)},
	},
	{
		name:     "empty stream",
		coverage: ErrNoShards,
	},
	{
		name:        "closed shard without children (stream being deleted)",
		shards:      []Shard{closed(shard(0, 0, 1, 1))},
		closed:      ids(0),
		children:    map[string][]string{id(0): nil},
		trimHorizon: ids(0),
		waves:       [][]string{ids(0)},
		coverage:    ErrGap,
	},
	{
		name:   "listing taken mid-split misses a child",
		shards: []Shard{closed(shard(0, 0, 1, 1)), shard(1, 0, 1, 2, 0)},
		open:   ids(1), closed: ids(0),
		latest: ids(1), trimHorizon: ids(0),
		waves:    [][]string{ids(0), ids(1)},
		coverage: ErrGap,
	},
	{
		name:   "listing taken mid-merge shows parents open",
		shards: []Shard{shard(0, 0, 1, 2), shard(1, 1, 2, 2), shard(2, 0, 1, 1, 0, 1)},
		open:   ids(0, 1, 2),
		latest: ids(0, 1, 2), trimHorizon: ids(0, 1),
		waves:    [][]string{ids(0, 1), ids(2)},
		coverage: ErrOverlap,
	},
	{
		name: "self parent, repeated parent and empty parent are ignored",
		shards: []Shard{closed(shard(0, 0, 1, 1)),
			{ID: id(1), ParentIDs: []string{id(1), id(0), "", id(0)}, HashKeyStart: keyAt(0, 1), HashKeyEnd: MaxHashKey()}},
		open: ids(1), closed: ids(0),
		parents:  map[string][]string{id(1): ids(0)},
		children: map[string][]string{id(1): nil, "": nil},
		latest:   ids(1), trimHorizon: ids(0),
		waves: [][]string{ids(0), ids(1)},
	},
	{
		name:   "repeated shard id: the last wins",
		shards: []Shard{shard(0, 0, 1, 1), shard(1, 0, 1, 2, 0), shard(2, 1, 2, 2, 0), closed(shard(0, 0, 1, 1))},
		open:   ids(1, 2), closed: ids(0),
		latest: ids(1, 2), trimHorizon: ids(0),
		waves: [][]string{ids(0), ids(1, 2)},
	},
	{
		// 0..3 -> 0 splits into 4,5; 5 merges with 1 into 6; 2 and 3 merge into 7; 6 and 7 merge into 8.
		name: "four shards, splits and merges in several places",
		shards: []Shard{
			closed(shard(0, 0, 2, 8)), closed(shard(1, 2, 4, 8)), closed(shard(2, 4, 6, 8)), closed(shard(3, 6, 8, 8)),
			shard(4, 0, 1, 8, 0), closed(shard(5, 1, 2, 8, 0)), closed(shard(6, 1, 4, 8, 5, 1)),
			closed(shard(7, 4, 8, 8, 3, 2)), shard(8, 1, 8, 8, 6, 7),
		},
		open: ids(4, 8), closed: ids(0, 1, 2, 3, 5, 6, 7),
		parents:  map[string][]string{id(7): ids(2, 3), id(8): ids(6, 7)},
		children: map[string][]string{id(1): ids(6), id(5): ids(6), id(3): ids(7)},
		latest:   ids(4, 8), trimHorizon: ids(0, 1, 2, 3),
		waves: [][]string{ids(0, 1, 2, 3), ids(4, 5, 7), ids(6), ids(8)},
		ready: []readyCase{{done: ids(0, 1, 2, 3, 5, 6), want: ids(4, 7)}},
	},
}

func TestGraph(t *testing.T) {
	for _, tc := range graphCases {
		t.Run(tc.name, func(t *testing.T) {
			g := New(tc.shards)
			assert.Equal(t, len(slices.Compact(slices.Sorted(slices.Values(append(tc.open, tc.closed...))))), g.Len(), "Len")
			assert.Equal(t, tc.open, g.Open(), "Open")
			assert.Equal(t, tc.closed, g.Closed(), "Closed")
			for id, want := range tc.parents {
				assert.Equal(t, want, g.Parents(id), "Parents(%s)", id)
			}
			for id, want := range tc.children {
				assert.Equal(t, want, g.Children(id), "Children(%s)", id)
			}
			assert.Equal(t, tc.latest, g.StartShards(Latest), "StartShards(Latest)")
			assert.Equal(t, tc.trimHorizon, g.StartShards(TrimHorizon), "StartShards(TrimHorizon)")
			assert.Equal(t, tc.trimHorizon, g.StartShards(AtTimestamp), "StartShards(AtTimestamp)")
			assert.Equal(t, tc.waves, waves(g), "Ready waves")
			for _, r := range tc.ready {
				assert.Equal(t, r.want, g.Ready(func(id string) bool { return slices.Contains(r.done, id) }), "Ready with %v done", r.done)
			}
			err := g.Coverage()
			if tc.coverage == nil {
				assert.NoError(t, err, "Coverage")
			} else {
				assert.ErrorIs(t, err, tc.coverage, "Coverage")
			}
		})
	}
}

func TestLineage(t *testing.T) {
	g := New(graphCases[len(graphCases)-1].shards) // four shards, splits and merges
	for _, tc := range []struct {
		id                     string
		descendants, ancestors []string
	}{
		{id(0), ids(4, 5, 6, 8), nil},
		{id(1), ids(6, 8), nil},
		{id(2), ids(7, 8), nil},
		{id(4), nil, ids(0)},
		{id(6), ids(8), ids(0, 1, 5)},
		{id(8), nil, ids(0, 1, 2, 3, 5, 6, 7)},
		{"shardId-999999999999", nil, nil},
	} {
		assert.Equal(t, tc.descendants, g.Descendants(tc.id), "Descendants(%s)", tc.id)
		assert.Equal(t, tc.ancestors, g.Ancestors(tc.id), "Ancestors(%s)", tc.id)
	}

	trimmed := New([]Shard{shard(1, 0, 1, 2, 0), closed(shard(2, 1, 2, 2, 0)), shard(3, 1, 2, 2, 2)})
	assert.Equal(t, ids(1, 2, 3), trimmed.Descendants(id(0)), "descendants of a trimmed shard")
	assert.Equal(t, ids(2), trimmed.Ancestors(id(3)), "trimmed ancestors are left out")
}

func TestGraphSharesNoMemory(t *testing.T) {
	in := []Shard{closed(shard(0, 0, 1, 1)), shard(1, 0, 1, 2, 0), shard(2, 1, 2, 2, 0)}
	g := New(in)
	in[1].ParentIDs[0] = "changed"
	in[1].HashKeyStart.SetInt64(42)
	in[0].EndingSequence = ""

	got, ok := g.Shard(id(1))
	require.True(t, ok)
	assert.Equal(t, ids(0), got.ParentIDs)
	assert.Zero(t, got.HashKeyStart.Sign())
	assert.Equal(t, ids(0), g.Closed())

	got.ParentIDs[0] = "changed"
	got.HashKeyEnd.SetInt64(42)
	again, _ := g.Shard(id(1))
	assert.Equal(t, ids(0), again.ParentIDs)
	assert.Equal(t, 0, again.HashKeyEnd.Cmp(shard(1, 0, 1, 2).HashKeyEnd))

	children := g.Children(id(0))
	children[0] = "changed"
	assert.Equal(t, ids(1, 2), g.Children(id(0)))

	_, ok = g.Shard("shardId-999999999999")
	assert.False(t, ok)
}

func TestReadyCallsDoneOncePerShard(t *testing.T) {
	g := New(graphCases[len(graphCases)-1].shards)
	calls := map[string]int{}
	ready := g.Ready(func(id string) bool { calls[id]++; return id == shardID(0) })
	assert.Equal(t, ids(1, 2, 3, 4, 5), ready)
	assert.Len(t, calls, g.Len())
	for id, n := range calls {
		assert.Equal(t, 1, n, "done(%s) calls", id)
	}
}

func TestInitialPosition(t *testing.T) {
	assert.Equal(t, Latest, InitialPosition(0), "the zero value is Latest")
	assert.Equal(t, "LATEST", Latest.String())
	assert.Equal(t, "TRIM_HORIZON", TrimHorizon.String())
	assert.Equal(t, "AT_TIMESTAMP", AtTimestamp.String())
	assert.Equal(t, "InitialPosition(7)", InitialPosition(7).String())
	assert.Nil(t, New([]Shard{shard(0, 0, 1, 1)}).StartShards(InitialPosition(7)))
}

// TestConcurrentUse runs every read method from several goroutines; -race
// reports any write.
func TestConcurrentUse(t *testing.T) {
	g := New(graphCases[len(graphCases)-1].shards)
	want := waves(g)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				assert.Equal(t, want, waves(g))
				_ = g.Coverage()
				g.Open()
				g.Closed()
				g.StartShards(TrimHorizon)
				g.Descendants(id(0))
				g.Ancestors(id(8))
				g.Parents(id(8))
				g.Children(id(0))
				g.Shard(id(4))
			}
		})
	}
	wg.Wait()
}

func TestNewChecked(t *testing.T) {
	valid := graphCases[len(graphCases)-1].shards
	g, err := NewChecked(valid)
	require.NoError(t, err)
	assert.Equal(t, waves(New(valid)), waves(g))

	trimmedParents := []Shard{shard(1, 0, 1, 2, 0), shard(2, 1, 2, 2, 0), shard(3, 0, 1, 1, 3)}
	_, err = NewChecked(trimmedParents)
	assert.NoError(t, err, "missing parents and self parents are not errors")

	for _, tc := range []struct {
		name   string
		shards []Shard
		want   error
		msg    string
	}{
		{"missing id", []Shard{{HashKeyStart: big.NewInt(0), HashKeyEnd: big.NewInt(1)}},
			ErrInvalidShard, "shard without id at index 0: ID: missing"},
		{"missing start", []Shard{shard(0, 0, 1, 1), {ID: id(1), HashKeyEnd: big.NewInt(1)}},
			ErrInvalidShard, `shard "shardId-000000000001" at index 1: HashKeyStart: missing`},
		{"missing end", []Shard{{ID: id(0), HashKeyStart: big.NewInt(1)}},
			ErrInvalidShard, "HashKeyEnd: missing"},
		{"negative start", []Shard{{ID: id(0), HashKeyStart: big.NewInt(-1), HashKeyEnd: big.NewInt(1)}},
			ErrInvalidShard, "HashKeyStart: -1 is negative"},
		{"end above 2^128-1", []Shard{{ID: id(0), HashKeyStart: big.NewInt(0), HashKeyEnd: keyAt(1, 1)}},
			ErrInvalidShard, "HashKeyEnd: 340282366920938463463374607431768211456 is above 2^128-1"},
		{"start above end", []Shard{{ID: id(0), HashKeyStart: big.NewInt(2), HashKeyEnd: big.NewInt(1)}},
			ErrInvalidShard, "HashKeyStart: 2 is above HashKeyEnd 1"},
		{"duplicate", []Shard{shard(0, 0, 1, 1), shard(1, 0, 1, 1), shard(0, 0, 1, 1)},
			ErrDuplicateShard, `shard "shardId-000000000000" at index 2: listed twice`},
		{"cycle", []Shard{shard(0, 0, 1, 1, 2), shard(1, 0, 1, 1, 0), shard(2, 0, 1, 1, 1), shard(3, 0, 1, 1, 2), shard(4, 0, 1, 1)},
			ErrCycle, "shards [shardId-000000000000 shardId-000000000001 shardId-000000000002 shardId-000000000003] never become ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewChecked(tc.shards)
			assert.Nil(t, g)
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestCoverageErrors(t *testing.T) {
	max := MaxHashKey()
	for _, tc := range []struct {
		name   string
		shards []Shard
		want   CoverageError
		msg    string
	}{
		{
			name: "no shards",
			want: CoverageError{Err: ErrNoShards, From: big.NewInt(0), To: max},
			msg:  "shardgraph: no shards: keys 0 to 340282366920938463463374607431768211455 covered by no open shard",
		},
		{
			name:   "no open shard",
			shards: []Shard{closed(shard(0, 0, 1, 1))},
			want:   CoverageError{Err: ErrGap, From: big.NewInt(0), To: max},
			msg:    "covered by no open shard",
		},
		{
			name:   "gap at the bottom",
			shards: []Shard{shard(1, 1, 2, 2)},
			want:   CoverageError{Err: ErrGap, Above: id(1), From: big.NewInt(0), To: new(big.Int).Sub(keyAt(1, 2), big.NewInt(1))},
			msg:    "keys 0 to 170141183460469231731687303715884105727 covered by no open shard, below shardId-000000000001",
		},
		{
			name:   "gap at the top",
			shards: []Shard{shard(1, 0, 1, 2), closed(shard(2, 1, 2, 2))},
			want:   CoverageError{Err: ErrGap, Below: id(1), From: keyAt(1, 2), To: max},
			msg:    "covered by no open shard, above shardId-000000000001",
		},
		{
			name:   "gap in the middle",
			shards: []Shard{shard(1, 0, 1, 4), shard(4, 3, 4, 4), shard(2, 1, 2, 4)},
			want:   CoverageError{Err: ErrGap, Below: id(2), Above: id(4), From: keyAt(2, 4), To: new(big.Int).Sub(keyAt(3, 4), big.NewInt(1))},
			msg:    "covered by no open shard, between shardId-000000000002 and shardId-000000000004",
		},
		{
			name: "one-key gap",
			shards: []Shard{{ID: id(1), HashKeyStart: big.NewInt(0), HashKeyEnd: big.NewInt(9)},
				{ID: id(2), HashKeyStart: big.NewInt(11), HashKeyEnd: max}},
			want: CoverageError{Err: ErrGap, Below: id(1), Above: id(2), From: big.NewInt(10), To: big.NewInt(10)},
			msg:  "keys 10 to 10 covered by no open shard",
		},
		{
			name: "overlap",
			shards: []Shard{{ID: id(1), HashKeyStart: big.NewInt(0), HashKeyEnd: big.NewInt(10)},
				{ID: id(2), HashKeyStart: big.NewInt(8), HashKeyEnd: max}},
			want: CoverageError{Err: ErrOverlap, Below: id(1), Above: id(2), From: big.NewInt(8), To: big.NewInt(10)},
			msg:  "shardgraph: overlapping hash key ranges: keys 8 to 10 covered by both shardId-000000000001 and shardId-000000000002",
		},
		{
			name: "one shard inside another",
			shards: []Shard{{ID: id(1), HashKeyStart: big.NewInt(0), HashKeyEnd: max},
				{ID: id(2), HashKeyStart: big.NewInt(5), HashKeyEnd: big.NewInt(6)}},
			want: CoverageError{Err: ErrOverlap, Below: id(1), Above: id(2), From: big.NewInt(5), To: big.NewInt(6)},
		},
		{
			name:   "same range twice (a merge listed before its parents closed)",
			shards: []Shard{shard(0, 0, 1, 1), shard(1, 0, 1, 1, 0)},
			want:   CoverageError{Err: ErrOverlap, Below: id(0), Above: id(1), From: big.NewInt(0), To: max},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := New(tc.shards).Coverage()
			var got *CoverageError
			require.ErrorAs(t, err, &got)
			assert.ErrorIs(t, err, tc.want.Err)
			assert.Equal(t, tc.want.Err, got.Err)
			assert.Equal(t, tc.want.Below, got.Below, "Below")
			assert.Equal(t, tc.want.Above, got.Above, "Above")
			assert.Equal(t, tc.want.From.String(), got.From.String(), "From")
			assert.Equal(t, tc.want.To.String(), got.To.String(), "To")
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestCoverageNoShardsIsAGap(t *testing.T) {
	err := New(nil).Coverage()
	assert.ErrorIs(t, err, ErrNoShards)
	assert.ErrorIs(t, err, ErrGap)
	assert.NotErrorIs(t, err, ErrOverlap)
	assert.NotErrorIs(t, New([]Shard{closed(shard(0, 0, 1, 1))}).Coverage(), ErrNoShards)
}

func TestCoverageInvalidOpenShard(t *testing.T) {
	err := New([]Shard{{ID: id(0), HashKeyStart: big.NewInt(0)}}).Coverage()
	require.ErrorIs(t, err, ErrInvalidShard)
	assert.Equal(t, `shardgraph: invalid shard: shard "shardId-000000000000": HashKeyEnd: missing`, err.Error())
	// closed shards play no part in coverage
	assert.NoError(t, New([]Shard{closed(Shard{ID: id(0)}), shard(1, 0, 1, 1, 0)}).Coverage())
}

func TestShardErrorMessage(t *testing.T) {
	err := error(&ShardError{Err: ErrInvalidShard, Index: 3, ShardID: id(7), Field: "HashKeyRange", Reason: "missing"})
	assert.Equal(t, `shardgraph: invalid shard: shard "shardId-000000000007" at index 3: HashKeyRange: missing`, err.Error())
	assert.True(t, strings.HasPrefix((&CycleError{ShardIDs: ids(1)}).Error(), ErrCycle.Error()))
	assert.True(t, errors.Is(&CycleError{}, ErrCycle))
}
