package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// The token-loss phase (reliability issue, finding 1): the server's
// SoftHSM2 token directory disappears under a signing client and comes
// back; what counts is the time from its return to the first successful
// signature, with no restart. The server probes the token every
// hsm.healthInterval (3 s by default) and on the first symptom.
const (
	// tokenLossAway is how long the token stays away.
	tokenLossAway = 3 * time.Second
	// tokenLossTargetSec bounds the time to the first signature after
	// the token's return.
	tokenLossTargetSec = 5.0
	// tokenLossPoll paces the probe signatures.
	tokenLossPoll = 20 * time.Millisecond
)

// TokenLossResult is the token-loss part of the report.
type TokenLossResult struct {
	// AnswersAway counts the answers by status while the token was away.
	AnswersAway map[int]int `json:"answersAway"`
	// ResumeSeconds is from the token's return to the first 200.
	ResumeSeconds float64  `json:"resumeSeconds"`
	Targets       []Target `json:"targets"`
	Error         string   `json:"error,omitempty"`
}

// runTokenLossBench takes away the token of the dev state in dir under the
// server behind c.
func runTokenLossBench(ctx context.Context, c *restClient, dir string) *TokenLossResult {
	r := &TokenLossResult{AnswersAway: map[int]int{}}
	if err := r.measure(ctx, c, filepath.Join(dir, "softhsm", "tokens")); err != nil {
		r.Error = err.Error()
		logf("token-loss bench failed: %v", err)
	}
	measured := r.Error == "" && r.ResumeSeconds > 0
	r.Targets = []Target{{Name: "first sign after the token returns", Value: r.ResumeSeconds, Comparison: "<=", Limit: tokenLossTargetSec,
		Unit: "s", Measured: measured, Pass: measured && r.ResumeSeconds <= tokenLossTargetSec}}
	return r
}

// signStatus signs once and returns the HTTP status.
func (c *restClient) signStatus(ctx context.Context, body []byte) (int, error) {
	resp, err := c.send(ctx, http.MethodPost, "/v1/synchronousSign", roleKeyOperation, body)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// measure renames tokens away, signs until the token returns, and times
// the recovery.
func (r *TokenLossResult) measure(ctx context.Context, c *restClient, tokens string) error {
	if _, err := os.Stat(tokens); err != nil {
		return fmt.Errorf("the server's token directory: %w", err)
	}
	label := "bench-tokenloss-probe"
	if err := c.createKey(ctx, label, map[string]any{"algorithm": "EC", "curveOid": "1.2.840.10045.3.1.7",
		"attributes": map[string]any{"sign": true, "verify": true}}); err != nil {
		return err
	}
	body := ecdsaSignBody(label)
	if st, err := c.signStatus(ctx, body); err != nil || st != http.StatusOK {
		return fmt.Errorf("sign before the loss: %d %v", st, err)
	}
	gone := tokens + ".gone"
	if err := os.Rename(tokens, gone); err != nil {
		return err
	}
	restored := false
	restore := func() error {
		if restored {
			return nil
		}
		restored = true
		return os.Rename(gone, tokens)
	}
	defer func() { _ = restore() }()
	for away := time.Now().Add(tokenLossAway); time.Now().Before(away); time.Sleep(tokenLossPoll) {
		st, err := c.signStatus(ctx, body)
		if err != nil {
			return err
		}
		r.AnswersAway[st]++
	}
	if err := restore(); err != nil {
		return err
	}
	back := time.Now()
	for deadline := back.Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(tokenLossPoll) {
		st, err := c.signStatus(ctx, body)
		if err != nil {
			return err
		}
		if st == http.StatusOK {
			r.ResumeSeconds = time.Since(back).Seconds()
			logf("token loss: answers while away %v; first signature %.2f s after the token returned", r.AnswersAway, r.ResumeSeconds)
			return nil
		}
	}
	return errors.New("no successful signature within 60 s of the token's return")
}

// printTokenLoss prints the phase.
func printTokenLoss(w io.Writer, r *TokenLossResult) {
	fmt.Fprintf(w, "\nToken loss: the server's token directory renamed for %s under a signing client, then restored\n", tokenLossAway)
	if r.Error != "" {
		fmt.Fprintf(w, "  failed: %s\n", r.Error)
	}
	fmt.Fprintf(w, "  answers while away, by HTTP status: %v; first signature %.2f s after the return\n", r.AnswersAway, r.ResumeSeconds)
	printTargetLines(w, r.Targets)
}
