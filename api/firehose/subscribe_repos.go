package firehose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pdslog/pdslog/api/netguard"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
)

// Default option values.
const (
	// DefaultMaxLag is how many events a caught-up subscriber may fall
	// behind the head before it is dropped (the reference PDS's outbox
	// holds a few thousand).
	DefaultMaxLag = 5000
	// DefaultWriteTimeout bounds one frame write: a client that stopped
	// reading is dropped after it.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultPingInterval is how long an idle connection waits before it is
	// pinged.
	DefaultPingInterval = 30 * time.Second
	// DefaultBatchSize is how many frames a subscriber reads from the log
	// before writing them: its whole send queue.
	DefaultBatchSize = 32
	// DefaultFrameCache and DefaultFrameCacheBytes bound the frames shared
	// across subscribers.
	DefaultFrameCache      = 1024
	DefaultFrameCacheBytes = 32 << 20
	// DefaultMaxPerAddress is serve's default for MaxPerAddress: a relay
	// holds one subscription; the cap keeps one client from holding the
	// server's connections and the log readers behind them.
	DefaultMaxPerAddress = 10

	// maxBatchBytes ends a batch early when its frames are large.
	maxBatchBytes = 4 << 20
	// maxScan ends a pass over the log after this many events even if few
	// were public (a long run of private events or tombstones), so that no
	// iterator stays open long.
	maxScan = 4096
)

// Options configure a Handler. Zero fields take their defaults.
type Options struct {
	// Log is the event log the firehose reads. Required.
	Log *eventlog.Log
	// Logger receives connect and disconnect lines; nil means slog.Default().
	Logger *slog.Logger
	// Registerer, if set, registers the firehose's metrics.
	Registerer prometheus.Registerer
	// BackfillWindow, if positive, limits replay: a cursor whose next event
	// is older than this gets #info OutdatedCursor and starts at the first
	// event inside the window (PDS_REPO_BACKFILL_LIMIT_MS). Zero means the
	// whole log can be replayed.
	BackfillWindow time.Duration
	// MaxLag is how many events a subscriber that has caught up once may
	// fall behind the head before it gets ConsumerTooSlow.
	MaxLag uint64
	// WriteTimeout bounds each frame write; a write that does not complete
	// in time (a client that stopped reading) drops the subscriber.
	WriteTimeout time.Duration
	// PingInterval is how long a connection may be idle before a ping; an
	// unanswered ping (within WriteTimeout) drops it.
	PingInterval time.Duration
	// BatchSize is how many frames a subscriber reads ahead of its writes.
	BatchSize int
	// FrameCache and FrameCacheBytes bound the cache of encoded frames
	// shared by subscribers (entries and bytes).
	FrameCache      int
	FrameCacheBytes int64
	// SocketSendBuffer, if positive, sets the kernel send buffer of each
	// subscriber connection (SO_SNDBUF). It bounds the kernel memory a
	// stalled client holds and how long it takes to notice one; zero keeps
	// the kernel's autotuning.
	SocketSendBuffer int
	// Now is the clock the backfill window is measured against; nil means
	// time.Now.
	Now func() time.Time
	// MaxPerAddress, if positive, caps the subscriptions of one client
	// address (an IPv4 address, an IPv6 /64: netguard.Key of the request's
	// client IP); one more is refused with 429 before the upgrade. Zero
	// means no cap (serve sets DefaultMaxPerAddress).
	MaxPerAddress int
	// OnRefuse, if set, is called for each subscription refused by the
	// per-address cap (metrics).
	OnRefuse func()

	// noRing turns the shared tail off: every subscriber reads the log
	// itself, as before it existed (benchmarks compare the two).
	noRing bool
	// ringSize and ringBytes bound the shared tail's ring; zero means
	// DefaultRingSize and DefaultRingBytes.
	ringSize  int
	ringBytes int64
	// noCork turns batched writes off: one write syscall per frame.
	noCork bool
	// onNew, if set, is called with the Handler New builds (tests).
	onNew func(*Handler)
}

