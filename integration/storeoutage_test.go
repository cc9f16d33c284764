package integration

// A PostgreSQL outage under load (issue 11, point 3): the gateway
// answers 503 / 700 while its state store is gone, /readyz names the
// store, and service resumes by itself when the database returns.

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store/storetest"
)

// outageAnswer is one answer (or transport error) of the load.
type outageAnswer struct {
	at     time.Time
	what   string
	status int
	code   float64
	reason string
	body   string
	err    error
}

func TestStoreOutageAnswers503AndRecovers(t *testing.T) {
	t.Parallel()
	if !opensslAvailable() {
		t.Skip("openssl is needed by the Argus helpers")
	}
	cluster := storetest.NewCluster(t)
	g := postgresGatewayOn(t, cluster.Database(t))
	g.secret(argusPassword)
	label := g.ecKey(t, oidP256, signAttrs)
	signReq := signBody(label, "SHA256_WITH_ECDSA", []byte("outage"), "", nil)
	argusAddUser(t, g, "pg-outage", "keyOperationToken", false)
	session := argusLogin(t, g, "pg-outage", "")
	r := g.request(t, http.MethodPost, "/authentication/v1/user/pg-outage/apikey", session.bearer(),
		map[string]any{"validSources": []string{"127.0.0.1"}, "expirationDays": 1, "roles": []string{"keyOperationToken"}})
	apiKey := g.secret(str(argusData(r), "apiKey"))
	if r.Status != http.StatusOK || apiKey == "" {
		t.Fatalf("create API key: %d %s", r.Status, r.Raw)
	}

	// A small bounded load: signing with the API key, and listing the
	// user's API keys with the session (a credential handler).
	type call struct {
		what, method, path string
		headers            map[string]string
		body               any
	}
	calls := []call{
		{"sign with the API key", http.MethodPost, "/v1/synchronousSign", map[string]string{"Argus-API-Key": apiKey}, signReq},
		{"list API keys with the session", http.MethodGet, "/authentication/v1/user/pg-outage/apikey", session.bearer(), nil},
	}
	var (
		mu      sync.Mutex
		answers []outageAnswer
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := calls[i%len(calls)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := g.roundTrip(g.client, c.method, c.path, c.headers, c.body)
				a := outageAnswer{at: time.Now(), what: c.what, err: err}
				if err == nil {
					a.status, a.body = r.Status, string(r.Raw)
					a.code, _ = r.JSON["errorCode"].(float64)
					a.reason = str(r.JSON, "reason")
				}
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	readyz := func() *response {
		r, err := g.roundTrip(g.client, http.MethodGet, "/readyz", nil, nil)
		if err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		return r
	}
	// waitReadyz polls /readyz until it answers status, within limit.
	waitReadyz := func(status int, limit time.Duration) *response {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			r := readyz()
			if r.Status == status || time.Now().After(deadline) {
				return r
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)

	stopping := time.Now()
	cluster.Stop(t)
	if r := waitReadyz(http.StatusServiceUnavailable, 5*time.Second); r.Status != http.StatusServiceUnavailable ||
		str(r.JSON, "reason") != "state store unreachable" {
		t.Errorf("/readyz with the store stopped: %d %s, want 503 naming the state store", r.Status, r.Raw)
	}
	time.Sleep(time.Second)

	cluster.Start(t)
	started := time.Now()
	if r := waitReadyz(http.StatusOK, 10*time.Second); r.Status != http.StatusOK {
		t.Errorf("/readyz 10 s after the store's return: %d %s", r.Status, r.Raw)
	}
	// Every call of the load succeeds again within the bound.
	recovered := map[string]time.Duration{}
	for deadline := started.Add(10 * time.Second); len(recovered) < len(calls) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		for _, a := range answers {
			if _, ok := recovered[a.what]; !ok && a.at.After(started) && a.status == http.StatusOK {
				recovered[a.what] = a.at.Sub(started)
			}
		}
		mu.Unlock()
	}
	t.Logf("served again after the store accepted connections: %v", recovered)

	mu.Lock()
	defer mu.Unlock()
	during := map[string]int{}
	for _, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("%s: %v", a.what, a.err)
		case a.status == http.StatusOK:
		case a.status == http.StatusServiceUnavailable && a.code == 700 && a.reason == "res.error.in.subystem" &&
			strings.Contains(a.body, "state store"):
			if a.at.Before(stopping) {
				t.Errorf("%s: 503 before the store stopped: %s", a.what, a.body)
			}
			during[a.what]++
		default:
			t.Errorf("%s: %d %s, want 200, or 503 / 700 naming the state store", a.what, a.status, a.body)
		}
	}
	for _, c := range calls {
		if during[c.what] == 0 {
			t.Errorf("%s: no 503 / 700 while the store was stopped: the outage was not exercised", c.what)
		}
		if _, ok := recovered[c.what]; !ok {
			t.Errorf("%s: no 200 within 10 s of the store's return", c.what)
		}
	}
	out := g.proc.stderr.String()
	for _, want := range []string{"state store unavailable", "state store not ready", "state store ready again"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q", want)
		}
	}
}
