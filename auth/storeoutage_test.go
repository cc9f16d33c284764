package auth

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// outageStore fails the reads and writes of the schemes with
// store.ErrUnavailable while down is set, as the store does when its
// database has gone.
type outageStore struct {
	store.Store
	down atomic.Bool
}

// fail returns the store's error while it is down.
func (s *outageStore) fail() error {
	if s.down.Load() {
		return fmt.Errorf("%w: dial tcp 127.0.0.1:5432: connect: connection refused", store.ErrUnavailable)
	}
	return nil
}

func (s *outageStore) Credential(ctx context.Context, kind store.Kind, id string) (*store.Credential, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.Credential(ctx, kind, id)
}

func (s *outageStore) Credentials(ctx context.Context, kind store.Kind, userID string) ([]store.Credential, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.Credentials(ctx, kind, userID)
}

func (s *outageStore) User(ctx context.Context, id string) (*store.User, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.User(ctx, id)
}

// TestStoreOutageIsNotAnInvalidCredential: while the store is down, a
// valid API key and its management are answered ErrStoreUnavailable —
// never an invalid or unknown credential — and the failures do not
// count against the caller: after more of them than the throttle
// allows, the same key passes as soon as the store is back.
func TestStoreOutageIsNotAnInvalidCredential(t *testing.T) {
	e := newArgusEnv(t, ArgusOptions{})
	_, header := e.createKey(t, APIKeySpec{Roles: []string{"keyOperation"}, ValidSources: []string{"127.0.0.1"}})
	st := &outageStore{Store: e.st}
	e.argus.st = st
	authn := New(Options{Schemes: []Scheme{e.argus}, Throttle: NewThrottle(ThrottleOptions{CredentialFailures: 2, SourceFailures: 2})})
	request := argusRequest("GET", "/v1/key", "127.0.0.1", HeaderArgusAPIKey, header)

	st.down.Store(true)
	for i := range 5 {
		_, err := authn.Authenticate(request)
		ae, ok := AsError(err)
		if !ok || ae.Kind != ErrStoreUnavailable || !errors.Is(ae, ErrStoreUnavailable) {
			t.Fatalf("attempt %d with the store down: %v, want ErrStoreUnavailable", i+1, err)
		}
		if IsAuthError(err) {
			t.Errorf("attempt %d: IsAuthError holds for a store outage: it would count against the caller", i+1)
		}
		if ae.RetryAfter <= 0 || ae.Message != "the state store (credential database) is unavailable; retry later" {
			t.Errorf("attempt %d: %+v, want the store's message and a Retry-After", i+1, ae)
		}
	}
	if _, err := e.argus.APIKeys(e.ctx, e.alice.ID); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("list API keys with the store down: %v, want the store's ErrUnavailable", err)
	} else if ae, ok := AsError(err); !ok || ae.Kind != ErrStoreUnavailable {
		t.Errorf("list API keys with the store down: AsError = %v, %v", ae, ok)
	}
	if _, err := e.argus.RenewAPIKey(e.ctx, e.alice.ID, "nope"); errors.Is(err, ErrUnknownCredential) {
		t.Errorf("renew with the store down: %v, want no verdict on the credential", err)
	}

	st.down.Store(false)
	if _, err := authn.Authenticate(request); err != nil {
		t.Fatalf("the same key once the store is back: %v", err)
	}
	// The copy handed out is the caller's own.
	a, _ := AsError(store.ErrUnavailable)
	a.RetryAfter = time.Hour
	if b, _ := AsError(store.ErrUnavailable); b.RetryAfter == time.Hour {
		t.Error("AsError hands out one shared Error")
	}
}
