package mail

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Outbox defaults.
const (
	DefaultAttempts  = 8
	DefaultBackoff   = 2 * time.Second // doubling, capped at MaxBackoff
	MaxBackoff       = 2 * time.Minute
	DefaultQueueSize = 1000
	DefaultWorkers   = 4
)

// ErrQueueFull is returned by Enqueue when the queue is full (a flood, or
// a server that has been down for long): the message is dropped.
var ErrQueueFull = errors.New("mail: outbox full")

// Hooks observe the outbox (metrics); each may be nil.
type Hooks struct {
	Sent   func(kind string)
	Retry  func(kind string, attempt int, err error)
	Failed func(kind string, err error) // after the last attempt, or a permanent refusal
}

// Outbox sends messages asynchronously through Sender, retrying failures
// with backoff. Run it; Enqueue from anywhere.
type Outbox struct {
	Sender    Sender
	Attempts  int           // 0: DefaultAttempts
	Backoff   time.Duration // 0: DefaultBackoff
	QueueSize int           // 0: DefaultQueueSize
	Workers   int           // 0: DefaultWorkers
	Logger    *slog.Logger  // nil: slog.Default()
	Hooks     Hooks

	once sync.Once
	ch   chan *Message
}

func (o *Outbox) init() {
	o.once.Do(func() {
		if o.QueueSize <= 0 {
			o.QueueSize = DefaultQueueSize
		}
		if o.Attempts <= 0 {
			o.Attempts = DefaultAttempts
		}
		if o.Backoff <= 0 {
			o.Backoff = DefaultBackoff
		}
		if o.Workers <= 0 {
			o.Workers = DefaultWorkers
		}
		if o.Logger == nil {
			o.Logger = slog.Default()
		}
		o.ch = make(chan *Message, o.QueueSize)
	})
}

// Enqueue queues m for delivery without waiting for the server. It fails
// only for a message that cannot be sent (a bad address) or a full queue.
func (o *Outbox) Enqueue(m *Message) error {
	o.init()
	if _, err := ParseAddress(m.To); err != nil {
		return err
	}
	select {
	case o.ch <- m:
		return nil
	default:
		o.Logger.Error("mail outbox full: message dropped", "kind", m.Kind, "queued", len(o.ch))
		if o.Hooks.Failed != nil {
			o.Hooks.Failed(m.Kind, ErrQueueFull)
		}
		return ErrQueueFull
	}
}

// Queued is how many messages wait for delivery.
func (o *Outbox) Queued() int {
	o.init()
	return len(o.ch)
}

// Run delivers queued messages until ctx ends.
func (o *Outbox) Run(ctx context.Context) {
	o.init()
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-o.ch:
					o.deliver(ctx, m)
				}
			}
		})
	}
	wg.Wait()
	if n := len(o.ch); n > 0 {
		o.Logger.Warn("mail outbox stopped with messages unsent", "queued", n)
	}
}

// deliver sends m, retrying with backoff.
func (o *Outbox) deliver(ctx context.Context, m *Message) {
	wait := o.Backoff
	for attempt := 1; ; attempt++ {
		err := o.Sender.Send(ctx, m)
		if err == nil {
			o.Logger.Info("mail sent", "kind", m.Kind, "attempts", attempt)
			if o.Hooks.Sent != nil {
				o.Hooks.Sent(m.Kind)
			}
			return
		}
		if Permanent(err) || attempt >= o.Attempts || ctx.Err() != nil {
			o.Logger.Error("mail not sent", "kind", m.Kind, "attempts", attempt, "err", err)
			if o.Hooks.Failed != nil {
				o.Hooks.Failed(m.Kind, err)
			}
			return
		}
		o.Logger.Warn("mail delivery failed; retrying", "kind", m.Kind, "attempt", attempt, "retry_in", wait, "err", err)
		if o.Hooks.Retry != nil {
			o.Hooks.Retry(m.Kind, attempt, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, MaxBackoff)
	}
}
