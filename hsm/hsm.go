// Package hsm is the PKCS#11 backend: module loading and login, a bounded
// session pool, a label→handle cache, key generation, import and export,
// every crypto operation, and recovery after session or token loss.
//
// It knows nothing about HTTP, JSON or roles.
package hsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// Info describes the token and its library.
type Info struct {
	Library      string
	Manufacturer string
	Model        string
	Firmware     string
	Label        string
	Serial       string
	FreeMemory   uint
	TotalMemory  uint
}

// HSM is one logged-in PKCS#11 token shared by the whole process.
type HSM struct {
	cfg Config
	ctx *pkcs11.Ctx
	// fast is the module's signing fast path, nil when unavailable.
	fast *fastSigner
	log  *slog.Logger

	// state is swapped as a whole when the pool is rebuilt.
	state   atomic.Pointer[tokenState]
	rebuild sync.Mutex
	// retrying is set, under rebuild, while the background loop reconnects.
	retrying bool
	ready    atomic.Bool
	// reconnects counts pool rebuilds, for metrics.
	reconnects atomic.Uint64

	keys *keyCache
	// lookups coalesces the searches of labels the index lacks (lookup.go).
	lookups *lookups
	// generating bounds the key generations running at once (CreateKey).
	generating chan struct{}
	// sealed caches unwrapped credential secrets (sealed.go).
	sealed sealedCache
	// labels serialises deletions and metadata updates (read-modify-write).
	labels sync.Mutex
	// dataObjects serialises creations and deletions of data objects
	// (dataobject.go).
	dataObjects sync.Mutex
	// scanning lets one label rescan run at a time.
	scanning sync.Mutex
	ivs      *randomBuffer
	// healthMu serialises health probes; healthyProbeStart is when the
	// last probe of healthyState that passed began.
	healthMu          sync.Mutex
	healthyState      *tokenState
	healthyProbeStart time.Time
	// leftovers is the number of quarantined objects the last scan found.
	leftovers atomic.Int64
	// leftoverSeenMu guards leftoverSeen: when the scans first found each
	// leftover of unknown age (ages).
	leftoverSeenMu sync.Mutex
	leftoverSeen   map[leftoverID]time.Time
	stopCh         chan struct{}
	wg             sync.WaitGroup
	// background is the context of work no request waits for (index
	// walks, reloads after a reconnect); Close cancels it, so that a
	// shutdown does not wait for a walk over 10,000 keys.
	background     context.Context
	stopBackground context.CancelFunc
}

// lane selects the session pool a call borrows from.
type lane int

const (
	// keyLane serves key operations and key management.
	keyLane lane = iota
	// credentialLane serves the short HMACs that check callers'
	// credentials (pepper and sealed secrets), so that authenticating a
	// request never queues behind slow key operations of other requests.
	credentialLane
	lanes
)

// credentialSessions is the size of the credential lane's pool: its HMACs
// take microseconds, so two sessions keep it from queueing.
const credentialSessions = 2

// tokenState is everything that becomes invalid when the token is lost.
type tokenState struct {
	slot uint
	// pools holds the idle sessions of each lane.
	pools [lanes]chan pkcs11.SessionHandle
	mechs map[uint]pkcs11.MechanismInfo
	info  Info
	// pepper turns secrets into verifiers (PepperKeyLabel).
	pepper pkcs11.ObjectHandle
	// attestation, integrity and audit are the internal signing keys
	// (internal.go); after a reconnect, the lost state's until reloaded.
	attestation, integrity, audit atomic.Pointer[Key]
	// master wraps the credential secrets kept in the store (sealed.go).
	master pkcs11.ObjectHandle
	// exactPadWrap: the token's CKM_AES_KEY_WRAP_PAD passed the RFC 5649 vector.
	exactPadWrap bool
}

