// Command pdslog is an event-sourced AT Protocol Personal Data Server.
//
//	pdslog serve     run the PDS
//	pdslog replay    rebuild projections from the event log
//	pdslog mirror    mirror the log into Cloudflare D1 and R2
//	pdslog backup    ship the log to S3/R2; 'backup status'
//	pdslog restore   restore a data dir from a backup, to any point in time
//	pdslog bench     load a running server and measure it
//	pdslog version   print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `pdslog: an event-sourced AT Protocol Personal Data Server

Usage:
  pdslog <command> [flags]

Commands:
  serve     run the PDS (default data dir ./data, port 2583)
  replay    rebuild projections from the event log (--verify checks it)
  mirror    mirror the log into Cloudflare D1 (rows) and R2 (blobs); 'mirror status'
  backup    ship the log to S3/R2 (serve does it with PDSLOG_BACKUP_URL); 'backup status'
  restore   restore a data dir from a backup (--from URL [--at TIME | --seq N])
  bench     load a running server (--target URL) and report ops/s, latency, firehose lag
  version   print the version

Run 'pdslog <command> --help' for a command's flags.
Every flag can also be set by the environment variable named in its help.
`

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a mistake in how the command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "--version":
		fmt.Fprintln(stdout, "pdslog", version())
		return exitOK
	case "serve":
		err = (&serveCommand{stdout: stdout, stderr: stderr}).run(ctx, args[1:])
	case "replay":
		err = (&replayCommand{stdout: stdout, stderr: stderr}).run(ctx, args[1:])
	case "mirror":
		err = (&mirrorCommand{stdout: stdout, stderr: stderr}).run(ctx, args[1:])
	case "backup":
		err = (&backupCommand{stdout: stdout, stderr: stderr}).run(ctx, args[1:])
	case "restore":
		err = (&restoreCommand{stdout: stdout, stderr: stderr, stdin: os.Stdin}).run(ctx, args[1:])
	case "bench":
		err = (&benchCommand{stdout: stdout, stderr: stderr}).run(ctx, args[1:])
	default:
		fmt.Fprintf(stderr, "pdslog: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	var ue usageError
	var ee exitError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "pdslog %s: %s\nTry: pdslog %s --help\n", args[0], err, args[0])
		return exitUsage
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "pdslog %s: interrupted\n", args[0])
		return exitInterrupted
	case errors.As(err, &ee):
		fmt.Fprintf(stderr, "pdslog %s: %s\n", args[0], err)
		return ee.code
	default:
		fmt.Fprintf(stderr, "pdslog %s: %s\n", args[0], err)
		return exitFailure
	}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		if v == "" || v == "(devel)" {
			v = "dev"
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return v + " (" + s.Value[:12] + ")"
			}
		}
		return v
	}
	return "dev"
}
