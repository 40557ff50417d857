package firehose

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// corkConn is the connection a subscriber's websocket writes to. While
// corked it holds what is written and sends it in one write on uncork, so
// a batch of frames costs one write syscall instead of one per frame
// (coder/websocket flushes after every message). While not corked every
// write goes straight through: control frames that coder/websocket writes
// from its read goroutine (pongs, close) are never held, and ones written
// while the subscriber has corked go out, in order, with its batch.
//
// What it holds is bounded by corkLimit: past it the held bytes are sent
// from inside the websocket write, which coder/websocket bounds by that
// write's context. The buffer is pooled, so an idle subscriber holds none.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    *[]byte // from corkPool while corked and holding bytes
}

// corkLimit bounds the bytes a corked connection holds before it sends
// them.
const corkLimit = 64 << 10

var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, corkLimit+8<<10); return &b }}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = corkPool.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	if len(*c.buf) >= corkLimit {
		if err := c.sendLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// sendLocked writes what is held and returns the buffer to the pool.
func (c *corkConn) sendLocked() error {
	if c.buf == nil {
		return nil
	}
	var err error
	if len(*c.buf) > 0 {
		_, err = c.Conn.Write(*c.buf)
	}
	if cap(*c.buf) <= corkLimit+8<<10 {
		*c.buf = (*c.buf)[:0]
		corkPool.Put(c.buf)
	}
	c.buf = nil
	return err
}

// cork starts holding writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork stops holding writes and sends what was held, giving up at
// deadline (a client that stopped reading). After an error the
// connection is closed: part of a frame may have been sent.
func (c *corkConn) uncork(deadline time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if c.buf == nil {
		return nil
	}
	_ = c.Conn.SetWriteDeadline(deadline)
	err := c.sendLocked()
	_ = c.Conn.SetWriteDeadline(time.Time{})
	if err != nil {
		_ = c.Conn.Close()
	}
	return err
}

// hijackWriter is the ResponseWriter handed to websocket.Accept: the
// connection it hijacks becomes a corkConn (and gets SO_SNDBUF when
// sendBuffer is positive).
type hijackWriter struct {
	http.ResponseWriter
	sendBuffer int
	conn       *corkConn // set by Hijack
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	// A *net.TCPConn, or a connection wrapping one (the per-address
	// connection cap's).
	if tc, ok := conn.(interface{ SetWriteBuffer(int) error }); ok && w.sendBuffer > 0 {
		_ = tc.SetWriteBuffer(w.sendBuffer)
	}
	// net/http's writer goes to the raw connection: send anything it holds,
	// then write through the corkConn instead.
	if brw.Writer.Buffered() > 0 {
		if err := brw.Writer.Flush(); err != nil {
			_ = conn.Close()
			return nil, nil, err
		}
	}
	w.conn = &corkConn{Conn: conn}
	brw.Writer.Reset(w.conn)
	return w.conn, brw, nil
}

func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