// EnsureDefaults fills unset fields and returns o (a new value if o is nil).
func (o *Options) EnsureDefaults() *Options {
	if o == nil {
		o = &Options{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxLag == 0 {
		o.MaxLag = DefaultMaxLag
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FrameCache <= 0 {
		o.FrameCache = DefaultFrameCache
	}
	if o.FrameCacheBytes <= 0 {
		o.FrameCacheBytes = DefaultFrameCacheBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ringSize <= 0 {
		o.ringSize = DefaultRingSize
	}
	if o.ringBytes <= 0 {
		o.ringBytes = DefaultRingBytes
	}
	return o
}

// Handler serves subscribeRepos. It is safe for concurrent use.
type Handler struct {
	log    *eventlog.Log
	opts   Options
	logger *slog.Logger
	cache  *frameCache
	m      *metrics
	ring   *ring // nil when the shared tail is off

	quit     context.Context // cancelled by Shutdown
	stopQuit context.CancelFunc

	perAddr *netguard.Counter // subscriptions per client address

	mu      sync.Mutex
	closing bool
	subs    map[*subscriber]struct{}
	wg      sync.WaitGroup
	tailing bool           // the shared tail has started; guarded by mu
	tailWG  sync.WaitGroup // the shared tail
}

// New returns a Handler over opts.Log.
func New(opts *Options) *Handler {
	o := *opts.EnsureDefaults()
	if o.Log == nil {
		panic("firehose: Options.Log is required")
	}
	h := &Handler{log: o.Log, opts: o, logger: o.Logger.With("component", "firehose"), subs: map[*subscriber]struct{}{},
		perAddr: netguard.NewCounter(o.MaxPerAddress)}
	h.quit, h.stopQuit = context.WithCancel(context.Background())
	h.m = newMetrics(h, o.Registerer)
	h.cache = newFrameCache(o.FrameCache, o.FrameCacheBytes, h.m, h.logger)
	if !o.noRing {
		h.ring = newRing(o.ringSize, o.ringBytes, o.Log.Purges, h.m.ringResets.Inc)
	}
	if o.onNew != nil {
		o.onNew(h)
	}
	return h
}

// subscriber is one connection's state.
type subscriber struct {
	h          *Handler
	registered bool // guarded by h.mu
	conn       *websocket.Conn
	cork       *corkConn       // the connection under conn; nil if not corkable
	ctx        context.Context // ends when the client goes away
	pos        atomic.Uint64   // last seq read and delivered (skipped ones included)
	frames     int
	bytes      int64
}

// SubscribeRepos answers GET /xrpc/com.atproto.sync.subscribeRepos: it
// upgrades to a websocket and streams frames until the client leaves, falls
// too far behind, or the server shuts down.
func (h *Handler) SubscribeRepos(c echo.Context) error {
	raw := c.QueryParam("cursor")
	cursor, cursorErr := parseCursor(raw)
	// The head is read before the upgrade: once the client sees the
	// handshake complete, "live from now" means every event appended later.
	head := h.log.Head()
	addr := netguard.Key(c.RealIP())
	if !h.perAddr.Acquire(addr) {
		if h.opts.OnRefuse != nil {
			h.opts.OnRefuse()
		}
		return &xrpc.Error{Status: http.StatusTooManyRequests, Name: "RateLimitExceeded",
			Message: fmt.Sprintf("at most %d firehose subscriptions per client address", h.opts.MaxPerAddress)}
	}
	defer h.perAddr.Release(addr)
	s := &subscriber{h: h}
	s.pos.Store(uint64(head))
	if !h.register(s) {
		return &xrpc.Error{Status: http.StatusServiceUnavailable, Name: "ServiceUnavailable", Message: "server is shutting down"}
	}
	defer h.unregister(s)

	w := &hijackWriter{ResponseWriter: c.Response(), sendBuffer: h.opts.SocketSendBuffer}
	conn, err := websocket.Accept(w, c.Request(), &websocket.AcceptOptions{
		InsecureSkipVerify: true, // public, unauthenticated stream: any origin may read it
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return nil // Accept has answered the request
	}
	h.mu.Lock()
	s.conn = conn
	if !h.opts.noCork {
		s.cork = w.conn
	}
	h.mu.Unlock()
	// The stream is write-only: CloseRead handles control frames and ends
	// s.ctx when the client closes or the connection drops.
	s.ctx = conn.CloseRead(context.Background())

	start := time.Now()
	logger := h.logger.With("remote_ip", c.RealIP())
	if raw != "" {
		logger = logger.With("cursor", raw)
	}
	logger.Info("firehose connect", "seq", head)

	reason, err := s.run(head, raw != "", cursor, cursorErr)
	s.close(reason)
	h.unregister(s) // before the disconnect is counted: the gauge never trails it
	h.m.disconnects.WithLabelValues(reason).Inc()
	attrs := []any{"reason", reason, "seq", s.pos.Load(), "frames", s.frames, "bytes", s.bytes, "duration", time.Since(start)}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	level := slog.LevelInfo
	if reason == ReasonError {
		level = slog.LevelError
	}
	logger.Log(context.Background(), level, "firehose disconnect", attrs...)
	return nil
}

func parseCursor(raw string) (eventlog.Seq, error) {
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cursor must be a non-negative integer, got %q", raw)
	}
	return eventlog.Seq(n), nil
}

// run streams from the position the cursor rules give and returns why the
// stream ended.
func (s *subscriber) run(head eventlog.Seq, hasCursor bool, cursor eventlog.Seq, cursorErr error) (string, error) {
	h := s.h
	after := head
	switch {
	case cursorErr != nil:
		_ = s.write(ErrorFrame(ErrorInvalidRequest, cursorErr.Error()))
		return ReasonInvalidRequest, nil
	case !hasCursor:
	case cursor > head:
		_ = s.write(ErrorFrame(ErrorFutureCursor, messageFutureCursor))
		return ReasonFutureCursor, nil
	case h.opts.BackfillWindow > 0:
		start, outdated, err := h.windowStart(s.ctx, cursor, head, h.opts.Now().Add(-h.opts.BackfillWindow))
		if err != nil {
			return s.failure(ReasonError, err)
		}
		if outdated {
			if err := s.write(InfoFrame(InfoOutdatedCursor, messageOutdatedCursor)); err != nil {
				return s.failure(ReasonError, err)
			}
		}
		after = start
	default:
		after = cursor
	}
	s.pos.Store(uint64(after))
	return s.stream(after)
}

// stream is the one code path for replay and live: take a batch of frames
// after the current position, write them, and when there is nothing more,
// wait. Frames come from the shared tail's ring when it holds the
// position (a live subscriber), otherwise from the log (a replaying one,
// or one that fell behind the ring); a subscriber moves between the two
// by seq, so there is no gap and no duplicate at the hand-off.
func (s *subscriber) stream(after eventlog.Seq) (string, error) {
	h := s.h
	batch := make([][]byte, 0, h.opts.BatchSize)
	caughtUp := false
	for {
		if h.quit.Err() != nil {
			return ReasonShutdown, nil
		}
		var (
			more   bool
			tip    <-chan struct{}
			onRing bool
			err    error
		)
		batch = batch[:0]
		if h.ring != nil {
			after, tip, onRing = h.ring.take(after, &batch, h.opts.BatchSize, maxBatchBytes)
		}
		if onRing {
			more = tip == nil
			h.m.ringFrames.Add(float64(len(batch)))
		} else {
			h.m.logReads.Inc()
			after, more, err = s.read(after, &batch)
			if err != nil {
				return s.failure(ReasonError, err)
			}
		}
		if err := s.writeBatch(batch); err != nil {
			return s.failure(ReasonError, err)
		}
		s.pos.Store(uint64(after))
		if !more {
			caughtUp = true
		}
		// A client still replaying is never too slow; one that has been
		// live and fell behind is. On the ring the lag is counted from the
		// ring's newest seq (the tail's own delay is not the client's).
		if caughtUp {
			head := h.log.Head()
			if onRing {
				head = h.ring.newest()
			}
			if head > after && uint64(head-after) > h.opts.MaxLag {
				return ReasonTooSlowLag, nil
			}
		}
		if more {
			continue
		}
		if reason, err := s.wait(after, tip); reason != "" {
			return reason, err
		}
	}
}

// read appends to batch the frames of the public events after after, up to
// a batch, and returns the new position and whether the log has more.
// The iterator is closed before anything is written.
func (s *subscriber) read(after eventlog.Seq, batch *[][]byte) (eventlog.Seq, bool, error) {
	h := s.h
	it, err := h.log.Iter(s.ctx, after)
	if err != nil {
		return after, false, err
	}
	defer it.Close()
	size, scanned := 0, 0
	for it.Next() {
		ev := it.Event()
		after = ev.Seq
		scanned++
		if ev.Kind.Public() {
			f, err := h.cache.frame(ev)
			if err == nil {
				*batch = append(*batch, f)
				size += len(f)
			}
			// An event that cannot be encoded (e.g. past the wire
			// format's size limits) is skipped, as a private one is;
			// relays resync from #sync or getRepo. The cache logged it.
		}
		if len(*batch) >= h.opts.BatchSize || size >= maxBatchBytes || scanned >= maxScan {
			return after, true, it.Close()
		}
	}
	return after, false, it.Close()
}

// wait blocks until the log has events after after, or, when tip is not
// nil (the subscriber is at the ring's newest seq), until tip is closed.
// While idle it pings the client. It returns a reason when the stream must
// end.
func (s *subscriber) wait(after eventlog.Seq, tip <-chan struct{}) (string, error) {
	h := s.h
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	stop := context.AfterFunc(h.quit, cancel)
	defer stop()
	for {
		wctx, wcancel := context.WithTimeout(ctx, h.opts.PingInterval)
		var err error
		if tip != nil {
			select {
			case <-tip:
			case <-wctx.Done():
				err = context.Cause(wctx)
			}
		} else {
			_, err = h.log.Wait(wctx, after)
		}
		wcancel()
		switch {
		case err == nil:
			return "", nil
		case s.ctx.Err() != nil:
			return ReasonClientClosed, nil
		case h.quit.Err() != nil, errors.Is(err, eventlog.ErrClosed):
			return ReasonShutdown, nil
		case errors.Is(err, context.DeadlineExceeded):
			pctx, pcancel := context.WithTimeout(s.ctx, h.opts.WriteTimeout)
			err := s.conn.Ping(pctx)
			pcancel()
			if err != nil {
				if s.ctx.Err() != nil {
					return ReasonClientClosed, nil
				}
				return ReasonPingTimeout, err
			}
		default:
			return ReasonError, err
		}
	}
}

// errWriteTimeout marks a write that did not complete within WriteTimeout.
var errWriteTimeout = errors.New("firehose: write timed out")

// write sends one frame with its own timeout, derived from the
// connection's context (a cancelled write leaves the connection unusable,
// so nothing else cancels it); on a corkable connection, as a batch of one.
func (s *subscriber) write(f []byte) error {
	if s.cork != nil {
		return s.writeBatch([][]byte{f})
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.h.opts.WriteTimeout)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageBinary, f); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w: %v", errWriteTimeout, err)
		}
		return err
	}
	s.frames++
	s.bytes += int64(len(f))
	s.h.m.frames.Inc()
	s.h.m.bytes.Add(float64(len(f)))
	return nil
}

// writeBatch sends frames. With a corkable connection they are written
// into its buffer and go out in one write per corkLimit bytes: each frame
// write and the final flush must complete within WriteTimeout. Otherwise
// each frame is written (and flushed) on its own.
func (s *subscriber) writeBatch(fs [][]byte) error {
	if len(fs) == 0 {
		return nil
	}
	if s.cork == nil {
		for _, f := range fs {
			if err := s.write(f); err != nil {
				return err
			}
		}
		return nil
	}
	s.cork.cork()
	n := 0
	for _, f := range fs {
		// Each frame keeps its own timeout: the corked connection sends
		// what it holds from inside a write once past its limit.
		ctx, cancel := context.WithTimeout(s.ctx, s.h.opts.WriteTimeout)
		err := s.conn.Write(ctx, websocket.MessageBinary, f)
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			_ = s.cork.uncork(time.Now()) // the connection is unusable: drop what is held
			if timedOut {
				return fmt.Errorf("%w: %v", errWriteTimeout, err)
			}
			return err
		}
		n += len(f)
	}
	if err := s.cork.uncork(time.Now().Add(s.h.opts.WriteTimeout)); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("%w: %v", errWriteTimeout, err)
		}
		return err
	}
	s.frames += len(fs)
	s.bytes += int64(n)
	s.h.m.frames.Add(float64(len(fs)))
	s.h.m.bytes.Add(float64(n))
	return nil
}

