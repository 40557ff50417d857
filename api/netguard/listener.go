package netguard

import (
	"net"
	"net/netip"
	"sync"
)

// Listener caps the live connections from each address (by Key): a
// connection beyond the cap is closed as soon as it is accepted (with a
// reset, so it leaves nothing behind), before any byte of it is read.
// Connections from trusted proxies are not capped: behind a reverse proxy
// every connection comes from it, and it does its own limiting. A
// connection is counted until it is closed, hijacked ones (websockets)
// included.
type Listener struct {
	net.Listener
	max      int
	trusted  []netip.Prefix
	onRefuse func()
	conns    *Counter
}

// LimitListener wraps ln so that each address has at most max live
// connections (max ≤ 0: no cap, ln is returned as is). onRefuse, if set,
// is called for each connection refused.
func LimitListener(ln net.Listener, max int, trusted []netip.Prefix, onRefuse func()) net.Listener {
	if max <= 0 {
		return ln
	}
	return &Listener{Listener: ln, max: max, trusted: trusted, onRefuse: onRefuse, conns: NewCounter(max)}
}

// Accept returns the next connection whose address is under its cap.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil || trusts(l.trusted, ap.Addr()) {
			return c, nil
		}
		key := addrKey(ap.Addr())
		if !l.conns.Acquire(key) {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
			if l.onRefuse != nil {
				l.onRefuse()
			}
			continue
		}
		release := func() { l.conns.Release(key) }
		if tc, ok := c.(*net.TCPConn); ok {
			// Embedding the *net.TCPConn keeps what net/http and the
			// firehose use of it (ReadFrom for sendfile, CloseWrite,
			// SetWriteBuffer, SyscallConn).
			return &tcpConn{TCPConn: tc, release: release}, nil
		}
		return &conn{Conn: c, release: release}, nil
	}
}

// Live is the number of live connections from ip's key (tests).
func (l *Listener) Live(ip string) int { return l.conns.Live(Key(ip)) }

type tcpConn struct {
	*net.TCPConn
	once    sync.Once
	release func()
}

func (c *tcpConn) Close() error {
	err := c.TCPConn.Close()
	c.once.Do(c.release)
	return err
}

type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
