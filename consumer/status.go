package consumer

import (
	"fmt"
	"time"

	"github.com/gokcl/kcl/checkpoint"
)

// ShardState is where a shard held by this worker is in its life.
type ShardState uint8

// The states of a shard, in the order a shard goes through them.
const (
	// ShardStarting: the lease was acquired and the shard's worker started.
	ShardStarting ShardState = iota + 1
	// ShardWaitingForParents: the shard's parents are not processed to their
	// end yet; no record of it is read before they are.
	ShardWaitingForParents
	// ShardInitializing: NewProcessor and InitializeShard are being called.
	ShardInitializing
	// ShardProcessing: records are being fetched and processed.
	ShardProcessing
	// ShardEnding: the shard was read to its end; ShardEnded, the SHARD_END
	// checkpoint and the children's leases follow.
	ShardEnding
	// ShardShuttingDown: the consumer is stopping; ShutdownRequested, the
	// final checkpoint and the release follow.
	ShardShuttingDown
	// ShardHandingOff: another worker asked for the lease (a graceful
	// hand-off, to even the load); ShutdownRequested, the final checkpoint
	// and the release to that worker follow, as for a shutdown. A worker
	// whose consumer stops while a hand-off is pending hands off too.
	ShardHandingOff
	// ShardStopped: the shard's worker exited (the shard ended, the lease was
	// lost or released). Status never shows it; HookShardState does.
	ShardStopped
)

var shardStateNames = [...]string{
	ShardStarting:          "starting",
	ShardWaitingForParents: "waiting_for_parents",
	ShardInitializing:      "initializing",
	ShardProcessing:        "processing",
	ShardEnding:            "ending",
	ShardShuttingDown:      "shutting_down",
	ShardHandingOff:        "handing_off",
	ShardStopped:           "stopped",
}

// String returns the state's name, as metric labels and JSON spell it, such
// as "waiting_for_parents".
func (s ShardState) String() string {
	if int(s) < len(shardStateNames) && shardStateNames[s] != "" {
		return shardStateNames[s]
	}
	return "unknown"
}

