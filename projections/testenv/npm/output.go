package npm

import (
	"bytes"
	"regexp"
	"sync"
)

// Output collects a harness process's stdout and stderr (the first MiB)
// and reports the first submatch of the first line matching its ready
// pattern, which the process prints once it serves.
type Output struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	line  []byte
	re    *regexp.Regexp
	ready chan string
	seen  bool
}

// NewOutput returns an Output waiting for a line matching ready, whose
// first capture group is reported on Ready.
func NewOutput(ready *regexp.Regexp) *Output {
	return &Output{re: ready, ready: make(chan string, 1)}
}

// Ready delivers the ready line's first capture group, once.
func (o *Output) Ready() <-chan string { return o.ready }

// Write implements io.Writer.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.buf.Len() < 1<<20 {
		o.buf.Write(p)
	}
	for _, c := range p {
		if c != '\n' {
			if len(o.line) < 4096 {
				o.line = append(o.line, c)
			}
			continue
		}
		if m := o.re.FindSubmatch(bytes.TrimSpace(o.line)); m != nil && !o.seen {
			o.seen = true
			o.ready <- string(m[1])
		}
		o.line = o.line[:0]
	}
	return len(p), nil
}

// String returns what was collected.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
