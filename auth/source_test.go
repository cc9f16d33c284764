package auth

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// TestProxiesSource: forwarded headers name the client only when the TCP
// peer is a trusted proxy, and then the right-most entry no trusted proxy
// wrote.
func TestProxiesSource(t *testing.T) {
	trusted, err := ParseProxies([]string{"10.0.0.0/8", "127.0.0.1", "2001:db8:1::/48"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what    string
		proxies Proxies
		peer    string
		xff     []string // one X-Forwarded-For line each
		realIP  string
		want    string
	}{
		{"no proxy configured: forged headers ignored", nil, "203.0.113.5:1", []string{"192.0.2.9"}, "192.0.2.8", "203.0.113.5"},
		{"untrusted peer: its header ignored", trusted, "203.0.113.5:1", []string{"192.0.2.9"}, "", "203.0.113.5"},
		{"X-Real-IP is never read", trusted, "10.1.1.1:1", nil, "192.0.2.8", "10.1.1.1"},
		{"client behind a trusted proxy", trusted, "10.1.1.1:1", []string{"192.0.2.9"}, "", "192.0.2.9"},
		{"client behind two trusted proxies", trusted, "10.1.1.1:1", []string{"192.0.2.9, 10.2.2.2"}, "", "192.0.2.9"},
		{"forged entries left of the client", trusted, "10.1.1.1:1", []string{"198.51.100.1, 192.0.2.9"}, "", "192.0.2.9"},
		{"spoofed hop after the real client", trusted, "10.1.1.1:1", []string{"192.0.2.9, 203.0.113.5"}, "", "203.0.113.5"},
		{"header lines read as one list", trusted, "10.1.1.1:1", []string{"198.51.100.1", "192.0.2.9,10.2.2.2"}, "", "192.0.2.9"},
		{"the proxy itself, no header", trusted, "10.1.1.1:1", nil, "", "10.1.1.1"},
		{"every entry trusted: the left-most proxy", trusted, "10.1.1.1:1", []string{"10.3.3.3, 10.2.2.2"}, "", "10.3.3.3"},
		{"an entry that is no address: the last proxy", trusted, "10.1.1.1:1", []string{"192.0.2.9, 10.2.2.2:8080, 10.3.3.3"}, "", "10.3.3.3"},
		{"an empty entry: the last proxy", trusted, "10.1.1.1:1", []string{"192.0.2.9,"}, "", "10.1.1.1"},
		{"IPv4-mapped peer", trusted, "[::ffff:127.0.0.1]:1", []string{"::ffff:192.0.2.9"}, "", "192.0.2.9"},
		{"IPv6 proxy and client", trusted, "[2001:db8:1::5%eth0]:1", []string{"2001:db8:2::7"}, "", "2001:db8:2::7"},
		{"RemoteAddr without a port", nil, "192.0.2.7", nil, "", "192.0.2.7"},
		{"RemoteAddr not an address", trusted, "pipe", []string{"192.0.2.9"}, "", "invalid IP"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if c.realIP != "" {
			r.Header.Set("X-Real-IP", c.realIP)
		}
		if got := c.proxies.Source(r).String(); got != c.want {
			t.Errorf("%s: Source %s, want %s", c.what, got, c.want)
		}
		if got := RequestSource(c.proxies.Resolve(r)).String(); got != c.want {
			t.Errorf("%s: RequestSource after Resolve %s, want %s", c.what, got, c.want)
		}
	}
}

// TestRequestSourceWithoutResolve: a request the router did not resolve
// is charged to its TCP peer, whatever it forwards.
func TestRequestSourceWithoutResolve(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:4711"
	r.Header.Set("X-Forwarded-For", "192.0.2.9")
	if got := RequestSource(r); got != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("RequestSource %s, want the peer 127.0.0.1", got)
	}
}

func TestParseProxies(t *testing.T) {
	p, err := ParseProxies([]string{" 10.1.2.3/8", "::ffff:192.0.2.1", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.1/32", "2001:db8::1/128"}
	for i, prefix := range p {
		if prefix.String() != want[i] {
			t.Errorf("entry %d: %s, want %s", i, prefix, want[i])
		}
	}
	if _, err := ParseProxies([]string{"10.0.0.0/8", "proxy.example"}); err == nil || !strings.HasPrefix(err.Error(), "[1]: ") {
		t.Errorf("a host name: %v, want an error naming entry [1]", err)
	}
}
