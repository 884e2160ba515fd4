//go:build !race

package chatsign

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false
