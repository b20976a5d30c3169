// Command ingest subscribes to Restless Stream's SSE and WebSocket streams and
// publishes every event, verified and deduplicated, to NATS JetStream or Kafka.
//
// Usage:
//
//	ingest demo                  the whole pipeline on its embedded default
//	ingest run -c FILE           the daemon
//	ingest check -c FILE         validate and print the effective configuration
//	ingest emulate               a local Restless Stream emulator
//	ingest streams <op> [flags]  stream management through the REST API
//	ingest status [--json]       what each stream of a running daemon does
//	ingest top                   the same, live
//	ingest checkpoints <op>      inspect or move the streams' checkpoints
//	ingest version               version, commit and Go version
//
// Exit codes: 0 clean stop, 1 runtime failure, 2 usage or configuration error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// Exit codes of INGEST.md.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a mistake on the command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// exitCode maps an error to the exit codes of INGEST.md.
func exitCode(err error) int {
	var ue *usageError
	var ce *ConfigError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp): // asking for help is not a mistake
		return exitOK
	case errors.As(err, &ue), errors.As(err, &ce):
		return exitUsage
	}
	return exitFailure
}

// env is what a command sees of the process: arguments, streams, and the place
// that announces where it listens (tests read it).
type env struct {
	stdout io.Writer
	stderr io.Writer
}

func main() {
	os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `ingest: publish Restless Stream events to NATS JetStream or Kafka

Usage:
  ingest demo                      the whole pipeline on its embedded default (no network, no account)
  ingest run -c FILE               the daemon (or INGEST_CONFIG=FILE)
  ingest check -c FILE [--connect] validate and print the effective configuration, secrets redacted
                                   (--connect: also try the API key, each stream and the broker)
  ingest emulate [--addr A]        run a local Restless Stream emulator
  ingest streams <op> [flags]      manage streams: list get create update start stop delete
                                   usage validate-key snippets direct-setup direct-session
                                   tail (print a stream's events as JSON lines)
  ingest status [--addr A] [--json]  what each stream of a running daemon does (A: its http.addr)
  ingest top [--addr A]            the same, live: state, events/s, lag, last error (q quits)
  ingest checkpoints <op> -c FILE  inspect or move checkpoints: list show set reset
  ingest version                   version, commit, Go version

Run 'ingest <command> -h' for the flags of a command.
Exit codes: 0 clean stop, 1 runtime failure, 2 usage or configuration error.
`

// Main runs the command line args and returns the exit code. Panics are reported
// with every known secret redacted.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintln(stderr, redactText(fmt.Sprintf("ingest: panic: %v\n\n%s", r, debug.Stack())))
			code = exitFailure
		}
	}()
	e := &env{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "demo":
		err = cmdDemo(ctx, e, args[1:])
	case "run":
		err = cmdRun(ctx, e, args[1:])
	case "check":
		err = cmdCheck(e, args[1:])
	case "emulate":
		err = cmdEmulate(ctx, e, args[1:])
	case "streams":
		err = cmdStreams(ctx, e, args[1:])
	case "status":
		err = cmdStatus(ctx, e, args[1:])
	case "top":
		err = cmdTop(ctx, e, args[1:])
	case "checkpoints":
		err = cmdCheckpoints(ctx, e, args[1:])
	case "version", "--version", "-version":
		err = cmdVersion(e)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		fmt.Fprint(stderr, usageText)
		err = usagef("unknown command %q", args[0])
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		reportError(stderr, err)
	}
	return exitCode(err)
}

// reportError prints err once, redacted, with one line per configuration problem.
func reportError(w io.Writer, err error) {
	var ce *ConfigError
	if errors.As(err, &ce) {
		fmt.Fprintf(w, "ingest: invalid configuration:\n")
		for _, fe := range ce.Errs {
			fmt.Fprintf(w, "  %s\n", redactText(fe.Error()))
		}
		return
	}
	msg := redactText(err.Error())
	fmt.Fprintf(w, "ingest: %s\n", strings.TrimSpace(msg))
}
