package auth

// This file holds the verification keys of trusted JWT issuers (docs/credentials.md
// §8): public keys from PEM files and JSON Web Key Sets (RFC 7517) read
// from a file or an HTTPS URL, cached and refreshed.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// minRSABits is the smallest RSA modulus accepted for verifying tokens.
const minRSABits = 2048

// maxJWKSBytes bounds a fetched key set.
const maxJWKSBytes = 1 << 20

// jwtKey is one verification key of a trusted issuer.
type jwtKey struct {
	// id is the key id ("kid"); a key without one may verify any token.
	id string
	// alg, when set (a JWK's "alg"), is the only algorithm the key verifies.
	alg string
	pub crypto.PublicKey
}

// fits reports whether the key may verify a token signed with alg: the
// key type must be the algorithm's (an RSA key never verifies ES256, and
// no key ever verifies an HMAC).
func (k jwtKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		return alg == "RS256" || alg == "RS384" || alg == "RS512" || alg == "PS256"
	case *ecdsa.PublicKey:
		return alg == "ES256" && pub.Curve == elliptic.P256() || alg == "ES384" && pub.Curve == elliptic.P384()
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// checkPublicKey refuses key types and sizes no accepted algorithm uses.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits is too small (minimum %d)", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("EC curve %s is not accepted (P-256 or P-384)", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("key type %T is not accepted (RSA, EC P-256/P-384 or Ed25519)", pub)
	}
	return nil
}

// parsePEMKeys reads every public key of a PEM file: PUBLIC KEY, RSA
// PUBLIC KEY or CERTIFICATE blocks, all given key id kid. A private key
// in the file is refused: the gateway needs only the public half.
func parsePEMKeys(data []byte, kid string) ([]jwtKey, error) {
	var keys []jwtKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var pub crypto.PublicKey
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("PEM block %q is not a public key or certificate", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %q: %w", block.Type, err)
		}
		if err := checkPublicKey(pub); err != nil {
			return nil, err
		}
		keys = append(keys, jwtKey{id: kid, pub: pub})
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key or certificate found")
	}
	return keys, nil
}

// jwk is one JSON Web Key (RFC 7517/7518/8037), public members only.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads a JWK Set. Keys for other uses than signing and of
// types no accepted algorithm uses (P-521, X25519, symmetric "oct" keys)
// are skipped, as are malformed entries; a set without a single usable
// key is an error.
func parseJWKS(data []byte) ([]jwtKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	var keys []jwtKey
	var skipped []string
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pub, err := k.publicKey()
		if err == nil {
			err = checkPublicKey(pub)
		}
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key #%d (kid %q): %v", i+1, k.Kid, err))
			continue
		}
		keys = append(keys, jwtKey{id: k.Kid, alg: k.Alg, pub: pub})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWKS holds no usable signature key (%d entries; %s)", len(set.Keys), strings.Join(skipped, "; "))
	}
	return keys, nil
}

