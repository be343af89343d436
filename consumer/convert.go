package consumer

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/deagg"
)

// converter turns one shard's Kinesis records into user records: it unpacks
// KPL aggregates, skips what the shard's checkpoint says was processed, and
// counts (or, with dropMisrouted, drops) aggregates holding user records
// that the shard does not own. It may stop inside an aggregate (see
// convert) and resume there on the next call.
type converter struct {
	shardID string
	log     *slog.Logger

	// Records at or before resume were processed before the lease came to
	// this worker; they appear at the start of the first response only (the
	// iterator starts AT the checkpoint's sequence number).
	resume   checkpoint.Position
	resuming bool

	// A shard's user records are those whose hash key falls in its range.
	// An aggregate holding one outside it was misrouted (see unpack): its
	// user records are delivered and counted, or, with dropMisrouted, the
	// aggregate is dropped whole, as the KCL does.
	hashStart, hashEnd deagg.Key
	hasRange           bool
	dropMisrouted      bool

	// The aggregate being converted: its user records, the next one to
	// convert, and whether it is dropped. partial is set when a limit
	// stopped convert inside it.
	scratch  []deagg.UserRecord
	next     int
	dropping bool
	partial  bool
}

// convertResult describes one converted response, or part of one.
type convertResult struct {
	// last is the position of the last user record examined, delivered or
	// not: checkpointing there after the batch skips nothing unprocessed.
	last      checkpoint.Position
	misrouted int // user records delivered although their hash keys are outside the shard's range
	dropped   int // user records of misrouted aggregates dropped (dropMisrouted)
	corrupt   int // aggregates delivered as one plain record because they did not parse
}

// convert appends the user records of recs to dst, at most limit of them
// (no limit if limit is negative), and returns how many of recs it
// converted whole. When the limit stops it inside an aggregate, that record
// is not counted, and the next call, with recs[n:], resumes inside it
// without unpacking it again.
func (cv *converter) convert(dst []Record, recs []types.Record, limit int) ([]Record, convertResult, int) {
	var res convertResult
	room := func(start int) int {
		if limit < 0 {
			return -1
		}
		return limit - (len(dst) - start)
	}
	start := len(dst)
	for i := range recs {
		if room(start) == 0 {
			return dst, res, i
		}
		r := &recs[i]
		seq := aws.ToString(r.SequenceNumber)
		base := Record{
			PartitionKey:   aws.ToString(r.PartitionKey),
			SequenceNumber: seq,
		}
		if r.ApproximateArrivalTimestamp != nil {
			base.ApproximateArrivalTimestamp = *r.ApproximateArrivalTimestamp
		}
		if cv.partial || cv.unpack(r.Data, seq) {
			dst = cv.appendUserRecords(dst, base, &res, room(start))
			if cv.partial = cv.next < len(cv.scratch); cv.partial {
				return dst, res, i
			}
			continue
		}
		if deagg.IsAggregated(r.Data) {
			res.corrupt++
		}
		res.last = checkpoint.At(seq, 0)
		if cv.skip(res.last) {
			continue
		}
		base.Data = r.Data
		dst = append(dst, base)
	}
	return dst, res, len(recs)
}

// unpack reports whether data is an aggregate and, if so, unpacks it into
// cv.scratch and decides whether it is dropped. A record that looks
// aggregated but does not unpack is delivered as one plain record.
func (cv *converter) unpack(data []byte, seq string) bool {
	if !deagg.IsAggregated(data) {
		return false
	}
	var err error
	cv.scratch, err = deagg.AppendUnpacked(cv.scratch[:0], data)
	if err != nil {
		cv.log.Warn("delivering a record that looks aggregated but does not unpack as one plain record",
			"shard", cv.shardID, "sequence", seq, "error", err)
		return false
	}
	cv.next = 0
	// A user record outside the shard's range comes from one of two
	// producers. The KPL put the aggregate with a stale shard map, saw it
	// land on the wrong shard and put its user records again: dropping the
	// whole aggregate, as the KCL does, avoids processing them twice. An
	// aggregation library given a key per user record put user records of
	// several shards in one aggregate and will not put them again:
	// dropping loses them. So they are delivered unless dropMisrouted.
	cv.dropping = false
	if cv.hasRange && cv.dropMisrouted {
		for j := range cv.scratch {
			if !cv.owns(&cv.scratch[j]) {
				cv.dropping = true
				break
			}
		}
	}
	return true
}

// appendUserRecords appends the user records of the current aggregate from
// cv.next on, at most max of them (no limit if max is negative).
func (cv *converter) appendUserRecords(dst []Record, base Record, res *convertResult, max int) []Record {
	for added := 0; cv.next < len(cv.scratch) && (max < 0 || added < max); {
		u := &cv.scratch[cv.next]
		cv.next++
		res.last = checkpoint.At(base.SequenceNumber, u.SubSequenceNumber)
		if cv.skip(res.last) {
			continue
		}
		if cv.dropping {
			res.dropped++
			continue
		}
		if cv.hasRange && !cv.owns(u) {
			res.misrouted++
		}
		rec := base
		rec.Data = u.Data
		rec.PartitionKey = u.PartitionKey
		rec.ExplicitHashKey = u.ExplicitHashKey
		rec.SubSequenceNumber = u.SubSequenceNumber
		rec.Aggregated = true
		dst = append(dst, rec)
		added++
	}
	return dst
}

// skip reports whether pos was processed before this worker took the lease.
func (cv *converter) skip(pos checkpoint.Position) bool {
	if !cv.resuming {
		return false
	}
	if pos.Compare(cv.resume) <= 0 {
		return true
	}
	cv.resuming = false
	return false
}

// owns reports whether the shard's hash key range holds u's hash key. A user
// record with an invalid explicit hash key cannot be placed: it is delivered
// rather than lost.
func (cv *converter) owns(u *deagg.UserRecord) bool {
	k, err := u.HashKey()
	if err != nil {
		return true
	}
	return k.InRange(cv.hashStart, cv.hashEnd)
}
