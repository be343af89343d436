package lease

// The DynamoDB codec, exported to the external test package (lease_test),
// which also runs the conformance suite and so cannot be package lease.
var (
	DecodeDynamoItem = decodeItem
	EncodeDynamoItem = encodeNew
	DecodeWorkerItem = decodeWorker
)
