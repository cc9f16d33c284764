package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hsmgate/hsmgate/softhsm"
)

// The scale phase (reliability issue, findings 1 and 4): a `hsmgate dev`
// of its own whose token is filled with scaleKeys keys made directly
// through PKCS#11, as another tool makes them (through the API the
// key-count phase needs up to half an hour for as many), then restarted:
// the first and the cached GET /v1/key, then the token-loss measurement on
// that token. The keys are made by a child process of this command
// (fillCommand): SoftHSM2 is already initialised in this one, on the raw
// token's configuration.
const (
	scaleKeys = 10_000
	// fillCommand is the hidden first argument that makes this command
	// fill a dev token: fillCommand DIR N.
	fillCommand = "fill-dev-token"
)

// ScaleResult is the scale part of the report.
type ScaleResult struct {
	Keys int `json:"keys"`
	// CreateSeconds is how long making the keys through PKCS#11 took.
	CreateSeconds float64 `json:"createSeconds"`
	// StartSeconds is from starting the gateway to its serving.
	StartSeconds float64          `json:"startSeconds"`
	Listing      ListingRow       `json:"listing"`
	TokenLoss    *TokenLossResult `json:"tokenLoss,omitempty"`
	Error        string           `json:"error,omitempty"`
}

// runScaleBench runs the phase in tmp/scale.
func runScaleBench(ctx context.Context, o *options, tmp string) *ScaleResult {
	r := &ScaleResult{Keys: scaleKeys}
	bin, err := hsmgateBinary(ctx, o, tmp)
	if err == nil {
		err = r.measure(ctx, bin, filepath.Join(tmp, "scale"))
	}
	if err != nil {
		r.Error = err.Error()
		logf("scale bench failed: %v", err)
	}
	return r
}

// measure provisions the dev state in dir, fills its token, restarts the
// gateway on it and measures.
func (r *ScaleResult) measure(ctx context.Context, bin, dir string) error {
	logf("scale: hsmgate dev --dir %s, then %d keys through PKCS#11", dir, scaleKeys)
	srv, err := startDevServer(ctx, bin, dir)
	if err != nil {
		return err
	}
	if err := srv.stop(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := time.Now()
	fill := exec.CommandContext(ctx, self, fillCommand, dir, strconv.Itoa(scaleKeys))
	fill.Env = childEnv()
	if out, err := fill.CombinedOutput(); err != nil {
		return fmt.Errorf("fill the token: %w: %s", err, out)
	}
	r.CreateSeconds = time.Since(start).Seconds()
	start = time.Now()
	srv, err = startDevServer(ctx, bin, dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	r.StartSeconds = time.Since(start).Seconds()
	c, err := newRESTClient(srv, 1)
	if err != nil {
		return err
	}
	defer c.close()
	if r.Listing, err = timeListing(ctx, restKeySide(c).list, scaleKeys); err != nil {
		return err
	}
	logf("scale: %d keys made in %.1f s; gateway serving %.1f s after its start; GET /v1/key first %.2f ms, then %.2f ms",
		scaleKeys, r.CreateSeconds, r.StartSeconds, r.Listing.FirstMs, r.Listing.CachedMs)
	r.TokenLoss = runTokenLossBench(ctx, c, dir)
	return nil
}

// fillDevToken is the child process of the phase: it adds n keys of
// another tool to the token of the dev state in dir.
func fillDevToken(dir string, n int) error {
	tok, err := softhsm.DevToken(dir)
	if err != nil {
		return err
	}
	labels := make([]string, n)
	for i := range labels {
		labels[i] = fmt.Sprintf("bulk-%05d", i)
	}
	return softhsm.AddForeignKeys(tok, labels)
}

// printScale prints the phase.
func printScale(w io.Writer, r *ScaleResult) {
	fmt.Fprintf(w, "\nScale: %d keys of another tool made through PKCS#11 in %.1f s; the gateway restarted on them served after %.1f s\n",
		r.Keys, r.CreateSeconds, r.StartSeconds)
	if r.Error != "" {
		fmt.Fprintf(w, "  failed: %s\n", r.Error)
	}
	fmt.Fprintf(w, "  GET /v1/key with %d keys: first %.2f ms, then %.2f ms (median of %d)\n", r.Keys, r.Listing.FirstMs, r.Listing.CachedMs, listingRepeats)
	if r.TokenLoss != nil {
		fmt.Fprintf(w, "  then, on this token of %d keys:", r.Keys)
		printTokenLoss(w, r.TokenLoss)
	}
}
