// Package faultproxy is a TCP proxy on loopback that delays the bytes it
// forwards, to make a dependency (PostgreSQL, an OTLP endpoint) answer
// slowly in tests without touching the dependency itself.
//
// Each chunk read from one side is written to the other side Latency after
// it was read, in order: the delay is a one-way latency, not a bandwidth
// cap, so a request/response protocol sees about 2 x Latency per round
// trip. A bounded number of chunks may be in flight per direction; past
// that the proxy stops reading, so a fast sender meets TCP backpressure
// instead of a growing buffer in the proxy.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	chunkSize = 32 << 10
	// inFlight bounds the chunks held per direction (at most 8 MiB).
	inFlight = 256
)

// ErrNotLoopback is returned for a listen address that is not loopback:
// the proxy is a test tool and never listens on a real interface.
var ErrNotLoopback = errors.New("faultproxy: listen address must be loopback")

// Proxy forwards connections accepted on Addr to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	latency atomic.Int64 // nanoseconds
	conns   atomic.Int64
	bytes   atomic.Int64

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New listens on 127.0.0.1 (a free port) and forwards to target.
func New(target string) (*Proxy, error) {
	return Listen("127.0.0.1:0", target)
}

// Listen listens on addr, which must be a loopback address, and forwards
// every accepted connection to target.
func Listen(addr, target string) (*Proxy, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%w: got %q", ErrNotLoopback, addr)
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, open: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency sets the one-way delay applied from now on (0: none).
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(max(d, 0))) }

// Latency is the current one-way delay.
func (p *Proxy) Latency() time.Duration { return time.Duration(p.latency.Load()) }

// Connections is the number of client connections accepted so far.
func (p *Proxy) Connections() int64 { return p.conns.Load() }

// Bytes is the number of bytes forwarded so far, both directions.
func (p *Proxy) Bytes() int64 { return p.bytes.Load() }

// CloseConnections drops every open connection (both sides), as a network
// fault would; new connections are still accepted.
func (p *Proxy) CloseConnections() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.open {
		c.Close()
	}
}

// Close stops listening, drops every connection and waits for the proxy's
// goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.CloseConnections()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.open, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go p.serve(client)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	if !p.track(client) {
		client.Close()
		return
	}
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		return // the client sees its connection closed, as with a dead server
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(server, client) }()
	go func() { defer wg.Done(); p.pipe(client, server) }()
	wg.Wait()
}

type chunk struct {
	b  []byte
	at time.Time
}

// pipe copies src to dst, each chunk delayed by the latency current when it
// was read. When either side fails both are closed, which ends the other
// direction too.
func (p *Proxy) pipe(dst, src net.Conn) {
	ch := make(chan chunk, inFlight)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range ch {
			if d := time.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(c.b); err != nil {
				dst.Close()
				src.Close()
				for range ch { // let the reader finish
				}
				return
			}
			p.bytes.Add(int64(len(c.b)))
		}
		// src ended: pass the half-close on when the peer supports it.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	for {
		buf := make([]byte, chunkSize)
		n, err := src.Read(buf)
		if n > 0 {
			ch <- chunk{b: buf[:n], at: time.Now().Add(p.Latency())}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			break
		}
	}
	close(ch)
	<-done
}
