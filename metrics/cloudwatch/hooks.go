package kclcw

import (
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/lease"
)

// The Java KCL's operations (the Operation dimension) and metric names.
const (
	opProcessTask        = "ProcessTask"
	opApplicationTracker = "ApplicationTracker"
	opShutdownTask       = "ShutdownTask"
	opRenewAllLeases     = "RenewAllLeases"
	opTakeLeases         = "TakeLeases"

	mRecordsProcessed   = "RecordsProcessed"
	mDataBytesProcessed = "DataBytesProcessed"
	mMillisBehindLatest = "MillisBehindLatest"
	mProcessRecordsTime = "RecordProcessor.processRecords.Time"
	mSuccess            = "Success"
	mTime               = "Time"
	mGetRecordsSuccess  = "KinesisDataFetcher.getRecords.Success"
	mGetRecordsTime     = "KinesisDataFetcher.getRecords.Time"
	mExpiredIterator    = "ExpiredIterator"
	mUpdateLeaseSuccess = "UpdateLease.Success"
	mUpdateLeaseTime    = "UpdateLease.Time"
	mRenewLeaseSuccess  = "RenewLease.Success"
	mRenewLeaseTime     = "RenewLease.Time"
	mLostLeases         = "LostLeases"
	mCurrentLeases      = "CurrentLeases"
	mListLeasesSuccess  = "ListLeases.Success"
	mListLeasesTime     = "ListLeases.Time"
	mTakenLeases        = "TakenLeases"
	mUntakenLeases      = "UntakenLeases"
	mLeasesToTake       = "LeasesToTake"
	mNumWorkers         = "NumWorkers"
	mTotalLeases        = "TotalLeases"
	mExpiredLeases      = "ExpiredLeases"
	unitCount           = types.StandardUnitCount
	unitBytes           = types.StandardUnitBytes
	unitMillis          = types.StandardUnitMilliseconds
)

// The hooks Publisher implements; the consumer finds them by type assertion.
var (
	_ consumer.HookBatchFetched   = (*Publisher)(nil)
	_ consumer.HookFetchError     = (*Publisher)(nil)
	_ consumer.HookBatchProcessed = (*Publisher)(nil)
	_ lease.HookLeaseEvent        = (*Publisher)(nil)
	_ lease.HookRenewal           = (*Publisher)(nil)
	_ lease.HookCheckpoint        = (*Publisher)(nil)
	_ lease.HookTakerCycle        = (*Publisher)(nil)
)

func shardKey(op, shard, name string, unit types.StandardUnit) datumKey {
	return datumKey{name: name, unit: unit, operation: op, shard: shard}
}

func workerKey(op, worker, name string, unit types.StandardUnit) datumKey {
	return datumKey{name: name, unit: unit, operation: op, worker: worker}
}

// OnBatchProcessed implements consumer.HookBatchProcessed: the KCL's
// ProcessTask metrics of the shard, and the application's
// MillisBehindLatest (ApplicationTracker, no shard).
func (p *Publisher) OnBatchProcessed(e consumer.BatchProcessed) {
	ok := e.Err == nil
	records, bytes := 0.0, 0.0
	if ok {
		records, bytes = float64(e.Records), float64(e.Bytes)
	}
	p.add(shardKey(opProcessTask, e.Shard, mRecordsProcessed, unitCount), records)
	p.add(shardKey(opProcessTask, e.Shard, mDataBytesProcessed, unitBytes), bytes)
	p.lag(e.Shard, e.MillisBehindLatest)
	p.add(shardKey(opProcessTask, e.Shard, mProcessRecordsTime, unitMillis), millis(e.Duration))
	p.add(shardKey(opProcessTask, e.Shard, mSuccess, unitCount), success(ok))
	p.add(shardKey(opProcessTask, e.Shard, mTime, unitMillis), millis(e.Duration))
}

func (p *Publisher) lag(shard string, ms int64) {
	p.add(shardKey(opProcessTask, shard, mMillisBehindLatest, unitMillis), float64(ms))
	p.add(shardKey(opApplicationTracker, "", mMillisBehindLatest, unitMillis), float64(ms))
}

