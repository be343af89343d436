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
	// Stream is Config.StreamName, or StreamARN; App is Config.AppName;
	// WorkerID is the id this worker writes in the lease table.
	Stream   string `json:"stream"`
	App      string `json:"app"`
	WorkerID string `json:"worker"`
	// Running is set from the moment Run starts until it returns.
	Running bool `json:"running"`
	// Stopping is set once Run has begun its graceful shutdown.
	Stopping bool `json:"stopping"`
	// Shards are the leases this worker holds, sorted by shard id.
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
	ShardID string     `json:"shard"`
	State   ShardState `json:"state"`
	// Checkpoint is the lease's checkpoint as this worker last wrote (or
	// read) it; a deferred checkpoint is not in it until written.
	Checkpoint checkpoint.Position `json:"checkpoint"`
	// MillisBehindLatest is how far behind the newest record of the shard
	// processing is, now: the last response's MillisBehindLatest or, while
	// a batch is being processed, that batch's plus the time since it was
	// fetched, so that a processor stuck on a batch shows a lag that grows.
	// Zero before the first batch.
	MillisBehindLatest int64 `json:"millis_behind_latest"`
	// RecordsProcessed counts the user records processed on this shard
	// since this worker took the lease.
	RecordsProcessed int64 `json:"records_processed"`
	// LastFetch is when the last batch was fetched; ProcessingSince is when
	// the ProcessRecords call in progress began (zero when none is).
	LastFetch       time.Time `json:"last_fetch,omitzero"`
	ProcessingSince time.Time `json:"processing_since,omitzero"`
	// LastRenewal is when the last successful write of the lease (renewal,
	// take or checkpoint) started.
	LastRenewal time.Time `json:"last_renewal,omitzero"`
}
