package cbad

import (
	"os"
	"strconv"
)

// Research knobs: DRIFTLOCK_KNOBS_* environment variables override numeric
// path internals for the evaluation harness only. Unset, the defaults hold.
func init() {
	if v, err := strconv.Atoi(os.Getenv("DRIFTLOCK_KNOB_SUBSEQ")); err == nil && v > 0 && v <= subseqLen {
		numSubseq = v
	}
	if v, err := strconv.Atoi(os.Getenv("DRIFTLOCK_KNOB_REFRACTORY")); err == nil && v >= 0 {
		numRefractory = v
	}
	if v, err := strconv.ParseFloat(os.Getenv("DRIFTLOCK_KNOB_PSCALE"), 64); err == nil && v > 0 {
		numPScale = v
	}
	if v, err := strconv.ParseFloat(os.Getenv("DRIFTLOCK_KNOB_FAR"), 64); err == nil && v > 0 {
		numFar = v
	}
}
