//go:build !race

package nezhaeval

const raceEnabled = false
