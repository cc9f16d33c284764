//go:build !race

package integration

// raceEnabled is false: the gateway is built without the race detector.
const raceEnabled = false
