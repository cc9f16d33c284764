package keys_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/hsmgate/hsmgate/filecrypt"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/roles"
)

var fileFlags = keys.Flags{Derive: true, Sensitive: true, Destroyable: true, Modifiable: true}

// encryptFile encrypts content for label as p.
func encryptFile(t *testing.T, s *keys.Service, p *roles.Principal, label string, content []byte) []byte {
	t.Helper()
	var sealed bytes.Buffer
	if err := s.EncryptFile(ctx, p, keys.FileEncryptRequest{Key: keys.KeyRef{Label: label}, Content: bytes.NewReader(content), Sealed: &sealed}); err != nil {
		t.Fatalf("EncryptFile: %v", err)
	}
	return sealed.Bytes()
}

// decryptFile decrypts sealed with label as p; started tells whether any
// content was released.
func decryptFile(s *keys.Service, p *roles.Principal, label string, sealed []byte) (out []byte, started bool, err error) {
	var buf bytes.Buffer
	err = s.DecryptFile(ctx, p, keys.FileDecryptRequest{Key: keys.KeyRef{Label: label}, Sealed: bytes.NewReader(sealed)}, func(size int64) io.Writer {
		started = true
		buf.Grow(int(size))
		return &buf
	})
	return buf.Bytes(), started, err
}

func TestFileRoundTrip(t *testing.T) {
	s, b := newService(t, keys.Options{})
	mustCreate(t, s, alice, "f", func(r *keys.CreateKeyRequest) { r.Flags = fileFlags })
	content := make([]byte, filecrypt.ChunkSize+10)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	sealed := encryptFile(t, s, alice, "f", content)
	var size int64 = -1
	var out bytes.Buffer
	err := s.DecryptFile(ctx, alice, keys.FileDecryptRequest{Key: keys.KeyRef{Label: "f"}, Sealed: bytes.NewReader(sealed)}, func(n int64) io.Writer {
		size = n
		return &out
	})
	if err != nil || !bytes.Equal(out.Bytes(), content) || size != int64(len(content)) {
		t.Fatalf("DecryptFile: %v, size %d, %d bytes back", err, size, out.Len())
	}
	if b.Calls["AgreeEphemeral"] != 1 || b.Calls["Agree"] != 1 {
		t.Errorf("agreements: %v", b.Calls)
	}
	if _, _, err := decryptFile(s, bob, "f", sealed); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("another customer's key: %v", err)
	}
}

// TestFileDecryptReleasesNothingUnauthenticated: a file that fails
// anywhere, here in its last chunk, never reaches start.
func TestFileDecryptReleasesNothingUnauthenticated(t *testing.T) {
	s, _ := newService(t, keys.Options{})
	mustCreate(t, s, alice, "f", func(r *keys.CreateKeyRequest) { r.Flags = fileFlags })
	sealed := encryptFile(t, s, alice, "f", make([]byte, 3*filecrypt.ChunkSize))
	sealed[len(sealed)-1] ^= 1
	if _, started, err := decryptFile(s, alice, "f", sealed); !errors.Is(err, keys.ErrDecrypt) || started {
		t.Errorf("tampered: %v, released %t", err, started)
	}
	if _, started, err := decryptFile(s, alice, "f", sealed[:20]); !errors.Is(err, keys.ErrInvalidInput) || !errors.Is(err, filecrypt.ErrHeader) || started {
		t.Errorf("cut header: %v, released %t", err, started)
	}
}

func TestFileKeyRules(t *testing.T) {
	s, b := newService(t, keys.Options{Gate: refuseGate{keys.OpDecrypt}})
	mustCreate(t, s, alice, "f", func(r *keys.CreateKeyRequest) { r.Flags = fileFlags })
	mustCreate(t, s, alice, "sign-only", nil)
	sealed := encryptFile(t, s, alice, "f", []byte("policy applies to decryption only"))
	if _, started, err := decryptFile(s, alice, "f", sealed); !errors.Is(err, errNeedsApproval) || started {
		t.Errorf("gated decryption: %v", err)
	}
	if b.Calls["Agree"] != 0 {
		t.Error("the backend agreed past the gate")
	}
	err := s.EncryptFile(ctx, alice, keys.FileEncryptRequest{Key: keys.KeyRef{Label: "sign-only"}, Content: bytes.NewReader(nil), Sealed: io.Discard})
	if !errors.Is(err, keys.ErrNotPermitted) {
		t.Errorf("a key without derive: %v", err)
	}
	if err := s.SetBlocked(ctx, alice, keys.KeyRef{Label: "f"}, true); err != nil {
		t.Fatal(err)
	}
	err = s.EncryptFile(ctx, alice, keys.FileEncryptRequest{Key: keys.KeyRef{Label: "f"}, Content: bytes.NewReader(nil), Sealed: io.Discard})
	if !errors.Is(err, keys.ErrNotPermitted) {
		t.Errorf("a blocked key: %v", err)
	}
}
