package consumer

import (
	"github.com/gokcl/kcl/lease"
	"github.com/gokcl/kcl/shardgraph"
)

// lineage judges, from a shard listing and the lease table, whether a parent
// shard still blocks its child. It is a snapshot: build a new one to judge
// again.
//
// A parent is done when it was processed to its end (its lease is at
// SHARD_END, or this worker finished it a moment ago) or when this
// application will never process it: it was trimmed from the stream, or it
// is an ancestor of where the application started (with Latest, the open
// shards' parents are in the listing but never leased). A parent that has no
// lease yet but will get one blocks its child: its own parent is not finished
// yet (a split child, merged with another shard before the consumer caught
// up), or its lease could not be created yet. Which of the two a leaseless
// parent in the listing is follows from the lease table:
//
//   - one of its ancestors has a lease: the application reaches it through
//     that lineage;
//   - the other parent of the child has a lease (or such an ancestor): a
//     merge joins two shards that were open at the same moment, so if the
//     application reads one of them it started before that moment and reads
//     the other too;
//   - otherwise it is an ancestor of where the application started.
type lineage struct {
	g         *shardgraph.Graph      // nil before the first complete listing
	leases    map[string]lease.Lease // nil before the first table scan
	finished  func(shardID string) bool
	ancestors map[string]bool // memo of ancestorLeased
}

func newLineage(g *shardgraph.Graph, leases []lease.Lease, finished func(string) bool) *lineage {
	ln := &lineage{g: g, finished: finished}
	if leases != nil {
		ln.leases = make(map[string]lease.Lease, len(leases))
		for _, l := range leases {
			ln.leases[l.Key] = l
		}
	}
	return ln
}

func (ln *lineage) leased(id string) bool {
	_, ok := ln.leases[id]
	return ok
}

// done reports whether the shard was processed to its end.
func (ln *lineage) done(id string) bool {
	if ln.finished != nil && ln.finished(id) {
		return true
	}
	l, ok := ln.leases[id]
	return ok && l.Finished()
}

func (ln *lineage) listed(id string) bool {
	if ln.g == nil {
		return false
	}
	_, ok := ln.g.Shard(id)
	return ok
}

// parentDone reports whether parent no longer blocks child.
func (ln *lineage) parentDone(child, parent string) bool {
	switch {
	case ln.done(parent):
		return true
	case ln.leased(parent):
		return false
	case ln.leases == nil || !ln.listed(child):
		// No table yet, or a listing older than the child: it cannot tell
		// a trimmed parent from one created after the listing.
		return false
	case !ln.listed(parent):
		return true // trimmed: the listing has its child but not it
	}
	return !ln.reached(child, parent)
}

// parentsDone reports whether none of the child's parents blocks it.
func (ln *lineage) parentsDone(child string, parents []string) bool {
	for _, p := range parents {
		if !ln.parentDone(child, p) {
			return false
		}
	}
	return true
}

// reached reports whether the application processes parent, a listed shard
// without a lease: through a leased ancestor, or because the child's other
// parent is processed (see lineage).
func (ln *lineage) reached(child, parent string) bool {
	return ln.ancestorLeased(parent) || ln.otherParentReached(child, parent)
}

// otherParentReached reports whether the application processes a parent
// of child other than parent: it has a lease, or a leased ancestor.
func (ln *lineage) otherParentReached(child, parent string) bool {
	for _, q := range ln.g.Parents(child) {
		if q != parent && (ln.leased(q) || ln.done(q) || ln.ancestorLeased(q)) {
			return true
		}
	}
	return false
}

// mergedWithReached reports whether id is a parent of a merge child whose
// other parent the application processes: then it processes id too.
func (ln *lineage) mergedWithReached(id string) bool {
	for _, c := range ln.g.Children(id) {
		if ln.otherParentReached(c, id) {
			return true
		}
	}
	return false
}

// descendantLeased reports whether a descendant of id has a lease.
func (ln *lineage) descendantLeased(id string) bool {
	for _, d := range ln.g.Descendants(id) {
		if ln.leased(d) {
			return true
		}
	}
	return false
}

// ancestorLeased reports whether an ancestor of id has a lease: one in the
// listing, or a parent of a listed shard that retention removed from the
// listing before the application read it to its end (its worker finishes
// it, then the lineage leads on to its children, from their beginning).
// Answers are memoized: the shard syncer asks about every shard.
func (ln *lineage) ancestorLeased(id string) bool {
	if v, ok := ln.ancestors[id]; ok {
		return v
	}
	if ln.ancestors == nil {
		ln.ancestors = make(map[string]bool)
	}
	ln.ancestors[id] = false // Kinesis lineages have no cycles; this ends one anyway
	v := false
	for _, p := range ln.g.Parents(id) {
		if ln.leased(p) || ln.ancestorLeased(p) {
			v = true
			break
		}
	}
	ln.ancestors[id] = v
	return v
}
