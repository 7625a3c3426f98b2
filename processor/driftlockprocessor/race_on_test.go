//go:build race

package driftlockprocessor

// raceEnabled: allocation counts are meaningless under -race (sync.Pool
// drops items at random).
const raceEnabled = true
