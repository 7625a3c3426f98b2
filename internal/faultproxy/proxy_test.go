package faultproxy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echoServer answers every connection by writing back what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, msg []byte) time.Duration {
	t.Helper()
	start := time.Now()
	_, err := c.Write(msg)
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	return time.Since(start)
}

func TestForwardsBytesUnchanged(t *testing.T) {
	p, err := New(echoServer(t))
	require.NoError(t, err)
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	big := make([]byte, 3<<20) // many chunks, both directions at once
	_, _ = rand.Read(big)
	done := make(chan []byte)
	go func() {
		got := make([]byte, len(big))
		_, err := io.ReadFull(c, got)
		if err != nil {
			got = nil
		}
		done <- got
	}()
	_, err = c.Write(big)
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, <-done), "3 MiB echoed back in order")
	require.Equal(t, int64(1), p.Connections())
	// The proxy counts a chunk after writing it, so the last chunk's count
	// may land just after the client has read it.
	require.Eventually(t, func() bool { return p.Bytes() == int64(2*len(big)) }, 5*time.Second, time.Millisecond,
		"bytes forwarded: %d, want %d", p.Bytes(), 2*len(big))
}

// The delay is a lower bound on every round trip (one way each direction)
// and can be changed while connections are open. Only lower bounds are
// asserted: a busy machine may add time, never remove it.
func TestLatencyDelaysEachDirection(t *testing.T) {
	p, err := New(echoServer(t))
	require.NoError(t, err)
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()

	roundTrip(t, c, []byte("warm"))
	p.SetLatency(100 * time.Millisecond)
	require.Equal(t, 100*time.Millisecond, p.Latency())
	for range 3 {
		require.GreaterOrEqual(t, roundTrip(t, c, []byte("ping")), 200*time.Millisecond)
	}
	p.SetLatency(-time.Second)
	require.Zero(t, p.Latency(), "negative latency reads as none")
}

func TestCloseConnectionsAndClose(t *testing.T) {
	p, err := New(echoServer(t))
	require.NoError(t, err)
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	roundTrip(t, c, []byte("a"))

	p.CloseConnections()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err, "the client sees its connection dropped")

	c2, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err, "new connections are still accepted")
	roundTrip(t, c2, []byte("b"))
	c2.Close()

	require.NoError(t, p.Close())
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	require.Error(t, err, "closed proxy no longer listens")
}

func TestDeadTargetClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	ln.Close()
	p, err := New(dead)
	require.NoError(t, err)
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
}

func TestListenRefusesNonLoopback(t *testing.T) {
	_, err := Listen("0.0.0.0:0", "127.0.0.1:1")
	require.True(t, errors.Is(err, ErrNotLoopback), "%v", err)
	_, err = Listen("127.0.0.1:0", "no-port")
	require.Error(t, err)
	_, err = Listen("garbage", "127.0.0.1:1")
	require.Error(t, err)
	p, err := Listen("localhost:0", "127.0.0.1:1")
	require.NoError(t, err)
	require.NoError(t, p.Close())
}
