package integration

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDeleteCreateSignRace deletes and re-creates one label while three
// callers sign with it: every answer is 200, 201, 404 or 409, never a 5xx.
func TestDeleteCreateSignRace(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	km, op := g.creds.KeyManagement, g.creds.KeyOperation
	label := g.label("raced")
	create := map[string]any{"label": label, "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs}
	g.createKey(t, create)
	body := signBody(label, "SHA256_WITH_ECDSA", []byte("m"), "", nil)
	var outcomes, bodies sync.Map
	count := func(what string) {
		v, _ := outcomes.LoadOrStore(what, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(step func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					step()
				}
			}
		}()
	}
	send := func(what, method, path, token string, body any) {
		r, err := g.send(method, path, token, body)
		if err != nil {
			count(what + " transport error: " + err.Error())
			return
		}
		what = fmt.Sprintf("%s %d", what, r.Status)
		if r.Status >= 400 && r.Status != 404 && r.Status != 409 {
			bodies.LoadOrStore(what, string(r.Raw)) // the first answer of each unexpected kind
		}
		count(what)
	}
	for range 3 {
		loop(func() { send("sign", http.MethodPost, "/v1/synchronousSign", op, body) })
	}
	loop(func() {
		send("delete", http.MethodDelete, "/v1/key/"+label, km, nil)
		send("create", http.MethodPost, "/v1/key", km, create)
	})
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()
	allowed := map[int]bool{200: true, 201: true, 404: true, 409: true}
	outcomes.Range(func(k, v any) bool {
		var what string
		var status int
		if _, err := fmt.Sscanf(k.(string), "%s %d", &what, &status); err != nil || !allowed[status] {
			body, _ := bodies.Load(k)
			t.Errorf("%d × %s, first: %v", v.(*atomic.Int64).Load(), k, body)
		} else {
			t.Logf("%d × %s", v.(*atomic.Int64).Load(), k)
		}
		return true
	})
}
