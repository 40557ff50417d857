package crawl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pdslog/pdslog/eventlog"
)

// DefaultInterval is the least time between two rounds of requests, the
// reference PDS's crawler notify interval.
const DefaultInterval = 20 * time.Minute

// Notifier calls requestCrawl on every crawler.
type Notifier struct {
	Hostname string   // ours, as relays should crawl it
	Crawlers []string // relay base URLs, e.g. https://bsky.network
	Client   *http.Client
	Interval time.Duration    // 0 means DefaultInterval
	Logger   *slog.Logger     // nil means slog.Default()
	Now      func() time.Time // nil means time.Now

	mu   sync.Mutex
	last time.Time // when the last round was sent; zero before the first
}

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

func (n *Notifier) logger() *slog.Logger {
	if n.Logger != nil {
		return n.Logger
	}
	return slog.Default()
}

// Run notifies every crawler now, then after each new durable event of the
// log once the interval since the last round has passed, until ctx ends.
func (n *Notifier) Run(ctx context.Context, log *eventlog.Log) error {
	if len(n.Crawlers) == 0 {
		return nil
	}
	n.Notify(ctx)
	after := log.Head()
	for {
		seq, err := log.Wait(ctx, after)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		after = seq
		if !n.Due() {
			// Activity inside the interval: sleep until it has passed, then
			// look again (the round covers all activity in between).
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(n.wait()):
			}
		}
		after = log.Head() // this round covers everything so far
		n.Notify(ctx)
	}
}

func (n *Notifier) interval() time.Duration {
	if n.Interval > 0 {
		return n.Interval
	}
	return DefaultInterval
}

// Due reports whether a round may be sent now.
func (n *Notifier) Due() bool { return n.wait() <= 0 }

func (n *Notifier) wait() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.last.IsZero() {
		return 0
	}
	return n.last.Add(n.interval()).Sub(n.now())
}

// Notify sends one round: requestCrawl to every crawler, in parallel. A
// crawler that fails is logged and tried again next round. It returns the
// errors joined.
func (n *Notifier) Notify(ctx context.Context) error {
	n.mu.Lock()
	n.last = n.now()
	n.mu.Unlock()
	errs := make([]error, len(n.Crawlers))
	var wg sync.WaitGroup
	for i, c := range n.Crawlers {
		wg.Go(func() {
			if err := n.request(ctx, c); err != nil {
				errs[i] = err
				n.logger().Warn("request crawl", "crawler", c, "err", err)
				return
			}
			n.logger().Info("requested crawl", "crawler", c, "hostname", n.Hostname)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *Notifier) request(ctx context.Context, crawler string) error {
	body, err := json.Marshal(map[string]string{"hostname": n.Hostname})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := strings.TrimRight(crawler, "/") + "/xrpc/com.atproto.sync.requestCrawl"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	client := n.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("crawl: %s answered %d: %s", crawler, resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}
