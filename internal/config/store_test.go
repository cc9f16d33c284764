package config

import (
	"reflect"
	"testing"

	"github.com/hsmgate/hsmgate/store"
)

func TestStoreConfigResolve(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	for _, tc := range []struct {
		name string
		cfg  StoreConfig
		env  map[string]string
		want store.Config
	}{
		{"defaults", StoreConfig{}, nil, store.Config{Driver: "sqlite", Path: "hsmgate.db"}},
		{"file", StoreConfig{Path: "/var/lib/hsmgate/state.db"}, nil,
			store.Config{Driver: "sqlite", Path: "/var/lib/hsmgate/state.db"}},
		{"postgres from the file", StoreConfig{Driver: "postgres", DSN: "postgres://h/db"}, nil,
			store.Config{Driver: "postgres", DSN: "postgres://h/db"}},
		{"environment wins", StoreConfig{Driver: "sqlite", Path: "a.db", DSN: "postgres://file/db"},
			map[string]string{"HSMGATE_STORE_DRIVER": "postgres", "HSMGATE_STORE_DSN": "postgres://u:pw@env/db",
				"HSMGATE_STORE_PATH": "b.db"},
			store.Config{Driver: "postgres", Path: "b.db", DSN: "postgres://u:pw@env/db"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Resolve(env(tc.env)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Resolve = %+v, want %+v", got, tc.want)
			}
		})
	}
}