// failure turns an error into the reason the stream ends.
func (s *subscriber) failure(reason string, err error) (string, error) {
	switch {
	case errors.Is(err, errWriteTimeout): // (its close also ends s.ctx)
		return ReasonTooSlowWrite, err
	case s.ctx.Err() != nil:
		return ReasonClientClosed, nil
	case errors.Is(err, eventlog.ErrClosed), s.h.quit.Err() != nil:
		return ReasonShutdown, nil
	}
	return reason, err
}

// close ends the connection as reason says: with an error frame and a
// close handshake where the client can still hear it.
func (s *subscriber) close(reason string) {
	c := s.conn
	switch reason {
	case ReasonTooSlowLag:
		_ = s.write(ErrorFrame(ErrorConsumerTooSlow, messageConsumerTooSlow))
		_ = c.Close(websocket.StatusPolicyViolation, ErrorConsumerTooSlow)
	case ReasonTooSlowWrite:
		// The timed-out write already closed the connection; the error
		// frame is best effort.
		_ = s.write(ErrorFrame(ErrorConsumerTooSlow, messageConsumerTooSlow))
		_ = c.CloseNow()
	case ReasonFutureCursor:
		_ = c.Close(websocket.StatusPolicyViolation, ErrorFutureCursor)
	case ReasonInvalidRequest:
		_ = c.Close(websocket.StatusPolicyViolation, ErrorInvalidRequest)
	case ReasonShutdown:
		_ = c.Close(websocket.StatusGoingAway, "server shutting down")
	case ReasonError:
		_ = c.Close(websocket.StatusInternalError, "internal error")
	default: // the client is gone or did not answer a ping
		_ = c.CloseNow()
	}
}

