// Command gokcl is the operator's tool for a gokcl (or Java KCL)
// application: it shows who holds which shard and how far behind each is,
// finds dead workers, moves checkpoints, releases a dead worker's leases,
// imports the checkpoints of a vmware-go-kcl-v2 application, and lists the
// stream's enhanced fan-out consumers.
//
//	gokcl status   -app APP -stream STREAM|-all-streams
//	gokcl workers  -app APP
//	gokcl reset    -app APP -stream STREAM -shard ID|-all -to POSITION [-force] [-dry-run]
//	gokcl evict    -app APP -worker ID [-force] [-dry-run]
//	gokcl import   -app APP -stream STREAM -from vmware -source-table TABLE [-dry-run]
//	gokcl fanout   list|deregister -stream STREAM [-name NAME]
//
// Every change it makes is a conditional write, like the library's own: it
// lands only if the lease is still as the command read it. Credentials and
// region come from the AWS SDK's default chain (environment, shared
// configuration, SSO, instance role); -region overrides the region. Run
// "gokcl help COMMAND" for a command's flags and examples.
//
// Exit status: 0 on success, 1 when the command failed or refused, 2 for a
// usage error.
//
// Multi-stream lease tables (the Java KCL's multi-stream mode, gokcl's
// Config.Streams) are read too: status, reset and evict show each lease's
// stream, and tell a stream's leases from a former stream's of the same
// name (deleted, or deleted and created again).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], newEnv(os.Stdout, os.Stderr, os.Getenv))
	stop()
	os.Exit(code)
}
