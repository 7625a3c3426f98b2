//go:build !race

package cbad

const raceEnabled = false
