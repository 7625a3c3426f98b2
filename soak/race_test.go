//go:build race

package soak

// raceEnabled: the race detector slows the processor about 20x, so the
// cardinality test sends fewer keys under -race (make test) and the full
// million without it.
const raceEnabled = true
