//go:build !race

package driftlockprocessor

const raceEnabled = false
