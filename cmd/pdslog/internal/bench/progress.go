package bench

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// Progress periods: a terminal's line is redrawn, elsewhere a line is
// printed every fillReport.
const (
	redraw     = 250 * time.Millisecond
	fillReport = 5 * time.Second
)

// progress redraws a status line of the load on a terminal until stopped.
func (b *runner) progress() (stop func()) {
	if !isTerminal(b.stderr) {
		return func() {}
	}
	return b.ticker(redraw, func(el time.Duration) {
		var n, errs int64
		for _, s := range b.stats {
			ok, failed := s.counts()
			n += ok
			errs += failed
		}
		fmt.Fprintf(b.stderr, "\rbench %s %5.1fs/%s  %d ops  %s ops/s  %d errors   ",
			b.cfg.Mix, el.Seconds(), b.cfg.Duration, n, human(float64(n)/el.Seconds()), errs)
	})
}

// reportProgress prints line(elapsed) on stderr until stopped: redrawn on
// a terminal, a line every few seconds otherwise.
func (b *runner) reportProgress(line func(time.Duration) string) (stop func()) {
	if isTerminal(b.stderr) {
		return b.ticker(redraw, func(el time.Duration) { fmt.Fprintf(b.stderr, "\r%s   ", line(el)) })
	}
	return b.ticker(fillReport, func(el time.Duration) { fmt.Fprintln(b.stderr, line(el)) })
}

// ticker calls tick with the time elapsed every period until stopped; on
// a terminal, stopping ends the redrawn line.
func (b *runner) ticker(period time.Duration, tick func(time.Duration)) (stop func()) {
	tty := isTerminal(b.stderr)
	done, finished := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprintln(b.stderr)
				}
				return
			case <-t.C:
			}
			tick(time.Since(start))
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// human is a rate: 950, 1.2k, 3.4M.
func human(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
