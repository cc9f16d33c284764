package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"
)

// TestDrain: before the drain answers keep their connection; once it has
// begun, the next answer on the same connection says "Connection: close"
// and the connection closes, and the drain closes the listener and ends
// as soon as none is open, long before its delay.
func TestDrain(t *testing.T) {
	var d drain
	srv := httptest.NewUnstartedServer(d.handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})))
	srv.Config.ConnState = d.trackConn
	srv.Listener = &closeOnce{Listener: srv.Listener}
	srv.Start()
	defer srv.Close()
	client := srv.Client()
	get := func() (resp *http.Response, reused bool) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		resp, err := client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, reused
	}
	if resp, _ := get(); resp.Close || d.shuttingDown() {
		t.Fatalf("before the drain: Connection: close=%v, shutting down=%v", resp.Close, d.shuttingDown())
	}
	const delay = 10 * time.Second
	done := make(chan int64)
	start := time.Now()
	go func() { done <- int64(d.run(delay, srv.Listener)) }()
	for !d.shuttingDown() {
		time.Sleep(time.Millisecond)
	}
	resp, reused := get()
	if !resp.Close || !reused {
		t.Errorf("during the drain, on the kept connection (reused %v): Connection: close=%v, want true", reused, resp.Close)
	}
	select {
	case open := <-done:
		if open != 0 {
			t.Errorf("the drain ended with %d connections open", open)
		}
		if took := time.Since(start); took > delay/2 {
			t.Errorf("the drain took %v with no connection left", took)
		}
	case <-time.After(delay):
		t.Fatal("the drain did not end when the last connection closed")
	}
	if _, err := client.Get(srv.URL); err == nil {
		t.Error("a new connection was accepted after the drain")
	}
}
