// Package hsmgatebin builds the hsmgate binary of the enclosing module,
// for the end-to-end tests and the benchmark, which run the real binary.
package hsmgatebin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Build runs `go build [flags] -o DIR/hsmgate ./cmd/hsmgate` in the module
// root and returns the binary's path.
func Build(ctx context.Context, dir string, flags ...string) (string, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "hsmgate")
	args := append(append([]string{"build"}, flags...), "-o", bin, "./cmd/hsmgate")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/hsmgate: %w\n%s", err, out)
	}
	return bin, nil
}

// ModuleRoot returns the directory of the go.mod enclosing the working
// directory, asking `go env GOMOD` first and walking up otherwise.
func ModuleRoot(ctx context.Context) (string, error) {
	if out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output(); err == nil {
		if p := strings.TrimSpace(string(out)); p != "" && p != os.DevNull {
			return filepath.Dir(p), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the hsmgate module: no go.mod above the working directory")
		}
		dir = parent
	}
}
