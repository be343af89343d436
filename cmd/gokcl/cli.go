package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the command failed, or refused to do something unsafe
	exitUsage = 2 // bad command line
)

// env is what a command may touch outside itself; tests build their own.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// awsOptions are added to the SDK's configuration loading (tests add
	// static credentials).
	awsOptions []func(*config.LoadOptions) error
}

func newEnv(stdout, stderr io.Writer, getenv func(string) string) *env {
	return &env{stdout: stdout, stderr: stderr, getenv: getenv}
}

// usageError is a bad command line: exit status 2, with the command's usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// command is one of gokcl's commands.
type command struct {
	name     string
	synopsis string // the usage line(s) after "gokcl "
	summary  string // one line, for the command list
	about    string // what it does, for its help
	examples string
	// streamOptional: the command checks -stream itself (reset needs it
	// only for some positions).
	streamOptional bool
	flags          func(fs *flag.FlagSet, o *options)
	run            func(ctx context.Context, e *env, o *options) error
}

func commands() []*command {
	return []*command{statusCommand(), workersCommand(), resetCommand(), evictCommand(), importCommand(), fanoutCommand()}
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		mainUsage(e.stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(rest) > 0 {
			if c := findCommand(rest[0]); c != nil {
				commandUsage(e.stdout, c, newFlagSet(c, &options{}))
				return exitOK
			}
			fmt.Fprintf(e.stderr, "gokcl: unknown command %q\n\n", rest[0])
			mainUsage(e.stderr)
			return exitUsage
		}
		mainUsage(e.stdout)
		return exitOK
	}
	c := findCommand(name)
	if c == nil {
		fmt.Fprintf(e.stderr, "gokcl: unknown command %q\n\n", name)
		mainUsage(e.stderr)
		return exitUsage
	}
	return runCommand(ctx, c, rest, e)
}

func runCommand(ctx context.Context, c *command, args []string, e *env) int {
	o := &options{}
	fs := newFlagSet(c, o)
	err := parse(c, fs, o, args, e)
	if errors.Is(err, flag.ErrHelp) {
		commandUsage(e.stdout, c, fs)
		return exitOK
	}
	if err == nil {
		err = c.run(ctx, e, o)
	}
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "gokcl %s: %v\n\n", c.name, err)
		commandUsage(e.stderr, c, fs)
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "gokcl %s: %v\n", c.name, err)
		return exitFail
	}
}

func newFlagSet(c *command, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("gokcl "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by runCommand
	c.flags(fs, o)
	return fs
}

// parse reads the flags (and, for fanout, the action before them), then
// fills in defaults from the environment and checks the combination.
func parse(c *command, fs *flag.FlagSet, o *options, args []string, e *env) error {
	if c.name == "fanout" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			if len(args) > 0 && isHelpFlag(args[0]) {
				return flag.ErrHelp
			}
			return usagef("fanout needs an action: list or deregister")
		}
		o.action, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (flags go before nothing else; see -h)", fs.Arg(0))
	}
	return o.finish(fs, e.getenv, c.streamOptional)
}

func isHelpFlag(s string) bool {
	switch s {
	case "-h", "-help", "--help":
		return true
	}
	return false
}

func mainUsage(w io.Writer) {
	fmt.Fprint(w, `gokcl: the operator's tool for a gokcl or Java KCL application.

Usage:
  gokcl COMMAND [flags]
  gokcl help COMMAND

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every change is a conditional write on the lease as read, like the
library's own. Credentials and region come from the AWS SDK's default
chain; -region, -kinesis-endpoint and -dynamodb-endpoint (or
GOKCL_KINESIS_ENDPOINT and GOKCL_DYNAMODB_ENDPOINT) override them.

Exit status: 0 success, 1 failure or refusal, 2 usage error.
`)
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage:\n")
	for _, line := range strings.Split(c.synopsis, "\n") {
		fmt.Fprintf(w, "  gokcl %s\n", line)
	}
	fmt.Fprintf(w, "\n%s\n\nFlags:\n", strings.TrimSpace(c.about))
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintf(w, "\nExamples:\n%s", c.examples)
}
