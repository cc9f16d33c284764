package hsm

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
)

func TestSealedHMACMatchesSoftwareHMAC(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	// The published Barong example (docs/credentials.md §10): the secret is used as ASCII.
	secret := []byte("2d0b4979c7fe6986daa8e21d1dc0644f")
	sealed, err := h.SealSecret(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != len(secret)+8 {
		t.Fatalf("wrapped length %d", len(sealed))
	}
	mac, err := h.SealedHMAC(ctx, "61d025b8573501c2", sealed, crypto.SHA256, []byte("158452400514361d025b8573501c2"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "bd42b945e095880e28d046846dbecf655fdf09d95a396a24fe6fe1df42f15d13"
	if got := hexString(mac); got != want {
		t.Fatalf("Barong example: got %s want %s", got, want)
	}
	// Cached handle, then a fresh unwrap after ForgetSealed.
	for range 2 {
		again, err := h.SealedHMAC(ctx, "61d025b8573501c2", sealed, crypto.SHA256, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		sw := hmac.New(sha256.New, secret)
		sw.Write([]byte("x"))
		if !hmac.Equal(again, sw.Sum(nil)) {
			t.Fatal("token HMAC differs from software HMAC")
		}
		h.ForgetSealed("61d025b8573501c2")
	}
	long := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	sealedLong, err := h.SealSecret(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	mac, err = h.SealedHMAC(ctx, "armor", sealedLong, crypto.SHA512, []byte("msg"))
	if err != nil {
		t.Fatal(err)
	}
	sw := hmac.New(sha512.New, long)
	sw.Write([]byte("msg"))
	if !hmac.Equal(mac, sw.Sum(nil)) {
		t.Fatal("HMAC-SHA512 differs")
	}
	if _, err := h.SealSecret(ctx, []byte("short")); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("short secret: %v", err)
	}
	if _, err := h.SealedHMAC(ctx, "x", append([]byte{sealed[0] ^ 1}, sealed[1:]...), crypto.SHA256, nil); err == nil {
		t.Fatal("a tampered wrapped secret unwrapped")
	}
}

// TestSealedHMACConcurrentUse drives one credential from many goroutines
// while its cached object is dropped and its secret replaced: every call
// must get the MAC of the secret it asked with, never a token error from an
// object destroyed under it.
func TestSealedHMACConcurrentUse(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	secrets := [][]byte{[]byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")}
	sealed := make([][]byte, len(secrets))
	for i, secret := range secrets {
		var err error
		if sealed[i], err = h.SealSecret(ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	msg := []byte("nonce")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				which := (g + i/50) % len(secrets)
				mac, err := h.SealedHMAC(ctx, "shared", sealed[which], crypto.SHA256, msg)
				if err != nil {
					errs <- err
					return
				}
				sw := hmac.New(sha256.New, secrets[which])
				sw.Write(msg)
				if !hmac.Equal(mac, sw.Sum(nil)) {
					errs <- errors.New("MAC of the wrong secret")
					return
				}
				if g == 0 && i%20 == 0 {
					h.ForgetSealed("shared")
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Nothing leaks: at most the one cached object of "shared" is left.
	h.ForgetSealed("shared")
	if n := len(h.sealed.keys); n != 0 {
		t.Fatalf("%d cached objects after ForgetSealed", n)
	}
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