// publicKey converts the JWK to a Go public key.
func (k jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := jwkInt(k.N)
		if err != nil {
			return nil, fmt.Errorf("n: %w", err)
		}
		e, err := jwkInt(k.E)
		if err != nil {
			return nil, fmt.Errorf("e: %w", err)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("e is not an odd exponent ≥ 3")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return nil, fmt.Errorf("curve %q is not accepted", k.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, fmt.Errorf("x and y must be %d-byte base64url values", size)
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("EC point: %w", err)
		}
		return pub, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("curve %q is not accepted", k.Crv)
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("x must be a 32-byte base64url value")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("key type %q is not accepted", k.Kty)
}

// jwkInt decodes a base64url big-endian unsigned integer.
func jwkInt(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("not a base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}

// jwksSource is a key set read from a file or an HTTPS URL. It is read
// when built, re-read in the background once older than refresh, and
// re-read at once when a token names a key id it lacks, at most once per
// minRefresh so that tokens with invented key ids cannot flood the issuer.
type jwksSource struct {
	location   string // https URL or file path
	shown      string // location for logs and errors: a URL's password redacted
	client     *http.Client
	refresh    time.Duration
	minRefresh time.Duration
	log        *slog.Logger
	now        func() time.Time
	// onChange runs after a refresh changed the set (the scheme drops
	// the tokens it verified with the old keys).
	onChange func()

	keys       atomic.Pointer[[]jwtKey]
	attempted  atomic.Int64 // unix nanoseconds of the last read attempt
	background atomic.Bool  // a background refresh is running

	mu     sync.Mutex // serialises reads
	digest [32]byte   // SHA-256 of the current document (guarded by mu)
}

// newJWKSSource reads the key set once. A file that cannot be read or
// parsed is a configuration error; an unreachable URL is logged and
// retried on demand, so that an identity provider being down does not
// stop the gateway (its tokens are refused until the keys arrive).
func newJWKSSource(location string, client *http.Client, refresh, minRefresh time.Duration, log *slog.Logger, now func() time.Time) (*jwksSource, error) {
	isURL := strings.HasPrefix(location, "https://")
	shown := location
	if u, err := url.Parse(location); err == nil && u.User != nil {
		shown = u.Redacted()
	}
	if strings.HasPrefix(location, "http://") {
		return nil, fmt.Errorf("JWKS %s: only https:// URLs are accepted", shown)
	}
	s := &jwksSource{location: location, shown: shown, client: client, refresh: refresh, minRefresh: minRefresh, log: log, now: now}
	s.keys.Store(&[]jwtKey{})
	if err := s.update(context.Background()); err != nil {
		if !isURL {
			return nil, err
		}
		log.Warn("JWKS not available yet, retrying when a token needs it", "jwks", shown, "error", err.Error())
	}
	return s, nil
}

// current returns the keys, starting a background refresh when the last
// read is older than the refresh period.
func (s *jwksSource) current() []jwtKey {
	if s.since() > s.refresh && s.background.CompareAndSwap(false, true) {
		go func() {
			defer s.background.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// The periodic re-read is paced by refresh alone; minRefresh
			// paces only the reads that unknown key ids trigger.
			if err := s.update(ctx); err != nil {
				s.log.Warn("JWKS refresh failed, keeping the previous keys", "jwks", s.shown, "error", err.Error())
			}
		}()
	}
	return *s.keys.Load()
}

// refreshNow re-reads the set unless a read was attempted less than
// minRefresh ago. Concurrent callers wait for one read.
func (s *jwksSource) refreshNow(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.since() < s.minRefresh {
		return nil
	}
	return s.updateLocked(ctx)
}

// since returns the time since the last read attempt.
func (s *jwksSource) since() time.Duration {
	return s.now().Sub(time.Unix(0, s.attempted.Load()))
}

// update reads the set regardless of the rate limit.
func (s *jwksSource) update(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(ctx)
}

// updateLocked reads and installs the set; s.mu is held.
func (s *jwksSource) updateLocked(ctx context.Context) error {
	s.attempted.Store(s.now().UnixNano())
	data, err := s.read(ctx)
	if err != nil {
		return err
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return fmt.Errorf("JWKS %s: %w", s.shown, err)
	}
	sum := sha256.Sum256(data)
	changed := sum != s.digest
	s.digest = sum
	s.keys.Store(&keys)
	if changed && s.onChange != nil {
		s.onChange()
	}
	return nil
}

// read returns the document from the URL or the file.
func (s *jwksSource) read(ctx context.Context) ([]byte, error) {
	if !strings.HasPrefix(s.location, "https://") {
		data, err := os.ReadFile(s.location)
		if err != nil {
			return nil, fmt.Errorf("read JWKS: %w", err)
		}
		return data, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.location, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", s.shown, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS %s: HTTP status %d", s.shown, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS %s: %w", s.shown, err)
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("fetch JWKS %s: larger than %d bytes", s.location, maxJWKSBytes)
	}
	return data, nil
}
