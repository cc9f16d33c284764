//go:build race

package integration

// raceEnabled: `go test -race ./integration` builds the gateway with the
// race detector too, so a data race in the server fails the test that
// stops it (the detector makes the process exit with status 66).
const raceEnabled = true
