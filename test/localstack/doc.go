// Package localstack holds gokcl's integration tests. They run against real
// Kinesis and DynamoDB servers (the emulators started by emulators.sh in this
// directory, LocalStack, or AWS) and are built only with the "integration"
// build tag; see the README for how to run them.
package localstack
