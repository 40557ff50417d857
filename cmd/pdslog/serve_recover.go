package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
)

// Recovery from a failed event log. Once a write or fsync of the log fails
// (the disk filled up past the reserve, or the device reported an I/O
// error), the open log refuses everything: what Pebble holds in memory may
// not be on disk. serve then drains, closes the data dir, answers 503 while
// it waits for the disk to take writes again, and reopens the data dir,
// which recovers exactly what was made durable — all without the process
// restarting or the port closing.

// recoverPoll is how often a failed data dir is probed.
var recoverPoll = time.Second

// recoverStorage answers 503 on ln until the data dir's disk takes writes
// again and the data dir reopens, then returns it. It returns nil, nil when
// ctx ends first (a normal shutdown).
func (c *serveCommand) recoverStorage(ctx context.Context, cfg *serveConfig, ln *sharedListener, logger *slog.Logger) (*round, error) {
	c.current.Store(nil)
	hs := cfg.httpServer(http.HandlerFunc(unavailable))
	rl := ln.round()
	go func() { _ = hs.Serve(rl) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.drain)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	start := time.Now()
	var lastErr string
	for attempt := 1; ; attempt++ {
		fs := c.logFS
		if fs == nil {
			fs = vfs.Default
		}
		err := probeStorage(fs, cfg.dataDir, cfg.minFree)
		var r *round
		if err == nil {
			r, err = c.openRound(ctx, cfg, logger)
		}
		if err == nil {
			logger.Info("data dir reopened after a storage failure: serving again", "seq", r.pds.Log.Head(), "attempts", attempt, "duration", time.Since(start))
			return r, nil
		}
		if msg := err.Error(); msg != lastErr {
			lastErr = msg
			logger.Error("storage not usable yet; answering 503 and retrying", "err", err, "data_dir", cfg.dataDir)
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(recoverPoll):
		}
	}
}

// probeStorage checks, through the filesystem the log runs on, that the
// data dir's disk takes a synced write and has more free space than the log
// keeps in reserve. Pebble treats a failed WAL sync while it opens as fatal,
// so the data dir is reopened only once the disk passes this probe.
func probeStorage(fs vfs.FS, dir string, reserve int64) error {
	if reserve == 0 {
		reserve = eventlog.DefaultMinFreeBytes
	}
	if _, err := eventlog.CheckFreeSpace(fs, dir, uint64(max(reserve, 0)), 0); errors.Is(err, eventlog.ErrDiskFull) {
		return err
	}
	path := fs.PathJoin(dir, ".write-probe")
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	defer fs.Remove(path)
	_, werr := f.Write(make([]byte, 64<<10))
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

func unavailable(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(http.StatusServiceUnavailable)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(xrpc.Body{Error: "ServiceUnavailable", Message: "the server is recovering from a storage failure"})
	}
}

// sharedListener accepts on one listener for successive servers: each
// round's http.Server gets its own net.Listener whose Close (which
// http.Server.Shutdown calls) ends that round without closing the port.
//
// Only a closed listener ends its accept loop. Any other Accept error
// (EMFILE/ENFILE when a burst of connections used up the descriptors,
// ECONNABORTED, ENOBUFS, …) is retried with backoff, logged once when a
// streak of failures starts and once when accepting works again: the
// server resumes by itself once the connections that exhausted it are
// gone.
type sharedListener struct {
	ln      net.Listener
	logger  *slog.Logger
	onError func() // counts each failed Accept (metrics); may be nil
	conns   chan net.Conn
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when the accept loop has ended
	err     error         // why it ended; read after done

	closeOnce sync.Once
	closeErr  error
}

// Accept retry backoff: it doubles from acceptBackoffMin to
// acceptBackoffMax, as net/http's own accept loop does.
var (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

func newSharedListener(ln net.Listener, logger *slog.Logger, onError func()) *sharedListener {
	s := &sharedListener{ln: ln, logger: logger, onError: onError, conns: make(chan net.Conn, 64),
		closing: make(chan struct{}), done: make(chan struct{})}
	go s.accept()
	return s
}

func (s *sharedListener) accept() {
	defer close(s.done)
	var (
		delay   time.Duration
		retries int // failed Accepts in the current streak
		since   time.Time
	)
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closing:
				s.err = net.ErrClosed
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				s.err = err
				return
			}
			if s.onError != nil {
				s.onError()
			}
			if retries == 0 {
				since, delay = time.Now(), acceptBackoffMin
				s.logger.Warn("accept failing: retrying with backoff until it works again", "err", err, "addr", s.ln.Addr().String())
			} else {
				delay = min(2*delay, acceptBackoffMax)
			}
			retries++
			select {
			case <-s.closing:
				s.err = net.ErrClosed
				return
			case <-time.After(delay):
			}
			continue
		}
		if retries > 0 {
			s.logger.Info("accepting connections again", "failed_accepts", retries, "duration", time.Since(since))
			retries = 0
		}
		select {
		case s.conns <- conn:
		case <-s.closing:
			_ = conn.Close()
			s.err = net.ErrClosed
			return
		}
	}
}

// Close closes the real listener (new connections are refused from then
// on) and every connection not yet served. It may be called more than once.
func (s *sharedListener) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.closeErr = s.ln.Close()
	})
	err := s.closeErr
	<-s.done
	for {
		select {
		case c := <-s.conns:
			_ = c.Close()
		default:
			return err
		}
	}
}

// round returns a listener for one server.
func (s *sharedListener) round() net.Listener {
	return &roundListener{s: s, closed: make(chan struct{})}
}

type roundListener struct {
	s      *sharedListener
	once   sync.Once
	closed chan struct{}
}

func (r *roundListener) Accept() (net.Conn, error) {
	select {
	case <-r.closed:
		return nil, net.ErrClosed
	case <-r.s.done:
		return nil, r.s.err
	case c := <-r.s.conns:
		select {
		case <-r.closed: // closed meanwhile: leave it to the next round
			go func() {
				select {
				case r.s.conns <- c:
				case <-r.s.done:
					_ = c.Close()
				}
			}()
			return nil, net.ErrClosed
		default:
			return c, nil
		}
	}
}

func (r *roundListener) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}

func (r *roundListener) Addr() net.Addr { return r.s.ln.Addr() }