func (h *Handler) register(s *subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.subs[s] = struct{}{}
	s.registered = true
	if h.ring != nil && !h.tailing {
		// The shared tail starts with the first subscriber, from the head.
		h.tailing = true
		start := h.log.Head()
		h.ring.mu.Lock()
		h.ring.resetLocked(start, h.log.Purges())
		h.ring.mu.Unlock()
		h.tailWG.Add(1)
		go func() {
			defer h.tailWG.Done()
			h.tail(start)
		}()
	}
	h.wg.Add(1)
	h.m.subscribers.Inc()
	return true
}

// unregister forgets s; calling it again does nothing.
func (h *Handler) unregister(s *subscriber) {
	h.mu.Lock()
	if !s.registered {
		h.mu.Unlock()
		return
	}
	s.registered = false
	delete(h.subs, s)
	h.mu.Unlock()
	h.m.subscribers.Dec()
	h.wg.Done()
}

// maxLag is how far the furthest-behind subscriber is behind the head.
func (h *Handler) maxLag() uint64 {
	head := uint64(h.log.Head())
	h.mu.Lock()
	defer h.mu.Unlock()
	var lag uint64
	for s := range h.subs {
		if p := s.pos.Load(); head > p {
			lag = max(lag, head-p)
		}
	}
	return lag
}

// Subscribers returns how many subscribers are connected.
func (h *Handler) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Shutdown refuses new subscribers and tells every connected one the
// server is going away (close status 1001), then waits for them to end.
// When ctx ends first, the remaining connections are dropped and ctx's
// error is returned. Hijacked websockets are not tracked by
// http.Server.Shutdown, so the server calls this beside it.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	h.stopQuit()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		h.tailWG.Wait() // quit stops it promptly
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.mu.Lock()
	for s := range h.subs {
		if s.conn != nil {
			_ = s.conn.CloseNow()
		}
	}
	h.mu.Unlock()
	return context.Cause(ctx)
}
