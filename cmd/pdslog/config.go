package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/pdslog/pdslog/api/firehose"
)

// errHelp is returned when --help was asked for (exit 0).
var errHelp = errors.New("help requested")

// flags is a FlagSet whose flags fall back to environment variables: where
// the reference PDS has a name for a setting (PDS_DATA_DIRECTORY, PDS_PORT,
// …) that name is read, so an operator's pds.env works unchanged.
type flags struct {
	*flag.FlagSet
	envErrs []error
	secrets map[string]secretEnv // flag name -> its env value, applied after parsing
}

type secretEnv struct {
	p     *string
	value string
}

func newFlags(name, summary string, out io.Writer) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: pdslog %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return &flags{FlagSet: fs}
}

func lookupEnv(envs []string) (string, string, bool) {
	for _, e := range envs {
		if v, ok := os.LookupEnv(e); ok && v != "" {
			return e, v, true
		}
	}
	return "", "", false
}

func envUsage(usage string, envs []string) string {
	if len(envs) == 0 {
		return usage
	}
	return usage + " (env " + strings.Join(envs, ", ") + ")"
}

func (f *flags) String(p *string, name, def, usage string, envs ...string) {
	if _, v, ok := lookupEnv(envs); ok {
		def = v
	}
	f.StringVar(p, name, def, envUsage(usage, envs))
}

// Secret is String for secrets: the environment's value is applied after
// parsing instead of becoming the flag's default, so --help never prints it.
func (f *flags) Secret(p *string, name, usage string, envs ...string) {
	f.StringVar(p, name, "", envUsage(usage, envs))
	if _, v, ok := lookupEnv(envs); ok {
		if f.secrets == nil {
			f.secrets = map[string]secretEnv{}
		}
		f.secrets[name] = secretEnv{p: p, value: v}
	}
}

func (f *flags) Bool(p *bool, name string, def bool, usage string, envs ...string) {
	if e, v, ok := lookupEnv(envs); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.envErrs = append(f.envErrs, fmt.Errorf("%s=%q: not a boolean", e, v))
		} else {
			def = b
		}
	}
	f.BoolVar(p, name, def, envUsage(usage, envs))
}

func (f *flags) Int(p *int, name string, def int, usage string, envs ...string) {
	if e, v, ok := lookupEnv(envs); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.envErrs = append(f.envErrs, fmt.Errorf("%s=%q: not an integer", e, v))
		} else {
			def = n
		}
	}
	f.IntVar(p, name, def, envUsage(usage, envs))
}

func (f *flags) Int64(p *int64, name string, def int64, usage string, envs ...string) {
	if e, v, ok := lookupEnv(envs); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			f.envErrs = append(f.envErrs, fmt.Errorf("%s=%q: not an integer", e, v))
		} else {
			def = n
		}
	}
	f.Int64Var(p, name, def, envUsage(usage, envs))
}

// Duration reads a Go duration ("90s", "1h"); from the environment a bare
// integer is taken as milliseconds, the reference's *_MS convention.
func (f *flags) Duration(p *time.Duration, name string, def time.Duration, usage string, envs ...string) {
	if e, v, ok := lookupEnv(envs); ok {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			def = time.Duration(ms) * time.Millisecond
		} else if d, err := time.ParseDuration(v); err == nil {
			def = d
		} else {
			f.envErrs = append(f.envErrs, fmt.Errorf("%s=%q: not a duration", e, v))
		}
	}
	f.DurationVar(p, name, def, envUsage(usage, envs))
}

func (f *flags) Uint64(p *uint64, name string, def uint64, usage string, envs ...string) {
	if e, v, ok := lookupEnv(envs); ok {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			f.envErrs = append(f.envErrs, fmt.Errorf("%s=%q: not an unsigned integer", e, v))
		} else {
			def = n
		}
	}
	f.Uint64Var(p, name, def, envUsage(usage, envs))
}

// parse parses args, turning flag and environment mistakes into usageErrors.
func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err.Error()}
	}
	if len(f.envErrs) > 0 {
		return usageError{errors.Join(f.envErrs...).Error()}
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for name, s := range f.secrets {
		if !set[name] {
			*s.p = s.value
		}
	}
	if f.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", f.Arg(0))}
	}
	return nil
}

// common holds the settings every command shares.
type common struct {
	dataDir   string
	logLevel  string
	logFormat string
}

func (c *common) register(f *flags) {
	f.String(&c.dataDir, "data-dir", "./data", "data directory (event log, projections, keys)", "PDS_DATA_DIRECTORY")
	f.String(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error", "PDSLOG_LOG_LEVEL", "LOG_LEVEL")
	f.String(&c.logFormat, "log-format", "auto", "log format: text, json, or auto (text on a terminal)", "PDSLOG_LOG_FORMAT")
}

// logger builds the process logger writing to w.
func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, usageError{fmt.Sprintf("bad log level %q", c.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "auto":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("bad log format %q", c.logFormat)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// firehoseSettings are serve's com.atproto.sync.subscribeRepos settings.
type firehoseSettings struct {
	backfill time.Duration
	maxLag   int
	maxPerIP int
}

func (s *firehoseSettings) register(f *flags) {
	f.Duration(&s.backfill, "repo-backfill-limit", 0,
		"how far back a firehose cursor may replay; an older cursor gets #info OutdatedCursor and starts inside the window (0: the whole log)",
		"PDS_REPO_BACKFILL_LIMIT_MS")
	f.Int(&s.maxLag, "firehose-max-lag", firehose.DefaultMaxLag,
		"events a caught-up firehose subscriber may fall behind the head before it is dropped with ConsumerTooSlow",
		"PDSLOG_FIREHOSE_MAX_LAG")
	f.Int(&s.maxPerIP, "firehose-max-per-ip", firehose.DefaultMaxPerAddress,
		"firehose subscriptions one client address (IPv4 address, IPv6 /64) may hold; more get 429 (0: no cap)",
		"PDSLOG_FIREHOSE_MAX_PER_IP")
}

// config checks the settings and returns the firehose options.
func (s *firehoseSettings) config() (firehose.Options, error) {
	if s.backfill < 0 {
		return firehose.Options{}, usageError{fmt.Sprintf("PDS_REPO_BACKFILL_LIMIT_MS: must not be negative, got %s", s.backfill)}
	}
	if s.maxLag <= 0 {
		return firehose.Options{}, usageError{fmt.Sprintf("PDSLOG_FIREHOSE_MAX_LAG: must be positive, got %d", s.maxLag)}
	}
	if s.maxPerIP < 0 {
		return firehose.Options{}, usageError{fmt.Sprintf("PDSLOG_FIREHOSE_MAX_PER_IP: must not be negative, got %d", s.maxPerIP)}
	}
	return firehose.Options{BackfillWindow: s.backfill, MaxLag: uint64(s.maxLag), MaxPerAddress: s.maxPerIP}, nil
}
