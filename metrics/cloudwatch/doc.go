// Package kclcw publishes a gokcl consumer's metrics to Amazon CloudWatch
// under the Java KCL's metric names, namespace and dimensions, so that
// dashboards and alarms built for the KCL keep working.
//
//	pub, err := kclcw.New(kclcw.Options{
//		Client:    cloudwatch.NewFromConfig(awsCfg),
//		Namespace: "billing", // the application name, as the KCL
//	})
//	if err != nil {
//		return err
//	}
//	go pub.Run(ctx) // sends every 10 s; returns after a last send
//	c, err := consumer.New(consumer.Config{
//		AppName: "billing",
//		// ...
//		Hooks: []consumer.Hook{pub},
//	})
//
// The metrics, with the KCL's dimensions (Operation, and ShardId or
// WorkerIdentifier):
//
//	Operation=ProcessTask, ShardId: RecordsProcessed, DataBytesProcessed,
//	    MillisBehindLatest, RecordProcessor.processRecords.Time, Success, Time,
//	    KinesisDataFetcher.getRecords.Success and .Time, ExpiredIterator,
//	    UpdateLease.Success and .Time (checkpoints)
//	Operation=ShutdownTask, ShardId: UpdateLease.Success and .Time (the
//	    checkpoints at a shard's end and before a release)
//	Operation=ApplicationTracker: MillisBehindLatest (every shard)
//	Operation=RenewAllLeases, WorkerIdentifier: RenewLease.Success and .Time,
//	    LostLeases, CurrentLeases
//	Operation=TakeLeases, WorkerIdentifier: ListLeases.Success and .Time,
//	    TakenLeases, UntakenLeases, LeasesToTake, NumWorkers, TotalLeases,
//	    ExpiredLeases, Success, Time
//
// As in the KCL, values are accumulated per metric into statistic sets and
// sent with PutMetricData every BufferTime (10 s), from Run's goroutine: a
// hook takes a lock and updates a map, and never waits for CloudWatch.
// LevelSummary leaves out the per-call metrics (KCL's DETAILED level).
package kclcw