// Open loads the module, logs in, fills the session pool, discovers the
// mechanisms and makes sure the internal keys exist.
func Open(cfg Config, log *slog.Logger) (*HSM, error) {
	if log == nil {
		log = slog.Default()
	}
	ctx := pkcs11.New(cfg.ModulePath)
	if ctx == nil {
		return nil, fmt.Errorf("load PKCS#11 module %s", cfg.ModulePath)
	}
	h := &HSM{cfg: cfg, ctx: ctx, log: log, keys: newKeyCache(), lookups: newLookups(), stopCh: make(chan struct{})}
	h.background, h.stopBackground = context.WithCancel(context.Background())
	h.ivs = newRandomBuffer(h)
	if err := ctx.Initialize(); err != nil {
		ctx.Destroy()
		return nil, fmt.Errorf("C_Initialize %s: %w", cfg.ModulePath, err)
	}
	h.fast = openFastSigner(cfg.ModulePath)
	st, err := h.connect(nil)
	if err != nil {
		h.closeFast()
		_ = ctx.Finalize()
		ctx.Destroy()
		return nil, err
	}
	h.state.Store(st)
	h.ready.Store(true)
	// A start waits for the whole index, so that no listing ever answers
	// from an empty one; a reconnect does not (reinitialize).
	if err := h.index(context.Background()); err != nil {
		h.Close()
		return nil, err
	}
	h.generating = make(chan struct{}, max(1, cap(st.pools[keyLane])/2))
	interval := cfg.HealthInterval
	if interval == 0 {
		interval = DefaultHealthInterval
	}
	if interval > 0 {
		h.wg.Add(1)
		go h.tick(interval, h.probeIfReady)
	}
	return h, nil
}

// Close logs out, closes every session and unloads the module.
func (h *HSM) Close() {
	close(h.stopCh)
	h.stopBackground()
	h.wg.Wait()
	h.scanning.Lock() // waits for a background rescan, and allows no other
	if st := h.state.Load(); st != nil {
		_ = h.ctx.CloseAllSessions(st.slot)
	}
	_ = h.ctx.Finalize()
	h.closeFast()
	h.ctx.Destroy()
}

// closeFast releases the signing fast path, if any.
func (h *HSM) closeFast() {
	if h.fast != nil {
		h.fast.close()
		h.fast = nil
	}
}

// PoolStats reports the size of the key operations' session pool and how
// many of its sessions are idle.
func (h *HSM) PoolStats() (size, idle int) {
	st := h.state.Load()
	if st == nil {
		return 0, 0
	}
	return cap(st.pools[keyLane]), len(st.pools[keyLane])
}

// CredentialPoolStats reports the size of the credential lane's own
// session pool and how many of its sessions are idle; both are 0 when the
// lane shares the key operations' pool (a token with too few sessions).
func (h *HSM) CredentialPoolStats() (size, idle int) {
	st := h.state.Load()
	if st == nil || st.pools[credentialLane] == st.pools[keyLane] {
		return 0, 0
	}
	return cap(st.pools[credentialLane]), len(st.pools[credentialLane])
}

// Reconnects counts the pool rebuilds since Open.
func (h *HSM) Reconnects() uint64 { return h.reconnects.Load() }

// Ready reports whether the token is reachable and logged in.
func (h *HSM) Ready() bool { return h.ready.Load() }

// Info returns the token and library description read at connection time.
func (h *HSM) Info() Info {
	st := h.state.Load()
	if st == nil {
		return Info{}
	}
	return st.info
}

