package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkAccessLog serves GET /healthz, the cheapest route, so that the
// access log's share is as large as it can be, with the log off and on
// (text lines to a file, as `hsmgate dev` writes them).
func BenchmarkAccessLog(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			text := func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }
			opts := Options{Auth: fixedAuth{}, Log: slog.New(text(f))}
			if on {
				opts.AccessLog = NewAccessLog(f, text)
			}
			e := New(opts)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w := httptest.NewRecorder()
					e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
				}
			})
			if on {
				if err := opts.AccessLog.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
