//go:build reliability

package reliability

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpProxy forwards 127.0.0.1 connections to a target, and can cut them: Cut
// closes every live connection and refuses new ones for a while, as a
// database outage or a network partition would.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu          sync.Mutex
	conns       map[net.Conn]struct{}
	refuseUntil time.Time
	accepted    int
	refused     int
	cut         int
	wg          sync.WaitGroup
}

// startProxy listens on 127.0.0.1:0 and forwards to target until the test ends.
func startProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if time.Now().Before(p.refuseUntil) {
			p.refused++
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.accepted++
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *tcpProxy) forward(c net.Conn) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		p.drop(c)
		return
	}
	p.mu.Lock()
	if _, live := p.conns[c]; !live { // cut while dialling
		p.mu.Unlock()
		up.Close()
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	var once sync.Once
	closeBoth := func() { once.Do(func() { p.drop(c); p.drop(up) }) }
	go func() {
		_, _ = io.Copy(up, c)
		closeBoth()
	}()
	_, _ = io.Copy(c, up)
	closeBoth()
}

func (p *tcpProxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// Cut closes every live connection and refuses new ones for d.
func (p *tcpProxy) Cut(d time.Duration) int {
	p.mu.Lock()
	p.refuseUntil = time.Now().Add(d)
	p.cut++
	n := 0
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // reset, as a broken network or a killed server would
		}
		c.Close()
		delete(p.conns, c)
		n++
	}
	p.mu.Unlock()
	return n
}

// Refusing reports whether the proxy is refusing connections now.
func (p *tcpProxy) Refusing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Now().Before(p.refuseUntil)
}

// Stats returns how many connections were forwarded and refused.
func (p *tcpProxy) Stats() (accepted, refused int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.refused
}

// Close stops the proxy and its connections.
func (p *tcpProxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
