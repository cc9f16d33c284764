package auth

// This file holds the one answer to "which address is the client of this
// request": the access log, the throttle, the login and TOTP throttles
// and the validSources of Argus credentials all read RequestSource.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// headerForwardedFor is the header through which a trusted proxy names
// the client it forwards for. X-Real-IP and Forwarded are never read:
// one header, one rule.
const headerForwardedFor = "X-Forwarded-For"

// Proxies are the reverse proxies and load balancers trusted to name the
// client of a request in X-Forwarded-For (server.trustedProxies). The
// zero value trusts none: the client is the TCP peer, whatever the
// request's headers say.
type Proxies []netip.Prefix

// ParseProxies parses a list of addresses and CIDR prefixes; an error
// names the first entry that is neither.
func ParseProxies(list []string) (Proxies, error) {
	out := make(Proxies, 0, len(list))
	for i, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePrefix parses a CIDR prefix or an IP address (its own /32 or /128
// prefix) into a canonical, masked prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", s)
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

// Source returns the client address of r: its TCP peer, unless the peer
// is one of p; then the right-most X-Forwarded-For entry that is not one
// of p. Each proxy appends the address it received the request from, so
// the entries right of that one were written by trusted proxies, and
// anything left of it is what the client chose to send. When every entry
// is trusted, or the walk meets one that is not a bare IP address (a
// proxy that writes ports or brackets, or a forged header that a proxy
// passed on unchanged), the source is the last trusted address: the
// request is charged to the proxy rather than to a name nobody vouches
// for. The zero Addr when RemoteAddr is not an address.
func (p Proxies) Source(r *http.Request) netip.Addr {
	addr := peer(r)
	if !p.trust(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values(headerForwardedFor), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		if addr = hop.Unmap().WithZone(""); !p.trust(addr) {
			return addr
		}
	}
	return addr
}

// trust reports whether addr is one of p.
func (p Proxies) trust(addr netip.Addr) bool {
	for _, prefix := range p {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// peer returns the TCP peer of r (the zero Addr when RemoteAddr is not an
// address).
func peer(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap().WithZone("")
}

// sourceKey is the context key of the address Resolve records.
type sourceKey struct{}

// Resolve returns r with its client address (Source) recorded, for
// RequestSource to read wherever the request goes next. The router calls
// it first thing when proxies are configured.
func (p Proxies) Resolve(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), sourceKey{}, p.Source(r)))
}

// RequestSource returns the client address of a request: the one Resolve
// recorded, else its TCP peer (no proxy trusted). Everything that names
// or counts the client reads it here.
func RequestSource(r *http.Request) netip.Addr {
	if addr, ok := r.Context().Value(sourceKey{}).(netip.Addr); ok {
		return addr
	}
	return Proxies(nil).Source(r)
}
