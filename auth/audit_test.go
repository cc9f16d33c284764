package auth

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/audit"
)

// memRecorder keeps the events it is given.
type memRecorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (m *memRecorder) Ready() error { return nil }

func (m *memRecorder) Record(_ context.Context, ev audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, ev)
	return nil
}

// TestFailuresAreRecorded: every refused request is one event with the
// scheme, the claimed credential id and the source, never the secret;
// throttling is an event of its own; a success records nothing.
func TestFailuresAreRecorded(t *testing.T) {
	rec := &memRecorder{}
	th := NewThrottle(ThrottleOptions{SourceFailures: 100, Window: time.Minute, CredentialFailures: 2, Backoff: time.Minute, MaxBackoff: time.Minute})
	a := New(Options{Schemes: []Scheme{headerScheme{"A"}}, Throttle: th, Audit: rec})
	if _, err := a.Authenticate(request("A", "good")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _ = a.Authenticate(request("A", "wrong-secret", "A-Id", "key-17"))
	}
	_, _ = a.Authenticate(request())
	want := []struct{ action, kind, scheme, id string }{
		{audit.ActionAuthFailure, "invalid", "A", "key-17"},
		{audit.ActionAuthFailure, "invalid", "A", "key-17"},
		{audit.ActionAuthThrottled, "throttled", "A", "key-17"},
		{audit.ActionAuthFailure, "missing", "", ""},
	}
	if len(rec.events) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(rec.events), len(want), rec.events)
	}
	for i, w := range want {
		ev := rec.events[i]
		id := ""
		if ev.Credential != nil {
			id = ev.Credential.ID
		}
		if ev.Action != w.action || ev.Error != w.kind || ev.Principal.Scheme != w.scheme || id != w.id ||
			ev.Principal.Source != "192.0.2.7" || ev.Outcome != audit.Failure {
			t.Errorf("event %d: %+v %+v, want %+v", i, ev, ev.Principal, w)
		}
		if strings.Contains(ev.Detail+ev.Error, "wrong-secret") {
			t.Errorf("event %d holds the secret", i)
		}
	}
}
