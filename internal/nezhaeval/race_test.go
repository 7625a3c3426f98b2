//go:build race

package nezhaeval

// raceEnabled: the full-day replay takes minutes under -race on a shared
// machine; the plain run covers it.
const raceEnabled = true