// connect finds the token, opens and logs in the session pool, reads
// mechanisms and token information, and finds the internal keys: all of
// them on the first connection (prev nil), else the ones that checking
// credentials needs, carrying the signing keys over from prev, the state
// the token was lost under (reinitialize reloads them).
func (h *HSM) connect(prev *tokenState) (*tokenState, error) {
	slot, err := h.findSlot()
	if err != nil {
		return nil, err
	}
	ti, err := h.ctx.GetTokenInfo(slot)
	if err != nil {
		return nil, fmt.Errorf("C_GetTokenInfo: %w", err)
	}
	size := h.cfg.PoolSize
	if size <= 0 {
		size = defaultPoolSize(ti.MaxRwSessionCount)
	}
	st := &tokenState{slot: slot}
	if err := h.openSessions(st, size, credentialLaneSize(ti.MaxRwSessionCount, size)); err != nil {
		_ = h.ctx.CloseAllSessions(slot)
		return nil, err
	}
	if st.mechs, err = h.mechanisms(slot); err != nil {
		_ = h.ctx.CloseAllSessions(slot)
		return nil, err
	}
	li, err := h.ctx.GetInfo()
	if err != nil {
		_ = h.ctx.CloseAllSessions(slot)
		return nil, fmt.Errorf("C_GetInfo: %w", err)
	}
	internal := credentialKeys
	if prev == nil {
		internal = append(internal[:len(internal):len(internal)], signingKeys...)
	} else {
		// Reloaded in the background once st serves (reinitialize).
		st.attestation.Store(prev.attestation.Load())
		st.integrity.Store(prev.integrity.Load())
		st.audit.Store(prev.audit.Load())
	}
	if err := h.ensureInternalKeys(st, internal); err != nil {
		_ = h.ctx.CloseAllSessions(slot)
		return nil, err
	}
	if _, ok := st.mechs[pkcs11.CKM_AES_KEY_WRAP_PAD]; ok {
		s := &session{h: h, st: st, lane: keyLane, s: <-st.pools[keyLane]}
		st.exactPadWrap = s.probeExactPadWrap()
		s.release()
	}
	st.info = Info{
		Library:      fmt.Sprintf("%s %d.%d", li.LibraryDescription, li.LibraryVersion.Major, li.LibraryVersion.Minor),
		Manufacturer: ti.ManufacturerID,
		Model:        ti.Model,
		Firmware:     fmt.Sprintf("%d.%d", ti.FirmwareVersion.Major, ti.FirmwareVersion.Minor),
		Label:        ti.Label,
		Serial:       ti.SerialNumber,
		FreeMemory:   ti.FreePublicMemory,
		TotalMemory:  ti.TotalPublicMemory,
	}
	return st, nil
}

// credentialLaneSize is credentialSessions, or what a token limited to
// maxSessions leaves beside keySessions (0: the lanes share one pool).
func credentialLaneSize(maxSessions uint, keySessions int) int {
	// CK_EFFECTIVELY_INFINITE is 0 and CK_UNAVAILABLE_INFORMATION is ^0.
	if maxSessions == 0 || maxSessions == ^uint(0) {
		return credentialSessions
	}
	return max(min(credentialSessions, int(maxSessions)-keySessions), 0)
}

// openSessions fills the pools of st: keySessions for the key lane and
// credSessions for the credential lane, which shares the key lane's pool
// when credSessions is 0; the first session logs in (a login holds for
// every session of the application).
func (h *HSM) openSessions(st *tokenState, keySessions, credSessions int) error {
	sizes := [lanes]int{keyLane: keySessions, credentialLane: credSessions}
	defer func() {
		if sizes[credentialLane] == 0 {
			st.pools[credentialLane] = st.pools[keyLane]
		}
	}()
	for l, size := range sizes {
		st.pools[l] = make(chan pkcs11.SessionHandle, size)
		for range size {
			s, err := h.ctx.OpenSession(st.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
			if err != nil {
				return fmt.Errorf("C_OpenSession: %w", err)
			}
			st.pools[l] <- s
			if l != int(keyLane) || len(st.pools[l]) > 1 {
				continue
			}
			err = h.ctx.Login(s, pkcs11.CKU_USER, h.cfg.PIN)
			if err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
				if errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) {
					return fmt.Errorf("log in to token %q: wrong PIN", h.cfg.TokenLabel)
				}
				return fmt.Errorf("log in to token %q: %w", h.cfg.TokenLabel, err)
			}
		}
	}
	return nil
}

