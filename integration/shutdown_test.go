package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSIGTERMClosesKeepAliveConnections (issue 11, point 6): signing on
// keep-alive connections while SIGTERM arrives. From the signal on, the
// answers say "Connection: close" and /readyz answers 503 "shutting
// down" while the listener stays open (server.drainDelay, 1 s as `hsmgate
// dev` writes it); no request sent on a connection the server had
// accepted fails, none is answered 5xx, and a request in flight finishes.
// Requests refused at connection time, once the listener has closed, are
// what a stopped server does.
func TestSIGTERMClosesKeepAliveConnections(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	label := g.ecKey(t, oidP256, signAttrs)
	body, _ := json.Marshal(signBody(label, "SHA256_WITH_ECDSA", []byte("drain"), "", nil))
	base := g.client.Transport.(*http.Transport)

	var (
		signalled    atomic.Int64 // Unix ns of SIGTERM, 0 before
		served       atomic.Int32 // answers after the signal
		closes       atomic.Int32 // answers with Connection: close
		earlyCloses  atomic.Int32 // the same before the signal
		shuttingDown atomic.Int32 // /readyz 503 "shutting down"
		wg           sync.WaitGroup
	)
	// send signs once on client; it reports false once the server no
	// longer accepts connections.
	send := func(client *http.Client) bool {
		var gotConn bool
		var conn httptrace.GotConnInfo
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { gotConn, conn = true, i }}
		req, _ := http.NewRequest(http.MethodPost, g.base+"/v1/synchronousSign", bytes.NewReader(body))
		req.Header.Set("X-API-KEY", g.creds.KeyOperation)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if err != nil {
			if gotConn {
				t.Errorf("a request on an accepted connection (reused %v) failed %v after SIGTERM: %v",
					conn.Reused, time.Duration(time.Now().UnixNano()-signalled.Load()), err)
			}
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		after := signalled.Load() != 0
		switch {
		case resp.StatusCode != http.StatusOK:
			t.Errorf("sign answered %d", resp.StatusCode)
		case resp.Close && !after:
			earlyCloses.Add(1)
		case resp.Close:
			closes.Add(1)
		}
		if after {
			served.Add(1)
		}
		return true
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := base.Clone()
			tr.MaxIdleConnsPerHost = 1
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			defer tr.CloseIdleConnections()
			for send(client) {
			}
		}()
	}
	// A slow request in flight when the signal arrives.
	slow := make(chan *response, 1)
	go func() {
		r, err := g.send(http.MethodPost, "/v1/key", g.creds.KeyManagement,
			map[string]any{"label": g.label("drain-rsa"), "algorithm": "RSA", "keySize": 4096, "attributes": map[string]any{"sign": true}})
		if err != nil {
			t.Errorf("the request in flight at SIGTERM failed: %v", err)
		}
		slow <- r
	}()
	// /readyz, polled on connections of its own.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tr := base.Clone()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		defer tr.CloseIdleConnections()
		for {
			resp, err := client.Get(g.base + "/readyz")
			if err != nil {
				return
			}
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && m["reason"] == "shutting down" {
				shuttingDown.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	time.Sleep(300 * time.Millisecond)
	g.mu.Lock()
	g.stopped = true // this test stops the process itself
	g.mu.Unlock()
	signalled.Store(time.Now().UnixNano())
	g.proc.terminate(t, 30*time.Second)
	wg.Wait()
	if r := <-slow; r != nil && r.Status != http.StatusCreated {
		t.Errorf("the request in flight at SIGTERM: %d %s, want 201", r.Status, r.Raw)
	}
	t.Logf("after SIGTERM: %d answers, %d with Connection: close; /readyz said \"shutting down\" %d times",
		served.Load(), closes.Load(), shuttingDown.Load())
	if n := earlyCloses.Load(); n > 0 {
		t.Errorf("%d answers said Connection: close before the signal", n)
	}
	if closes.Load() == 0 {
		t.Error("no answer after SIGTERM said Connection: close")
	}
	if shuttingDown.Load() == 0 {
		t.Error(`/readyz never answered 503 "shutting down" during the drain`)
	}
	g.assertNoSecretsLogged(t)
}
