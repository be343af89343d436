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
// drops user records that the shard does not own.
type converter struct {
	shardID string
	log     *slog.Logger

	// Records at or before resume were processed before the lease came to
	// this worker; they appear at the start of the first response only (the
	// iterator starts AT the checkpoint's sequence number).
	resume   checkpoint.Position
	resuming bool

	// A shard's user records are those whose hash key falls in its range.
	// An aggregate holding one outside it was misrouted (see
	// appendUserRecords) and is dropped whole, as the KCL does.
	hashStart, hashEnd deagg.Key
	hasRange           bool

	scratch []deagg.UserRecord
}

// convertResult describes one converted response.
type convertResult struct {
	// last is the position of the last user record examined, delivered or
	// not: checkpointing there after the batch skips nothing unprocessed.
	last    checkpoint.Position
	dropped int // user records of aggregates misrouted to this shard
	corrupt int // aggregates delivered as one plain record because they did not parse
}

// convert appends the user records of recs to dst.
func (cv *converter) convert(dst []Record, recs []types.Record) ([]Record, convertResult) {
	var res convertResult
	for i := range recs {
		r := &recs[i]
		seq := aws.ToString(r.SequenceNumber)
		base := Record{
			PartitionKey:   aws.ToString(r.PartitionKey),
			SequenceNumber: seq,
		}
		if r.ApproximateArrivalTimestamp != nil {
			base.ApproximateArrivalTimestamp = *r.ApproximateArrivalTimestamp
		}
		if deagg.IsAggregated(r.Data) {
			var err error
			cv.scratch, err = deagg.AppendUnpacked(cv.scratch[:0], r.Data)
			if err == nil {
				dst = cv.appendUserRecords(dst, base, &res)
				continue
			}
			res.corrupt++
			cv.log.Warn("delivering a record that looks aggregated but does not unpack as one plain record",
				"shard", cv.shardID, "sequence", seq, "error", err)
		}
		res.last = checkpoint.At(seq, 0)
		if cv.skip(res.last) {
			continue
		}
		base.Data = r.Data
		dst = append(dst, base)
	}
	return dst, res
}

func (cv *converter) appendUserRecords(dst []Record, base Record, res *convertResult) []Record {
	start := len(dst)
	for j := range cv.scratch {
		u := &cv.scratch[j]
		res.last = checkpoint.At(base.SequenceNumber, u.SubSequenceNumber)
		if cv.skip(res.last) {
			continue
		}
		if cv.hasRange && !cv.owns(u) {
			// A user record outside the shard's range means the KPL put the
			// aggregate with a stale shard map, saw it land on the wrong
			// shard and sent its user records again: as the KCL does, drop
			// the whole aggregate, or they would be processed twice.
			res.dropped += len(dst) - start + len(cv.scratch) - j
			res.last = checkpoint.At(base.SequenceNumber, cv.scratch[len(cv.scratch)-1].SubSequenceNumber)
			return dst[:start]
		}
		rec := base
		rec.Data = u.Data
		rec.PartitionKey = u.PartitionKey
		rec.ExplicitHashKey = u.ExplicitHashKey
		rec.SubSequenceNumber = u.SubSequenceNumber
		rec.Aggregated = true
		dst = append(dst, rec)
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
