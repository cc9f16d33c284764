package hsm

import (
	"bytes"
	"context"
	"testing"

	"github.com/miekg/pkcs11"
)

// TestFastSignMatchesMiekg checks the signing fast path against the
// miekg/pkcs11 path on the same token: the same HMAC for the same key and
// data, the second C_Sign after a buffer that is too small, and the
// module's error codes passed on unchanged.
func TestFastSignMatchesMiekg(t *testing.T) {
	h := newTestHSM(t)
	if h.fast == nil {
		t.Fatal("SoftHSM2 exports C_SignInit and C_Sign, but the fast path was not set up")
	}
	ctx := context.Background()
	data := []byte("fast path")
	fast, err := h.Pepper(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	f := h.fast
	h.fast = nil
	slow, err := h.Pepper(ctx, data)
	h.fast = f
	if err != nil {
		t.Fatal(err)
	}
	if len(fast) != 32 || !bytes.Equal(fast, slow) {
		t.Fatalf("fast path HMAC %x, miekg path %x", fast, slow)
	}
	if _, err := h.Pepper(ctx, nil); err != nil {
		t.Fatalf("HMAC of nothing: %v", err)
	}

	err = h.do(ctx, true, func(s *session) error {
		short, err := f.signInto(s.s, pkcs11.CKM_SHA256_HMAC, s.st.pepper, data, make([]byte, 1))
		if err != nil {
			return err
		}
		if !bytes.Equal(short, fast) {
			t.Errorf("after a 1-byte buffer: %x, want %x", short, fast)
		}
		_, err = f.signOnce(s.s, pkcs11.CKM_SHA256_HMAC, pkcs11.ObjectHandle(1<<30), data)
		if !isKind(err, pkcs11.CKR_KEY_HANDLE_INVALID) && !isKind(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
			t.Errorf("sign with a handle that names nothing: %v, want the module's handle error", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
