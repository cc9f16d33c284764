package hsm

import (
	"context"
	"fmt"
	"sync"
)

// Mechanism and key-type numbers missing from github.com/miekg/pkcs11.
const (
	ckkECEdwards           = 0x40
	ckmECEdwardsKeyPairGen = 0x1055
	ckmEDDSA               = 0x1057
)

// MaxRandom is the largest number of bytes one Random call returns.
const MaxRandom = 65536

// Random returns n bytes from the token's random number generator.
func (h *HSM) Random(ctx context.Context, n int) ([]byte, error) {
	if n < 1 || n > MaxRandom {
		return nil, fmt.Errorf("%w: random length %d outside 1..%d", ErrInvalidInput, n, MaxRandom)
	}
	var out []byte
	err := h.do(ctx, true, func(s *session) error {
		var err error
		out, err = h.ctx.GenerateRandom(s.s, n)
		return err
	})
	if err != nil {
		return nil, classify("C_GenerateRandom", err)
	}
	return out, nil
}

// randomBuffer serves small random values (IVs, salts) from a buffer that
// is refilled from the token 4 KiB at a time, so that an encryption costs one
// PKCS#11 operation instead of two.
type randomBuffer struct {
	h   *HSM
	mu  sync.Mutex
	buf []byte
}

// randomRefill is how many bytes one refill draws from the token.
const randomRefill = 4096

// newRandomBuffer returns an empty buffer drawing from h.
func newRandomBuffer(h *HSM) *randomBuffer { return &randomBuffer{h: h} }

// read returns n fresh random bytes; each byte is handed out once.
func (r *randomBuffer) read(ctx context.Context, n int) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) < n {
		fresh, err := r.h.Random(ctx, randomRefill)
		if err != nil {
			return nil, err
		}
		r.buf = fresh
	}
	out := make([]byte, n)
	copy(out, r.buf[:n])
	clear(r.buf[:n])
	r.buf = r.buf[n:]
	return out, nil
}
