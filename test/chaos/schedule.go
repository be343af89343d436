package chaos

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gokcl/kcl/test/chaos/faultproxy"
)

// Action is something the schedule does to the workers, the network or the
// stream.
type Action uint8

// The actions. Each starts an episode whose length is Event.For.
const (
	// Kill sends SIGKILL to a running worker and restarts it For later.
	Kill Action = iota
	// Restart stops a running worker gracefully (SIGTERM) and starts it
	// again For after it exited.
	Restart
	// Pause stops a running worker with SIGSTOP for For (longer than the
	// failover time: it comes back as a zombie), then resumes it.
	Pause
	// Partition cuts a running worker off from both servers for For: its
	// requests hang until then.
	Partition
	// Storm multiplies every proxy's fault probabilities for For.
	Storm
	// Split splits an open shard in the middle of its hash key range.
	Split
	// Merge merges two adjacent open shards.
	Merge
	// Lineage pauses the owner of a shard P, splits P into B and X, then
	// merges B with its neighbour A into C while P is unfinished, and
	// resumes P's owner For after the pause began.
	Lineage
	// ShardCount changes the number of open shards by one with
	// UpdateShardCount.
	ShardCount

	numActions
)

var actionNames = [numActions]string{"kill", "restart", "pause", "partition", "storm", "split", "merge", "lineage", "shard-count"}

// String names the action as the schedule and the summaries print it.
func (a Action) String() string {
	if a < numActions {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", a)
}

// resharding reports whether a runs on the resharding timeline.
func (a Action) resharding() bool { return a >= Split }

// Event is one scheduled action.
type Event struct {
	At     time.Duration // from the start of the chaos phase
	Action Action
	// Pick chooses the target (a worker, a shard) among those eligible when
	// the event happens, as a fraction of their number.
	Pick float64
	// For is the length of the action's episode (see the actions).
	For time.Duration
}

// String describes the event for the run's log: when, what, which target
// and for how long.
func (e Event) String() string {
	return fmt.Sprintf("%6.2fs %-11s pick %.3f for %v", e.At.Seconds(), e.Action, e.Pick, e.For.Round(time.Millisecond))
}

// Profile is the shape of a run.
type Profile struct {
	Name    string // the name make chaos takes in PROFILE
	Shards  int    // open shards at the start
	Workers int    // worker processes at the start
	// Chaos is the length of the phase with faults, process events and
	// reshards; the producer writes throughout it.
	Chaos time.Duration
	// Drain bounds the wait, once the chaos stops, for every record to be
	// processed.
	Drain time.Duration
	// FailoverTime is the workers' lease failover time.
	FailoverTime time.Duration
	// Round is the time between two producer rounds; each writes one
	// record (plain, or an aggregate of up to MaxAggregate user records) for
	// each of Keys partition keys.
	Round        time.Duration
	Keys         int
	MaxAggregate int
	// Faults is every proxy's fault mix outside storms (storms multiply it
	// by StormFactor), and MaxLatency bounds a Latency fault.
	Faults      faultproxy.Mix
	StormFactor float64
	MaxLatency  time.Duration
	// ProcessFail and ProcessPanic are the probabilities that a worker's
	// ProcessRecords returns an error, or panics, before processing the
	// batch: the consumer must retry it, never skip it.
	ProcessFail, ProcessPanic float64
	// Events is how many of each action the chaos phase has.
	Events map[Action]int
}

// baseFaults is the fault mix of every request outside storms: 16% faulty,
// 4% applied by the server but answered with a fault. In a storm (×4), two
// requests in three meet a fault, and a call often runs out of the SDK's
// three attempts.
var baseFaults = faultproxy.Mix{Throttle: 0.04, Internal: 0.03, Reset: 0.02, Latency: 0.03, LostReset: 0.02, Lost500: 0.02}

// Profiles are the runs the suite knows: short runs inside `make test`, long
// ones in `make chaos`.
var Profiles = map[string]Profile{
	"short": {
		Name: "short", Shards: 4, Workers: 3,
		Chaos: 35 * time.Second, Drain: 60 * time.Second, FailoverTime: 3 * time.Second,
		Round: 200 * time.Millisecond, Keys: 32, MaxAggregate: 8,
		Faults: baseFaults, StormFactor: 4, MaxLatency: 1200 * time.Millisecond,
		ProcessFail: 0.05, ProcessPanic: 0.02,
		Events: map[Action]int{Kill: 1, Restart: 1, Pause: 1, Partition: 1, Storm: 1, Lineage: 1, ShardCount: 1},
	},
	"long": {
		Name: "long", Shards: 4, Workers: 3,
		Chaos: 120 * time.Second, Drain: 120 * time.Second, FailoverTime: 3 * time.Second,
		Round: 200 * time.Millisecond, Keys: 32, MaxAggregate: 8,
		Faults: baseFaults, StormFactor: 4, MaxLatency: 1200 * time.Millisecond,
		ProcessFail: 0.05, ProcessPanic: 0.02,
		Events: map[Action]int{Kill: 4, Restart: 2, Pause: 3, Partition: 2, Storm: 3,
			Split: 2, Merge: 2, Lineage: 1, ShardCount: 2},
	},
}

// window is where in the chaos phase an action may start, as fractions of
// it: the lineage early, so that its slow steps end inside the phase.
func (a Action) window() (lo, hi float64) {
	switch a {
	case Lineage:
		return 0.1, 0.3
	case ShardCount:
		return 0.45, 0.75
	case Split, Merge:
		return 0.1, 0.8
	}
	return 0.05, 0.85
}

// length draws an episode's length.
func (a Action) length(r *rand.Rand, failover time.Duration) time.Duration {
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }
	switch a {
	case Kill:
		return between(500*time.Millisecond, 2*failover)
	case Restart:
		return between(0, 2*time.Second)
	case Pause, Lineage:
		return between(2*failover, 3*failover)
	case Partition:
		return between(failover, 2*failover)
	case Storm:
		return between(2*time.Second, 5*time.Second)
	}
	return 0
}

// NewSchedule draws the events of a run from its seed, sorted by time. The
// same seed and profile give the same schedule.
func NewSchedule(seed uint64, p Profile) []Event {
	r := rand.New(rand.NewPCG(seed, 0x5c4ed01e))
	var out []Event
	for a := range numActions {
		lo, hi := a.window()
		for range p.Events[a] {
			at := time.Duration((lo + (hi-lo)*r.Float64()) * float64(p.Chaos))
			out = append(out, Event{At: at.Round(time.Millisecond), Action: a, Pick: r.Float64(), For: a.length(r, p.FailoverTime)})
		}
	}
	slices.SortStableFunc(out, func(a, b Event) int { return cmp.Compare(a.At, b.At) })
	return out
}