// findSlot returns the slot holding the configured token.
func (h *HSM) findSlot() (uint, error) {
	slots, err := h.ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("C_GetSlotList: %w", err)
	}
	for _, s := range slots {
		ti, err := h.ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if ti.Label == h.cfg.TokenLabel && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
			return s, nil
		}
	}
	return 0, fmt.Errorf("token %q: %w: no such token", h.cfg.TokenLabel, ErrUnavailable)
}

// mechanisms lists the token's mechanisms with their flags.
func (h *HSM) mechanisms(slot uint) (map[uint]pkcs11.MechanismInfo, error) {
	list, err := h.ctx.GetMechanismList(slot)
	if err != nil {
		return nil, fmt.Errorf("C_GetMechanismList: %w", err)
	}
	out := make(map[uint]pkcs11.MechanismInfo, len(list))
	for _, m := range list {
		mi, err := h.ctx.GetMechanismInfo(slot, []*pkcs11.Mechanism{m})
		if err != nil {
			return nil, fmt.Errorf("C_GetMechanismInfo(%#x): %w", m.Mechanism, err)
		}
		out[m.Mechanism] = mi
	}
	return out, nil
}

// Supports reports whether the token offers the mechanism.
func (h *HSM) Supports(mech uint) bool {
	st := h.state.Load()
	if st == nil {
		return false
	}
	_, ok := st.mechs[mech]
	return ok
}

// require fails with ErrUnsupported naming what when the token lacks mech.
func (h *HSM) require(mech uint, what string) error {
	if !h.Supports(mech) {
		return fmt.Errorf("%s is %w", what, ErrUnsupported)
	}
	return nil
}

// session is one borrowed PKCS#11 session together with the state and
// the lane it belongs to.
type session struct {
	h    *HSM
	st   *tokenState
	lane lane
	s    pkcs11.SessionHandle
}

// acquire borrows a session of lane l, waiting at most as long as ctx allows.
func (h *HSM) acquire(ctx context.Context, l lane) (*session, error) {
	if !h.ready.Load() {
		return nil, fmt.Errorf("%w: reconnecting", ErrUnavailable)
	}
	st := h.state.Load()
	pool := st.pools[l]
	var s pkcs11.SessionHandle
	select {
	case s = <-pool:
	default:
		select {
		case s = <-pool:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a PKCS#11 session: %w", ctx.Err())
		}
	}
	// A reconnect may have started while this caller waited: then the
	// session goes back untouched, so that the reconnect can drain the pool
	// before it finalizes the module.
	if !h.ready.Load() || h.state.Load() != st {
		pool <- s
		return nil, fmt.Errorf("%w: reconnecting", ErrUnavailable)
	}
	return &session{h: h, st: st, lane: l, s: s}, nil
}

// run borrows a session of lane l, runs fn on it and gives it back,
// without recovery. It returns the state the session belonged to.
func (h *HSM) run(ctx context.Context, l lane, fn func(*session) error) (*tokenState, error) {
	s, err := h.acquire(ctx, l)
	if err != nil {
		return nil, err
	}
	defer s.release()
	err = fn(s)
	if isKind(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) && !s.loggedIn() {
		// Private objects vanish from a session that lost its login.
		err = pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)
	}
	return s.st, err
}

// loggedIn reports whether the session still sees the user's objects.
func (s *session) loggedIn() bool {
	info, err := s.h.ctx.GetSessionInfo(s.s)
	return err == nil && (info.State == pkcs11.CKS_RW_USER_FUNCTIONS || info.State == pkcs11.CKS_RO_USER_FUNCTIONS)
}

// release returns the session to the pool it came from.
func (s *session) release() {
	s.st.pools[s.lane] <- s.s
}

// do runs fn on a pooled session of the key lane; see doOn.
func (h *HSM) do(ctx context.Context, idempotent bool, fn func(*session) error) error {
	return h.doOn(ctx, keyLane, idempotent, fn)
}

