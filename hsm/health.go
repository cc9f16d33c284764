package hsm

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/pkcs11"
)

// Token health. A token can go away under sessions that still say they are
// logged in: SoftHSM2 with its token directory renamed or unreadable answers
// CKR_OBJECT_HANDLE_INVALID for every key, finds no objects and fails
// C_GetTokenInfo with CKR_GENERAL_ERROR. Answering "key … does not exist" then
// would be a lie, so every such symptom (a handle that was valid and is not,
// a label the index knew that the token no longer finds, a scan that lost
// labels, a general error) and a periodic timer run a health probe; a token
// that fails it is treated as lost: every request answers ErrUnavailable,
// Ready reports false, and the background loop re-initialises the module
// until the token is back.

// DefaultHealthInterval is how often the token is probed when nothing else
// triggers a probe.
const DefaultHealthInterval = 3 * time.Second

// probeTimeout bounds how long a probe waits for a session.
const probeTimeout = 2 * time.Second

// probe checks that the token is still there: C_GetTokenInfo answers for
// the slot with the configured label, and a session still sees the pepper
// key's object.
func (h *HSM) probe(ctx context.Context, st *tokenState) error {
	ti, err := h.ctx.GetTokenInfo(st.slot)
	if err != nil {
		return fmt.Errorf("C_GetTokenInfo: %w", err)
	}
	if ti.Label != h.cfg.TokenLabel {
		return fmt.Errorf("slot %d now holds token %q", st.slot, ti.Label)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err = h.run(ctx, keyLane, func(s *session) error {
		_, err := h.ctx.GetAttributeValue(s.s, st.pepper, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, nil)})
		return err
	})
	if err != nil {
		return fmt.Errorf("internal key: %w", err)
	}
	return nil
}

// suspect runs a health probe after a symptom (cause names it for the
// log) unless a probe that started after the symptom was seen has passed:
// only such a probe says anything about the token as it is now, and it lets
// a burst of symptoms cost one probe, not one per request. (A probe that
// passed just before the token went away must not vouch for it: the
// symptom would then be answered as a missing key.) It returns nil when the token is
// healthy and ErrUnavailable when it is not, in which case recovery has
// started. It must not be called while holding a session: recovery waits
// for every session to come back.
func (h *HSM) suspect(ctx context.Context, cause string) error {
	seen := time.Now()
	st := h.state.Load()
	if !h.ready.Load() || st == nil {
		return fmt.Errorf("%w: reconnecting", ErrUnavailable)
	}
	h.healthMu.Lock()
	if h.healthyState == st && h.healthyProbeStart.After(seen) {
		h.healthMu.Unlock()
		return nil
	}
	if !h.ready.Load() || h.state.Load() != st {
		// Another probe found the loss (or recovered) while this one waited.
		h.healthMu.Unlock()
		return fmt.Errorf("%w: reconnecting", ErrUnavailable)
	}
	start := time.Now()
	err := h.probe(ctx, st)
	if err == nil {
		h.healthyState, h.healthyProbeStart = st, start
	}
	h.healthMu.Unlock()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // the caller gave up: that says nothing about the token
	}
	h.log.Error("token lost", "token", h.cfg.TokenLabel, "symptom", cause, "error", err.Error())
	if rerr := h.reconnect(st); rerr != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, rerr)
	}
	return fmt.Errorf("%w: token reconnected after %s, retry", ErrUnavailable, cause)
}

// symptomOfLoss reports whether a PKCS#11 error is one a lost token
// produces under sessions that still say they are logged in.
func symptomOfLoss(err error) bool {
	return isKind(err, pkcs11.CKR_GENERAL_ERROR) || isKind(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) ||
		isKind(err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED)
}

// probeIfReady is the periodic health check: it probes a token believed
// healthy (a lost one is the retry loop's); it is never done.
func (h *HSM) probeIfReady() bool {
	if h.ready.Load() {
		_ = h.suspect(context.Background(), "periodic health check")
	}
	return false
}
