package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hsmgate/hsmgate/auth"
)

// HMACKeysConfig switches on a scheme of per-key HMAC secrets: the
// Barong-style API keys (auth.barong, AUTH.md §5) or the Armor-style
// pre-shared keys (auth.armor, §6).
type HMACKeysConfig struct {
	Enabled bool `yaml:"enabled"`
	// Window is how far a request's nonce (Barong, default 5s) or
	// timestamp (Armor, default 300s) may lie from the server's time.
	Window time.Duration `yaml:"window"`
}

func init() {
	schemeBuilders = append(schemeBuilders, buildBarong, buildArmor)
}

// hmacKeyOptions assembles what both schemes need from the dependencies.
func hmacKeyOptions(d *schemeDeps, c HMACKeysConfig, section string) (auth.HMACKeyOptions, error) {
	if c.Window < 0 {
		return auth.HMACKeyOptions{}, fmt.Errorf("config: %s.window must not be negative", section)
	}
	if d.store == nil || d.replay == nil {
		return auth.HMACKeyOptions{}, fmt.Errorf("config: %s needs the store and the replay store", section)
	}
	return auth.HMACKeyOptions{Store: d.store, Token: d.hsm, Users: auth.NewUsers(d.store, d.hsm), Replay: d.replay, Window: c.Window}, nil
}

// buildBarong builds the X-Auth-Apikey scheme when auth.barong.enabled.
func buildBarong(d *schemeDeps) (auth.Scheme, error) {
	if !d.cfg.Auth.Barong.Enabled {
		return nil, nil
	}
	o, err := hmacKeyOptions(d, d.cfg.Auth.Barong, "auth.barong")
	if err != nil {
		return nil, err
	}
	return auth.NewBarong(context.Background(), o)
}

// buildArmor builds the ARMOR-PSK scheme when auth.armor.enabled.
func buildArmor(d *schemeDeps) (auth.Scheme, error) {
	if !d.cfg.Auth.Armor.Enabled {
		return nil, nil
	}
	o, err := hmacKeyOptions(d, d.cfg.Auth.Armor, "auth.armor")
	if err != nil {
		return nil, err
	}
	return auth.NewArmor(context.Background(), o)
}

// findScheme returns the scheme of type T among the built schemes, or the
// zero T when it is off: serve hands the Barong and Armor schemes to the
// router's key-management endpoints with it (api.Options.Barong, .Armor).
func findScheme[T auth.Scheme](schemes []auth.Scheme) T {
	for _, s := range schemes {
		if t, ok := s.(T); ok {
			return t
		}
	}
	var zero T
	return zero
}
