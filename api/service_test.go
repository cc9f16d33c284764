package api

import (
	"testing"

	"github.com/hsmgate/hsmgate/hsm"
)

func TestStatisticsSummary(t *testing.T) {
	for _, c := range []struct {
		st   hsm.Statistics
		want string
	}{
		{hsm.Statistics{}, "0 keys"},
		{hsm.Statistics{Keys: 3, ByAlgorithm: map[string]int{"RSA": 1, "EC": 2}}, "3 keys (EC 2, RSA 1)"},
	} {
		if got := summary(&c.st); got != c.want {
			t.Errorf("summary(%+v) = %q, want %q", c.st, got, c.want)
		}
	}
}
