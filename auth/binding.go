package auth

// This file holds the opt-in request binding of the signature schemes
// (docs/credentials.md §5.3): the seed schemes' signatures do not cover the
// whole request (Barong's covers only nonce and key id, Argus's the URI,
// Armor's everything but the query string), so an unused captured
// signature authorises another request. Each scheme carries the rest
// where its definition leaves room, checked when present and required
// with requireRequestBinding.

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hsmgate/hsmgate/store"
)

// HeaderBarongRequestSignature carries the Barong request binding.
const HeaderBarongRequestSignature = "X-Auth-Request-Signature"

// bodySHA256 returns the SHA-256 of the request body, which stays
// readable for the handler (GET and HEAD have none).
func bodySHA256(r *http.Request) ([]byte, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	return sum[:], nil
}

// Claims of an Argus signature that bind it to the whole request.
var argusBindingClaims = []string{"method", "query", "bodySha256"}

// checkBinding checks the request-binding claims of an Argus signature:
// method, query (the raw query string, "" for none) and bodySha256
// (base64url of the body's SHA-256), all three or none; none is refused
// when the binding is required.
func (a *Argus) checkBinding(r *http.Request, claims jwt.MapClaims) error {
	var values [3]string
	present := 0
	for i, name := range argusBindingClaims {
		if v, ok := claims[name]; ok {
			present++
			values[i], _ = v.(string)
		}
	}
	switch {
	case present == 0 && !a.opts.RequireRequestBinding:
		return nil
	case present == 0:
		return failure(ErrMalformed, "%s: this gateway requires the claims method, query and bodySha256, which bind a signature to its request",
			HeaderArgusSignature)
	case present != len(values):
		return failure(ErrMalformed, "%s: the claims method, query and bodySha256 bind a signature to its request: all three or none",
			HeaderArgusSignature)
	}
	sum, err := bodySHA256(r)
	if err != nil {
		return err
	}
	for i, want := range []string{r.Method, r.URL.RawQuery, base64.RawURLEncoding.EncodeToString(sum)} {
		if values[i] != want {
			return failure(ErrInvalid, "%s: the %s claim does not match the request", HeaderArgusSignature, argusBindingClaims[i])
		}
	}
	return nil
}

// barongBindingMessage is what X-Auth-Request-Signature MACs: nonce and
// key id as the Barong signature, then method, path, query and the hex
// SHA-256 of the body, each after a newline (which no Barong signature's
// message holds, so neither MAC stands for the other).
func barongBindingMessage(r *http.Request, nonce, kid string, bodySum []byte) []byte {
	return []byte(nonce + kid + "\n" + r.Method + "\n" + r.URL.EscapedPath() + "\n" + r.URL.RawQuery + "\n" + hex.EncodeToString(bodySum))
}

// checkBinding checks the X-Auth-Request-Signature of a request whose
// Barong signature by key c verified: absent, it is refused only when the
// binding is required.
func (b *Barong) checkBinding(r *http.Request, c *store.Credential, nonce, kid string) error {
	sig := r.Header.Get(HeaderBarongRequestSignature)
	if sig == "" {
		if b.keys.RequireRequestBinding {
			return barongError(ErrMalformed, "invalid_api_key_headers", "%s is required by this gateway", HeaderBarongRequestSignature)
		}
		return nil
	}
	sum, err := bodySHA256(r)
	if err != nil {
		return err
	}
	mac, err := b.keys.mac(r.Context(), c, crypto.SHA256, barongBindingMessage(r, nonce, kid, sum))
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(hex.EncodeToString(mac)), []byte(sig)) {
		return barongError(ErrInvalid, "invalid_signature", "%s does not match the request", HeaderBarongRequestSignature)
	}
	return nil
}

// armorTargets are the forms of the request's path an Armor signature may
// cover: unless the binding is required, the path alone, as the scheme
// defines it (tried first: its clients pay nothing more); and, when the
// request has a query string, the path with "?" and the query as sent.
func (a *Armor) armorTargets(r *http.Request) []string {
	path := r.URL.EscapedPath()
	switch {
	case r.URL.RawQuery == "":
		return []string{path}
	case a.keys.RequireRequestBinding:
		return []string{path + "?" + r.URL.RawQuery}
	}
	return []string{path, path + "?" + r.URL.RawQuery}
}
