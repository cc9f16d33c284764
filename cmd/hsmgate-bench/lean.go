package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// leanPool is the load generator's HTTP/1.1 client for the measured
// requests: persistent TLS connections, each request pre-rendered as bytes,
// responses parsed only as far as status and Content-Length. On a 2-core
// machine net/http's client costs as much CPU per request as the server's
// HTTP layer; like wrk, this one costs a fraction, so the measurement shows
// the server rather than the load generator. Setup requests keep using
// net/http (restClient.do).
type leanPool struct {
	addr   string
	tlsCfg *tls.Config
	conns  chan *leanConn
}

// leanConn is one keep-alive connection.
type leanConn struct {
	conn     net.Conn
	r        *bufio.Reader
	lastUsed time.Time
}

// leanMaxIdle is how long a connection may sit unused before it is
// replaced rather than reused: well below the server's idle timeout
// (120 s), which a long phase of the bench that sends no request (the raw
// key-count test) outlasts.
const leanMaxIdle = 30 * time.Second

// newLeanPool returns a pool of at most size connections to addr.
func newLeanPool(addr string, tlsCfg *tls.Config, size int) *leanPool {
	p := &leanPool{addr: addr, tlsCfg: tlsCfg, conns: make(chan *leanConn, size)}
	for range size {
		p.conns <- nil // a free slot; dialled on first use
	}
	return p
}

// close drops every idle connection.
func (p *leanPool) close() {
	for {
		select {
		case c := <-p.conns:
			if c != nil {
				c.conn.Close()
			}
		default:
			return
		}
	}
}

// renderRequest pre-renders a POST with the X-API-KEY header.
func renderRequest(host, path, token string, body []byte) []byte {
	return newRequestTemplate(host, path, body).render(nil, "X-API-KEY: "+token)
}

// roundTrip sends one pre-rendered request and checks for 200.
func (p *leanPool) roundTrip(ctx context.Context, req []byte) error {
	var c *leanConn
	select {
	case c = <-p.conns:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := p.exchange(&c, req)
	if err != nil && c != nil {
		c.conn.Close()
		c = nil
	}
	p.conns <- c
	return err
}

// exchange dials when needed, writes req and reads one response.
func (p *leanPool) exchange(cp **leanConn, req []byte) error {
	if *cp != nil && time.Since((*cp).lastUsed) > leanMaxIdle {
		(*cp).conn.Close()
		*cp = nil
	}
	if *cp == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", p.addr, p.tlsCfg)
		if err != nil {
			return err
		}
		*cp = &leanConn{conn: conn, r: bufio.NewReaderSize(conn, 16<<10)}
	}
	c := *cp
	_ = c.conn.SetDeadline(time.Now().Add(requestTimeout))
	if _, err := c.conn.Write(req); err != nil {
		return err
	}
	status, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(status) < 12 || !bytes.Equal(status[9:12], []byte("200")) {
		return fmt.Errorf("status %q", bytes.TrimSpace(status))
	}
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return fmt.Errorf("Content-Length %q", value)
			}
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	if _, err = c.r.Discard(length); errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	c.lastUsed = time.Now()
	return err
}
