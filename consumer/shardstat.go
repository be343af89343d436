package consumer

import (
	"sync"
	"sync/atomic"
	"time"
)

// shardStat is what a shard worker tells Status about itself. The worker
// writes it, Status reads it from any goroutine: every field is atomic.
// Times are Unix nanoseconds, 0 for none.
type shardStat struct {
	state     atomic.Uint32 // ShardState
	lag       atomic.Int64  // MillisBehindLatest of the last batch fetched
	fetchedAt atomic.Int64  // when the last batch was fetched
	records   atomic.Int64  // user records processed since the lease was taken

	// The batch in the processor: its MillisBehindLatest, when it was
	// fetched, when the ProcessRecords call began (0: no call under way).
	procLag     atomic.Int64
	procFetched atomic.Int64
	procSince   atomic.Int64
}

// millisBehind is how far behind the newest record processing is at now:
// while a batch is being processed, its lag plus the time since it was
// fetched (records keep arriving meanwhile, as far as anyone can tell);
// otherwise the last response's lag, refreshed at every poll.
func (s *shardStat) millisBehind(now time.Time) int64 {
	if s.procSince.Load() != 0 {
		if fetched := s.procFetched.Load(); fetched != 0 {
			return s.procLag.Load() + max(now.UnixNano()-fetched, 0)/int64(time.Millisecond)
		}
	}
	return s.lag.Load()
}

func (s *shardStat) fetched(lag int64, at time.Time) {
	s.lag.Store(lag)
	s.fetchedAt.Store(at.UnixNano())
}

// processing records the start of a ProcessRecords call on a batch.
func (s *shardStat) processing(lag int64, fetched, now time.Time) {
	s.procLag.Store(lag)
	s.procFetched.Store(fetched.UnixNano())
	s.procSince.Store(now.UnixNano())
}

// processed records the end of a ProcessRecords call; records is 0 when it
// failed.
func (s *shardStat) processed(records int) {
	s.procSince.Store(0)
	s.records.Add(int64(records))
}

// shardStats holds the stats of the shard workers running now, by lease key
// (a shard id, or a multi-stream lease's key: shard ids repeat from stream
// to stream).
type shardStats struct {
	mu sync.Mutex
	m  map[string]*shardStat
}

// add registers a new worker's stat. A shard has at most one worker at a
// time in a Consumer: the next one starts after the previous one exited.
func (s *shardStats) add(shard string) *shardStat {
	st := &shardStat{}
	st.state.Store(uint32(ShardStarting))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]*shardStat)
	}
	s.m[shard] = st
	return st
}

func (s *shardStats) remove(shard string, st *shardStat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[shard] == st {
		delete(s.m, shard)
	}
}

func (s *shardStats) get(shard string) *shardStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[shard]
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
