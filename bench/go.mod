module github.com/gokcl/kcl/bench

go 1.26.8

replace github.com/gokcl/kcl => ../

require (
	github.com/a8m/kinesis-producer v0.2.0
	github.com/aws/aws-sdk-go-v2 v1.47.7
	github.com/aws/aws-sdk-go-v2/service/kinesis v1.56.11
	github.com/awslabs/kinesis-aggregation/go/v2 v2.0.0-20241004223953-c2774b1ab29b
	github.com/gokcl/kcl v0.0.0-00010101000000-000000000000
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/aws/aws-sdk-go v1.55.8 // indirect
	github.com/aws/smithy-go v1.28.8 // indirect
	github.com/golang/protobuf v1.5.4 // indirect
	github.com/jmespath/go-jmespath v0.4.0 // indirect
	github.com/jpillora/backoff v1.1.0 // indirect
)
