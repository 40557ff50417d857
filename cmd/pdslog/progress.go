package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pdslog/pdslog/eventlog"
)

// progress shows long work (replay, verify, catch-up): a redrawn bar with
// events, events/s and ETA on a terminal; a log line every few seconds
// otherwise.
type progress struct {
	out    io.Writer
	tty    bool
	logger *slog.Logger
	verb   string // "replay", "verify", "catch up"
	every  time.Duration

	mu      sync.Mutex
	total   eventlog.Seq
	name    string
	first   eventlog.Seq // position when this name started
	done    eventlog.Seq
	began   time.Time
	lastOut time.Time
	drawn   bool
}

func newProgress(out io.Writer, logger *slog.Logger, verb string) *progress {
	p := &progress{out: out, tty: isTerminal(out), logger: logger, verb: verb, every: 5 * time.Second}
	if p.tty {
		p.every = 100 * time.Millisecond
	}
	return p
}

// start begins tracking work that ends at seq total.
func (p *progress) start(total eventlog.Seq) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.name, p.drawn = total, "", false
}

// update records that name has reached seq done.
func (p *progress) update(name string, done eventlog.Seq) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if name != p.name {
		p.endLine()
		p.name, p.began, p.lastOut = name, now, time.Time{}
		p.first = done
		if done > 0 {
			p.first = done - 1
		}
	}
	p.done = done
	if now.Sub(p.lastOut) < p.every && done < p.total {
		return
	}
	p.lastOut = now
	p.emit(now)
}

func (p *progress) rate(now time.Time) float64 {
	el := now.Sub(p.began).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(p.done-p.first) / el
}

func (p *progress) emit(now time.Time) {
	rate := p.rate(now)
	eta := "?"
	if rate > 0 && p.total >= p.done {
		eta = (time.Duration(float64(p.total-p.done)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	if !p.tty {
		p.logger.Info(p.verb+" progress", "projection", p.name, "seq", p.done, "head", p.total,
			"percent", fmt.Sprintf("%.1f", pct), "events_per_sec", int(rate), "eta", eta)
		return
	}
	const width = 30
	fill := int(pct / 100 * width)
	fmt.Fprintf(p.out, "\r%s %-12s [%s%s] %5.1f%% %d/%d events  %s ev/s  ETA %s   ",
		p.verb, p.name, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), pct, p.done, p.total, human(rate), eta)
	p.drawn = true
}

func (p *progress) endLine() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.out)
		p.drawn = false
	}
}

// finish prints the final state of the current line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.name != "" {
		p.emit(time.Now())
	}
	p.endLine()
}

func human(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}