// MarshalText returns the state's name.
func (s ShardState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (s *ShardState) UnmarshalText(b []byte) error {
	for i, n := range shardStateNames {
		if n != "" && n == string(b) {
			*s = ShardState(i)
			return nil
		}
	}
	return fmt.Errorf("consumer: unknown shard state %q", b)
}

// Status is a snapshot of a Consumer, for health checks and operators'
// views; see Consumer.Status.
type Status struct {
	// Stream is Config.StreamName, or StreamARN, and empty for a
	// multi-stream consumer (each shard names its stream); App is
	// Config.AppName; WorkerID is the id this worker writes in the lease
	// table.
	Stream   string `json:"stream"`
	App      string `json:"app"`
	WorkerID string `json:"worker"`
	// Running is set from the moment Run starts until it returns.
	Running bool `json:"running"`
	// Stopping is set once Run has begun its graceful shutdown.
	Stopping bool `json:"stopping"`
	// Shards are the leases this worker holds, sorted by lease key: by
	// shard id, or by stream and then shard id.
	Shards []ShardStatus `json:"shards"`
	// BufferedBytes is the memory budget in use: record bytes fetched and
	// not yet processed; MaxBufferedBytes is Config.MaxBufferedBytes.
	BufferedBytes    int64 `json:"buffered_bytes"`
	MaxBufferedBytes int64 `json:"max_buffered_bytes"`
	// LastTakerScan is when the lease table was last read (zero before the
	// first scan).
	LastTakerScan time.Time `json:"last_taker_scan,omitzero"`
	// Problems say why the worker is unhealthy (a lease not renewed for
	// longer than expected, Run not running); empty when it is healthy.
	Problems []string `json:"problems,omitempty"`
}

// Healthy reports whether Run is running and nothing is wrong: what a
// health check answers.
func (s Status) Healthy() bool { return s.Running && len(s.Problems) == 0 }

// ShardStatus is one held lease in a Status.
type ShardStatus struct {
	// Stream is the shard's stream in a multi-stream consumer: its name, and
	// its identifier (lease.StreamID) in StreamID; both empty otherwise.
	Stream   string `json:"stream,omitempty"`
	StreamID string `json:"stream_id,omitempty"`
	// ShardID is the shard's id; State what its worker is doing.
	ShardID string     `json:"shard"`
	State   ShardState `json:"state"`
	// Checkpoint is the lease's checkpoint as this worker last wrote (or
	// read) it; a deferred checkpoint is not in it until written.
	Checkpoint checkpoint.Position `json:"checkpoint"`
	// MillisBehindLatest is how far behind the newest record of the shard
	// processing is, now: the last response's (or, with enhanced fan-out,
	// subscription event's) MillisBehindLatest or, while a batch is being
	// processed, that batch's plus the time since it was fetched, so that
	// a processor stuck on a batch shows a lag that grows. Zero before the
	// first batch.
	MillisBehindLatest int64 `json:"millis_behind_latest"`
	// RecordsProcessed counts the user records processed on this shard
	// since this worker took the lease.
	RecordsProcessed int64 `json:"records_processed"`
	// LastFetch is when the last batch was fetched (or its subscription
	// event came); ProcessingSince is when the ProcessRecords call in
	// progress began (zero when none is).
	LastFetch       time.Time `json:"last_fetch,omitzero"`
	ProcessingSince time.Time `json:"processing_since,omitzero"`
	// LastRenewal is when the last successful write of the lease (renewal,
	// take or checkpoint) started.
	LastRenewal time.Time `json:"last_renewal,omitzero"`
	// HandOffTo names the worker that asked for the lease, while a
	// graceful hand-off to it is pending (this worker learned of it at its
	// last write, and releases the lease to it once its batch in flight is
	// processed and checkpointed); empty otherwise.
	HandOffTo string `json:"hand_off_to,omitempty"`
}

// Status returns a snapshot of the consumer: the leases it holds, each
// shard's state, lag and checkpoint, the memory budget in use, and what is
// wrong, if anything. It does no I/O and may be called from any goroutine,
// before, during and after Run (but not from a hook, except as
// HookConsumerStarted allows); the demo's live view and examples/worker's
// /healthz are built on it.
//
// A worker is unhealthy (Problems says why) when Run is not running, when a
// lease it holds has gone more than two renewal intervals without a
// successful write (it is dropped at 90% of FailoverTime, 2.7 intervals),
// or when the lease table has not been read for three taker intervals.
func (c *Consumer) Status() Status {
	st := Status{Stream: c.stream, App: c.cfg.AppName, WorkerID: c.cfg.WorkerID,
		Running: c.running.Load(), Stopping: c.stopping.Load(), MaxBufferedBytes: c.cfg.MaxBufferedBytes, Shards: []ShardStatus{}}
	if !st.Running {
		st.Problems = append(st.Problems, "not running")
	}
	if !c.ready.Load() {
		return st // Run has not made its lease manager yet
	}
	now := time.Now()
	st.BufferedBytes = c.budget.inUse.Load()
	st.LastTakerScan = c.mgr.LastScan()
	renew := c.mgr.Config().RenewInterval
	for _, h := range c.mgr.HeldLeases() {
		ss := c.shardStatus(h.Lease.Key, now)
		ss.ShardID, ss.Stream, ss.StreamID = h.Lease.Shard(), h.Lease.StreamID.Name, h.Lease.StreamID.String()
		ss.Checkpoint, ss.LastRenewal = h.Lease.Checkpoint, h.LastRenewed
		if h.Lease.HandOffPending() {
			ss.HandOffTo = h.Lease.Owner
		}
		st.Shards = append(st.Shards, ss)
		if late := now.Sub(h.LastRenewed); st.Running && late > 2*renew {
			st.Problems = append(st.Problems, fmt.Sprintf("lease %s not renewed for %v", h.Lease.Key, late.Round(time.Millisecond)))
		}
	}
	if st.Running {
		read := st.LastTakerScan
		if read.IsZero() {
			read = c.mgrSince
		}
		if late := now.Sub(read); late > 3*c.cfg.TakerInterval {
			st.Problems = append(st.Problems, fmt.Sprintf("lease table not read for %v", late.Round(time.Millisecond)))
		}
	}
	return st
}

// shardStatus is what the shard's worker reports, by lease key; a lease
// with no worker (just acquired, or acquired while the consumer stops) is
// starting.
func (c *Consumer) shardStatus(key string, now time.Time) ShardStatus {
	ss := ShardStatus{ShardID: key, State: ShardStarting}
	s := c.stats.get(key)
	if s == nil {
		return ss
	}
	ss.State = ShardState(s.state.Load())
	ss.MillisBehindLatest = s.millisBehind(now)
	ss.RecordsProcessed = s.records.Load()
	ss.LastFetch = unixTime(s.fetchedAt.Load())
	ss.ProcessingSince = unixTime(s.procSince.Load())
	return ss
}