// OnBatchFetched implements consumer.HookBatchFetched: the GetRecords
// call's success and latency and, for a batch with nothing to process, the
// ProcessTask figures the KCL publishes for an empty batch, so that an idle
// shard shows a lag of zero rather than no data.
func (p *Publisher) OnBatchFetched(e consumer.BatchFetched) {
	if p.detailed() {
		p.add(shardKey(opProcessTask, e.Shard, mGetRecordsSuccess, unitCount), 1)
		p.add(shardKey(opProcessTask, e.Shard, mGetRecordsTime, unitMillis), millis(e.Latency))
	}
	if e.Records == 0 {
		p.add(shardKey(opProcessTask, e.Shard, mRecordsProcessed, unitCount), 0)
		p.add(shardKey(opProcessTask, e.Shard, mDataBytesProcessed, unitBytes), 0)
		p.lag(e.Shard, e.MillisBehindLatest)
	}
}

// OnFetchError implements consumer.HookFetchError.
func (p *Publisher) OnFetchError(e consumer.FetchError) {
	if e.ExpiredIterator {
		p.add(shardKey(opProcessTask, e.Shard, mExpiredIterator, unitCount), 1)
	}
	if p.detailed() {
		p.add(shardKey(opProcessTask, e.Shard, mGetRecordsSuccess, unitCount), 0)
		p.add(shardKey(opProcessTask, e.Shard, mGetRecordsTime, unitMillis), millis(e.Latency))
	}
}

// OnCheckpoint implements lease.HookCheckpoint: UpdateLease, under
// ProcessTask, or ShutdownTask for the checkpoints of a shard's end and of
// a release, as in the KCL.
func (p *Publisher) OnCheckpoint(e lease.CheckpointWrite) {
	if !p.detailed() {
		return
	}
	op := opProcessTask
	if e.Kind == lease.CheckpointShardEnd || e.Kind == lease.CheckpointBeforeRelease {
		op = opShutdownTask
	}
	p.add(shardKey(op, e.Shard, mUpdateLeaseSuccess, unitCount), success(e.Err == nil))
	p.add(shardKey(op, e.Shard, mUpdateLeaseTime, unitMillis), millis(e.Latency))
}

// OnRenewal implements lease.HookRenewal.
func (p *Publisher) OnRenewal(e lease.Renewal) {
	if !p.detailed() {
		return
	}
	p.add(workerKey(opRenewAllLeases, e.Worker, mRenewLeaseSuccess, unitCount), success(e.Err == nil))
	p.add(workerKey(opRenewAllLeases, e.Worker, mRenewLeaseTime, unitMillis), millis(e.Latency))
}

// OnLeaseEvent implements lease.HookLeaseEvent: lost leases, as the KCL's
// renewer counts them.
func (p *Publisher) OnLeaseEvent(e lease.LeaseEvent) {
	if e.Kind == lease.LeaseLost {
		p.add(workerKey(opRenewAllLeases, e.Worker, mLostLeases, unitCount), 1)
	}
}

// OnTakerCycle implements lease.HookTakerCycle: the KCL's TakeLeases
// metrics, and the leases held (RenewAllLeases' CurrentLeases).
func (p *Publisher) OnTakerCycle(e lease.TakerCycle) {
	ok := e.Err == nil
	if p.detailed() {
		p.add(workerKey(opTakeLeases, e.Worker, mListLeasesSuccess, unitCount), success(ok))
		p.add(workerKey(opTakeLeases, e.Worker, mListLeasesTime, unitMillis), millis(e.Scan))
	}
	p.add(workerKey(opTakeLeases, e.Worker, mSuccess, unitCount), success(ok))
	p.add(workerKey(opTakeLeases, e.Worker, mTime, unitMillis), millis(e.Duration))
	if !ok {
		return
	}
	p.add(workerKey(opTakeLeases, e.Worker, mTakenLeases, unitCount), float64(e.Taken))
	// A lease asked for (a hand-off) is not a failed take: it comes later.
	p.add(workerKey(opTakeLeases, e.Worker, mUntakenLeases, unitCount), float64(e.Planned-e.Taken-e.Asked))
	p.add(workerKey(opTakeLeases, e.Worker, mNumWorkers, unitCount), float64(e.Workers))
	p.add(workerKey(opTakeLeases, e.Worker, mExpiredLeases, unitCount), float64(e.Available))
	if p.detailed() {
		p.add(workerKey(opTakeLeases, e.Worker, mLeasesToTake, unitCount), float64(e.Planned))
		p.add(workerKey(opTakeLeases, e.Worker, mTotalLeases, unitCount), float64(e.Leases))
	}
	p.add(workerKey(opRenewAllLeases, e.Worker, mCurrentLeases, unitCount), float64(e.Held))
}
