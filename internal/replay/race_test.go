//go:build race

package replay

// raceEnabled shortens the real-data scan under -race (5x slower there);
// the full day is read in the plain test run.
const raceEnabled = true
