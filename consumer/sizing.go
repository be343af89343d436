package consumer

import (
	"sort"
	"unsafe"

	"github.com/gokcl/kcl/deagg"
)

// recordSize is the memory a Record takes besides its payload.
const recordSize = int64(unsafe.Sizeof(Record{}))

// Kinesis's limits on what one GetRecords call returns: records of at most
// 1 MiB (data and partition key) and at most 10 MiB in all. They bound the
// response to a call before it is made, which is what makes
// MaxBufferedBytes a bound rather than a target.
const (
	maxRecordBytes   = deagg.MaxRecordBytes
	maxResponseBytes = 10 << 20
)

// minBufferedBytes is the least MaxBufferedBytes accepted: one call with
// Limit 1 must fit, a 1 MiB record and the Records describing it, with room
// left for the batch another shard holds.
const minBufferedBytes = 2 << 20

// callShare is the part of the budget one call may reserve, unless a call
// with Limit 1 needs more: a quarter, so that several shards can fetch at
// once.
const callShare = 4

// sizer chooses the Limit of a shard's next GetRecords call and the budget
// to reserve for it, from what the shard's last responses held. The
// reservation covers the largest response Kinesis may send for that Limit
// (Limit records of 1 MiB, 10 MiB in all) and the Record values of the user
// records that payload is expected to hold: as many per byte as in the last
// response (KPL aggregates hold many), at least one per Kinesis record.
type sizer struct {
	maxRecords int
	budget     int64 // MaxBufferedBytes

	seen   bool // a response was seen
	behind bool // the last response was behind the tip of the shard
	count  int  // Kinesis records in the last response
	// The Kinesis records (0 before the first), user records and payload
	// bytes of the last response with records, for the Records a payload
	// expands to.
	records, users, bytes int64
}

// observe records what a response held: its Kinesis records, its user
// records (after deaggregation), its payload and whether it was behind.
func (s *sizer) observe(count int, users, bytes int64, behind bool) {
	s.seen, s.count, s.behind = true, count, behind
	if count > 0 {
		s.records, s.users, s.bytes = int64(count), users, bytes
	}
}

// next returns the Limit of the next call and the bytes to reserve for it.
//
// A shard that is behind (or new) asks for MaxRecords; one that has caught up
// asks for twice what its last response held, so that an idle shard polls
// with a Limit of 1 and a reservation of about 1 MiB rather than 10 MiB. The
// Limit is then lowered until the reservation fits a quarter of the budget,
// but never below 1.
func (s *sizer) next() (limit int, reserve int64) {
	want := s.maxRecords
	if s.seen && !s.behind {
		want = min(max(2*s.count, 1), s.maxRecords)
	}
	share := s.budget / callShare
	limit = sort.Search(want, func(i int) bool { return s.cost(i+1) > share })
	limit = max(limit, 1)
	return limit, min(s.cost(limit), s.budget)
}

// cost is the reservation for a call with the given Limit.
func (s *sizer) cost(limit int) int64 {
	data := min(int64(limit)*maxRecordBytes, maxResponseBytes)
	users := int64(limit)
	if s.records > 0 && s.users > s.records && s.bytes > 0 {
		// Aggregates: as many user records per Kinesis record and per byte
		// as last time, whichever bound is lower, and no fewer than one
		// per Kinesis record.
		perRecord := (s.users + s.records - 1) / s.records
		users = max(users, min(int64(limit)*perRecord, (data*s.users+s.bytes-1)/s.bytes))
	}
	return data + users*recordSize
}
