package chaos

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gokcl/kcl/checkpoint"
)

// History is everything a run did that the checker judges.
type History struct {
	// Produced lists the user records written to the stream.
	Produced []Record
	// Deliveries lists every user record handed to a processor, in any order.
	Deliveries []Delivery
	// Writes lists the lease table writes the server applied, in any order.
	Writes []LeaseWrite
	// Final is the lease table after every worker stopped, by lease key.
	Final map[string]FinalLease
}

// Record is a user record the producer wrote: the N-th record (from 0) of
// partition key Key, stored in Shard at Pos.
type Record struct {
	Key   string
	N     int
	Shard string
	Pos   checkpoint.Position
}

// ID names the record as its data does: "<key>:<n>".
func (r Record) ID() string { return recordData(r.Key, r.N) }

func recordData(key string, n int) string { return key + ":" + strconv.Itoa(n) }

// Delivery is one user record handed to a processor.
type Delivery struct {
	Worker      string              // worker id
	Incarnation int                 // which process of that worker, from 0
	Line        int                 // line number in that process's output: its delivery order
	At          time.Time           // when the processor got it
	Shard       string              // the shard it was read from
	Pos         checkpoint.Position // its sequence and sub-sequence number
	Key         string              // its partition key
	N           int                 // its number among Key's records, from 0
}

// String names the delivery in findings: record, worker and incarnation,
// shard and time.
func (d Delivery) String() string {
	return fmt.Sprintf("%s:%d by %s#%d in %s at %s", d.Key, d.N, d.Worker, d.Incarnation, d.Shard, d.At.Format("15:04:05.000"))
}

// before orders deliveries in time; the records of one batch (one time) in
// the order the process printed them.
func (d Delivery) before(e Delivery) bool { return compareDeliveries(d, e) < 0 }

func compareDeliveries(a, b Delivery) int {
	return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Worker, b.Worker),
		cmp.Compare(a.Incarnation, b.Incarnation), cmp.Compare(a.Line, b.Line))
}

// LeaseOp is a kind of lease table write.
type LeaseOp uint8

// The writes: PutItem (a lease created), UpdateItem, DeleteItem.
const (
	OpCreate LeaseOp = iota
	OpUpdate
	OpDelete
)

// String names the operation in findings: create, update or delete.
func (o LeaseOp) String() string {
	return [...]string{"create", "update", "delete"}[o]
}

// LeaseWrite is a write of the lease table that the server applied, with the
// lease as it stood after it (an UpdateItem's ALL_NEW answer, a PutItem's
// item).
type LeaseWrite struct {
	Op       LeaseOp
	Via      string    // the worker whose requests carried it
	Sent, At time.Time // sent to the server; answered
	// Lost reports that the worker never received the answer (an injected
	// lost answer): it does not know the write was applied.
	Lost bool
	// KeepsCounter reports an update that leaves leaseCounter alone: the
	// start of a graceful hand-off, which like the KCL 3.x's changes only
	// leaseOwner and checkpointOwner. Every other write sets the counter.
	KeepsCounter bool

	Key             string              // leaseKey
	Owner           string              // leaseOwner
	CheckpointOwner string              // checkpointOwner: the holder while a hand-off is under way
	Counter         int64               // leaseCounter
	Checkpoint      checkpoint.Position // checkpoint and its sub-sequence number
}

// Holder is the worker holding the lease after the write: the checkpoint
// owner during a hand-off, else the owner.
func (w LeaseWrite) Holder() string {
	if w.CheckpointOwner != "" {
		return w.CheckpointOwner
	}
	return w.Owner
}

// String describes the write in findings: the lease after it, and how it
// was made.
func (w LeaseWrite) String() string {
	s := fmt.Sprintf("%s %s via %s at %s: owner %q", w.Op, w.Key, w.Via, w.At.Format("15:04:05.000"), w.Owner)
	if w.CheckpointOwner != "" {
		s += fmt.Sprintf(" checkpoint owner %q", w.CheckpointOwner)
	}
	s += fmt.Sprintf(" counter %d checkpoint %s", w.Counter, w.Checkpoint)
	if w.KeepsCounter {
		s += " (hand-off: counter kept)"
	}
	if w.Lost {
		s += " (answer lost)"
	}
	return s
}

// FinalLease is a lease as the table holds it at the end.
type FinalLease struct {
	Owner, CheckpointOwner string
	Counter                int64
	Checkpoint             checkpoint.Position
}

// parseDelivery reads a line of examples/worker started with -stamp:
// "<unix ns> <shard> <seq>/<sub> <key> <key>:<n>".
func parseDelivery(s string) (Delivery, error) {
	f := strings.Fields(s)
	if len(f) != 5 {
		return Delivery{}, fmt.Errorf("%q: want 5 fields", s)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return Delivery{}, fmt.Errorf("%q: time: %w", s, err)
	}
	pos, err := checkpoint.Parse(f[2])
	if err != nil {
		return Delivery{}, fmt.Errorf("%q: position: %w", s, err)
	}
	key, n, ok := parseData(f[4])
	if !ok || key != f[3] {
		return Delivery{}, fmt.Errorf("%q: data is not <partition key>:<n>", s)
	}
	return Delivery{At: time.Unix(0, ns), Shard: f[1], Pos: pos, Key: key, N: n}, nil
}

func parseData(s string) (key string, n int, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	return s[:i], n, err == nil && n >= 0
}