// doOn runs fn on a pooled session of lane l. When fn fails with an error
// that means the sessions or the login are gone, the pools are rebuilt and
// fn, if idempotent, runs once more on a fresh session.
func (h *HSM) doOn(ctx context.Context, l lane, idempotent bool, fn func(*session) error) error {
	for attempt := 0; ; attempt++ {
		st, err := h.run(ctx, l, fn)
		if err == nil {
			return nil
		}
		if !recoverable(err) {
			if symptomOfLoss(err) {
				if serr := h.suspect(ctx, err.Error()); serr != nil {
					return serr
				}
			}
			return err
		}
		h.log.Warn("PKCS#11 session lost, rebuilding the pool", "error", err.Error())
		if rerr := h.reconnect(st); rerr != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, rerr)
		}
		if !idempotent || attempt > 0 {
			return classify("PKCS#11", err)
		}
	}
}

// reconnect rebuilds the pool unless another goroutine already replaced the
// broken state. While the token cannot be reached, requests fail fast and a
// background loop keeps trying.
func (h *HSM) reconnect(broken *tokenState) error {
	h.rebuild.Lock()
	defer h.rebuild.Unlock()
	if h.state.Load() != broken {
		return nil // somebody else rebuilt already
	}
	if h.retrying {
		return errors.New("token unreachable, retrying in the background")
	}
	h.ready.Store(false)
	h.keys.clear()
	if err := h.reinitialize(); err != nil {
		h.log.Error("token unreachable", "token", h.cfg.TokenLabel, "error", err.Error())
		h.retrying = true
		h.wg.Add(1)
		go h.tick(retryInterval, h.retryOnce)
		return err
	}
	return nil
}

// reinitialize waits for the sessions still lent out, closes everything,
// reloads the module state and logs in again.
func (h *HSM) reinitialize() error {
	if st := h.state.Load(); st != nil {
		drain(st, drainTimeout)
		_ = h.ctx.CloseAllSessions(st.slot)
	}
	_ = h.ctx.Finalize()
	if err := h.ctx.Initialize(); err != nil {
		return fmt.Errorf("C_Initialize: %w", err)
	}
	st, err := h.connect(h.state.Load())
	if err != nil {
		return err
	}
	h.state.Store(st)
	h.ready.Store(true)
	h.reconnects.Add(1)
	h.log.Info("token reconnected", "token", h.cfg.TokenLabel)
	// Requests are served again before the signing keys and the label
	// index are read anew: each search of the token takes about a second
	// with 10,000 keys on SoftHSM2, and the walk that reads the index
	// several seconds (docs/architecture.md §4). The index of before the
	// loss still answers, since a lookup it cannot answer, or whose label
	// the token no longer has, searches the token for that label (Key),
	// and a creation always does (mutate).
	h.lookups.reset()
	h.keys.expire()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		// One after the other, each on one session: the others serve.
		h.refreshSigningKeys(st)
		h.rescanSoon()
	}()
	return nil
}

// drainTimeout bounds how long a reconnect waits for calls still running
// on the old sessions before it finalizes the module under them.
const drainTimeout = 5 * time.Second

// drain waits until every session of st is back in its pool, or timeout.
func drain(st *tokenState, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for l, pool := range st.pools {
		if l > 0 && pool == st.pools[l-1] {
			continue // a lane sharing the previous lane's pool
		}
		for len(pool) < cap(pool) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// retryInterval is how often an unreachable token is tried again: a try
// without the token costs a C_Finalize and a C_Initialize, and the interval
// is part of the time to resume after the token's return (target 5 s,
// docs/benchmarks.md).
var retryInterval = time.Second

// retryOnce tries to reconnect once; it reports whether that succeeded.
func (h *HSM) retryOnce() bool {
	h.rebuild.Lock()
	defer h.rebuild.Unlock()
	if err := h.reinitialize(); err != nil {
		return false
	}
	h.retrying = false
	return true
}

// tick calls fn every interval until fn reports that it is done or Close
// is called; the caller has done h.wg.Add(1).
func (h *HSM) tick(interval time.Duration, fn func() (done bool)) {
	defer h.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-h.stopCh:
			return
		case <-t.C:
		}
		if fn() {
			return
		}
	}
}
