// Package identitytest runs the parts of the outside world handle
// resolution talks to, for real, on loopback: a DNS server (miekg/dns)
// answering _atproto TXT records and addresses, and an HTTPS server with a
// self-signed certificate serving /.well-known/atproto-did for any host
// under .test, .foreign.test and .elsewhere.social, reached at the address
// the DNS server gives.
package identitytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// World is a DNS server and an HTTPS server.
type World struct {
	DNS *DNSServer
	Web *WebServer
}

// StartWorld starts both servers, stopped when the test ends.
func StartWorld(t testing.TB) *World {
	t.Helper()
	return &World{DNS: StartDNS(t), Web: StartWeb(t)}
}

// DNSServer is a DNS server on 127.0.0.1 (UDP and TCP, one port). Every
// name has the address 127.0.0.1; _atproto.HOST has the TXT records set
// for HOST, and no other name has any (NXDOMAIN).
type DNSServer struct {
	Addr string // host:port

	mu      sync.Mutex
	txt     map[string][]string
	stalled map[string]bool
	queries map[string]int
}

func norm(host string) string { return strings.TrimSuffix(strings.ToLower(host), ".") }

// SetTXT sets the TXT records of _atproto.HOST.
func (s *DNSServer) SetTXT(host string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txt[norm(host)] = values
}

// Stall makes the server never answer about host.
func (s *DNSServer) Stall(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stalled[norm(host)] = true
}

// TXTQueries is how many TXT questions about _atproto.HOST came.
func (s *DNSServer) TXTQueries(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[norm(host)]
}

func (s *DNSServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range req.Question {
		name := norm(q.Name)
		host := strings.TrimPrefix(name, "_atproto.")
		if s.stalled[host] {
			return
		}
		switch {
		case q.Qtype == dns.TypeTXT && strings.HasPrefix(name, "_atproto."):
			s.queries[host]++
			vals, ok := s.txt[host]
			if !ok {
				m.Rcode = dns.RcodeNameError
			}
			for _, v := range vals {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{v}})
			}
		case q.Qtype == dns.TypeA && !strings.HasPrefix(name, "_atproto."):
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
		case strings.HasPrefix(name, "_atproto."):
			if _, ok := s.txt[host]; !ok {
				m.Rcode = dns.RcodeNameError
			}
		}
	}
	_ = w.WriteMsg(m)
}

// StartDNS starts a DNS server, stopped when the test ends.
func StartDNS(t testing.TB) *DNSServer {
	t.Helper()
	s := &DNSServer{txt: map[string][]string{}, stalled: map[string]bool{}, queries: map[string]int{}}
	var pc net.PacketConn
	var ln net.Listener
	for range 20 { // one port for both: find a UDP port whose TCP twin is free
		p, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if l, err := net.Listen("tcp", p.LocalAddr().String()); err == nil {
			pc, ln = p, l
			break
		}
		p.Close()
	}
	if pc == nil {
		t.Fatal("no free UDP/TCP port pair")
	}
	s.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	})
	return s
}

// WebServer is an HTTPS server whose certificate (self-signed) names
// *.test, *.foreign.test and *.elsewhere.social. It serves
// /.well-known/atproto-did per host.
type WebServer struct {
	URL  string // https://127.0.0.1:PORT
	Port string
	pool *x509.CertPool

	mu      sync.Mutex
	dids    map[string]string
	stalled map[string]bool
	hits    map[string]int
}

// Set makes host's well-known document name did.
func (s *WebServer) Set(host, did string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dids[norm(host)] = did
}

// Stall makes requests for host hang until the client gives up.
func (s *WebServer) Stall(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stalled[norm(host)] = true
}

// Hits is how many requests for host's document came.
func (s *WebServer) Hits(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[norm(host)]
}

// CertPool trusts the server's certificate.
func (s *WebServer) CertPool() *x509.CertPool { return s.pool }

func (s *WebServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := norm(r.Host)
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = norm(h)
	}
	s.mu.Lock()
	s.hits[host]++
	did, ok := s.dids[host]
	stalled := s.stalled[host]
	s.mu.Unlock()
	if stalled {
		<-r.Context().Done()
		return
	}
	if r.URL.Path != "/.well-known/atproto-did" || !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(did + "\n"))
}

// Client is an HTTP client that trusts the server's certificate and
// reaches it for any https://HOST URL: HOST is resolved through dnsAddr
// (a DNSServer, whose answer is 127.0.0.1) and the server's port replaces
// 443.
func (s *WebServer) Client(dnsAddr string) *http.Client {
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dnsAddr)
	}}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := res.LookupHost(ctx, host)
		if err != nil {
			return nil, err
		}
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(ips[0], s.Port))
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: s.pool}}}
}

// StartWeb starts the HTTPS server, stopped when the test ends.
func StartWeb(t testing.TB) *WebServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "identitytest"},
		DNSNames: []string{"*.test", "*.foreign.test", "*.elsewhere.social"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	s := &WebServer{pool: x509.NewCertPool(), dids: map[string]string{}, stalled: map[string]bool{}, hits: map[string]int{}}
	s.pool.AddCert(cert)
	srv := httptest.NewUnstartedServer(s)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	_, s.Port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return s
}
