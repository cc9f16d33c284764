package api

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestLiftableBody: the body is held to the low limit until lifted, to
// the full one after, and a body of exactly the limit is whole.
func TestLiftableBody(t *testing.T) {
	for _, c := range []struct {
		name      string
		size      int
		lift      bool
		wantLimit int64 // 0: read whole
	}{
		{"under the limit", 9, false, 0},
		{"exactly the limit", 10, false, 0},
		{"past the limit", 11, false, 10},
		{"past the limit, lifted", 11, true, 0},
		{"exactly the full limit, lifted", 100, true, 0},
		{"past the full limit", 101, true, 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &liftableBody{r: io.NopCloser(strings.NewReader(strings.Repeat("x", c.size))), limit: 10, full: 100}
			if c.lift {
				b.lift()
			}
			got, err := io.ReadAll(b)
			var tooBig *http.MaxBytesError
			switch {
			case c.wantLimit == 0 && (err != nil || len(got) != c.size):
				t.Errorf("read %d of %d bytes: %v", len(got), c.size, err)
			case c.wantLimit != 0 && (!errors.As(err, &tooBig) || tooBig.Limit != c.wantLimit || int64(len(got)) != c.wantLimit):
				t.Errorf("read %d bytes, error %v; want %d bytes and a MaxBytesError of %d", len(got), err, c.wantLimit, c.wantLimit)
			}
		})
	}
}
