package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/listener/listenertest"
	dto "github.com/prometheus/client_model/go"
)

// jsonLines makes the handler of JSON log lines at level.
func jsonLines(level slog.Level) func(io.Writer) slog.Handler {
	return func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}) }
}

func TestAccessLogWritesEveryLineByClose(t *testing.T) {
	out := &listenertest.Buffer{}
	al := NewAccessLog(out, jsonLines(slog.LevelInfo))
	e := New(Options{Auth: fixedAuth{err: auth.ErrMissing}, AccessLog: al})
	const n = 500
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := "/healthz"
			if i%2 == 1 {
				path = "/v1/key?apiKey=secret-in-query"
			}
			e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
		}()
	}
	wg.Wait()
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines for %d requests", len(lines), n)
	}
	statuses := map[float64]int{}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not one JSON object per line: %q: %v", l, err)
		}
		for _, k := range []string{"time", "requestId", "method", "path", "status", "duration", "remote"} {
			if _, ok := m[k]; !ok || m["msg"] != "request" {
				t.Errorf("line without %s: %s", k, l)
			}
		}
		statuses[m["status"].(float64)]++
	}
	if statuses[200] != n/2 || statuses[401] != n/2 {
		t.Errorf("statuses %v, want %d of 200 and of 401", statuses, n/2)
	}
	if strings.Contains(out.String(), "secret-in-query") {
		t.Error("the access log wrote a query string")
	}
}

// stallingWriter blocks every Write until released.
type stallingWriter struct {
	listenertest.Buffer
	writing chan struct{} // receives when a Write starts
	release chan struct{}
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	select {
	case w.writing <- struct{}{}:
	default:
	}
	<-w.release
	return w.Buffer.Write(p)
}

// waits reads the access log's wait counter.
func waits(t *testing.T, al *AccessLog) float64 {
	t.Helper()
	var m dto.Metric
	if err := al.waits.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestAccessLogWaitsRatherThanDrops(t *testing.T) {
	out := &stallingWriter{writing: make(chan struct{}, 1), release: make(chan struct{})}
	al := newAccessLog(out, jsonLines(slog.LevelInfo), 2)
	entry := func(i int) accessEntry {
		return accessEntry{at: time.Now(), level: slog.LevelInfo, method: "GET", path: "/healthz", status: 200 + i}
	}
	al.log(entry(0))
	select { // the writer flushes the first line and stalls in the destination
	case <-out.writing:
	case <-time.After(10 * time.Second):
		t.Fatal("the access log did not flush within 10 s")
	}
	const n = 20
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); al.log(entry(i)) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for waits(t, al) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no request waited for room although the queue is full")
		}
		time.Sleep(time.Millisecond)
	}
	close(out.release)
	wg.Wait()
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), `"msg":"request"`); got != n+1 {
		t.Fatalf("%d lines for %d requests:\n%s", got, n+1, out.String())
	}
}

func TestAccessLogAfterClose(t *testing.T) {
	out := &listenertest.Buffer{}
	al := NewAccessLog(out, jsonLines(slog.LevelInfo))
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	al.log(accessEntry{at: time.Now(), level: slog.LevelInfo, path: "/late", status: 200})
	if !strings.Contains(out.String(), `"path":"/late"`) {
		t.Fatalf("a line logged after Close was not written: %q", out.String())
	}
	if err := al.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestAccessLogLevels(t *testing.T) {
	serve := func(log *slog.Logger, al *AccessLog, status int) {
		gin.SetMode(gin.ReleaseMode)
		r := gin.New()
		r.Use(accessLog(log, al))
		r.GET("/x", func(c *gin.Context) { c.Status(status) })
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	}
	for _, c := range []struct {
		name      string
		on        bool
		level     slog.Level
		status    int
		wantLines int
	}{
		{"on", true, slog.LevelInfo, 200, 1},
		{"on, threshold warn", true, slog.LevelWarn, 200, 0},
		{"on, threshold warn, failure", true, slog.LevelWarn, 503, 1},
		{"off", false, slog.LevelInfo, 200, 0},
		{"off, failure", false, slog.LevelInfo, 500, 1},
	} {
		out := &listenertest.Buffer{}
		var al *AccessLog
		if c.on {
			al = NewAccessLog(out, jsonLines(c.level))
		}
		serve(slog.New(jsonLines(c.level)(out)), al, c.status)
		if al != nil {
			if err := al.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if got := strings.Count(out.String(), `"msg":"request"`); got != c.wantLines {
			t.Errorf("%s: %d lines, want %d: %s", c.name, got, c.wantLines, out.String())
		}
	}
}

// writeRecorder records each Write.
type writeRecorder struct{ writes []string }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestBatchWriterWritesWholeLines(t *testing.T) {
	rec := &writeRecorder{}
	b := &batchWriter{w: rec, buf: make([]byte, 0, 64)}
	var want strings.Builder
	for i := 0; i < 40; i++ {
		line := strings.Repeat("x", i*3) + "\n" // some longer than the batch
		want.WriteString(line)
		_, _ = b.Write([]byte(line))
	}
	b.flush()
	if got := strings.Join(rec.writes, ""); got != want.String() {
		t.Fatal("the batches do not add up to the lines")
	}
	for _, w := range rec.writes {
		if !strings.HasSuffix(w, "\n") {
			t.Fatalf("a batch ends inside a line: %q", w)
		}
	}
	if len(rec.writes) >= 40 {
		t.Errorf("%d writes for 40 lines: no batching", len(rec.writes))
	}
}
