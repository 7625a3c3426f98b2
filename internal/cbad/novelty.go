package cbad

// noveltyTracker counts how often each kind of anomaly recurred recently.
// Anomalous records are held out of the baseline, so a genuinely new but
// recurring kind of record (a new log template after a deploy, a metric at
// a new level) would otherwise be flagged for ever. Once a kind has been
// flagged admitAfter times it is a regime, not an incident: its records are
// admitted to the baseline and the stream learns it. Isolated anomalies
// never reach the baseline.
type noveltyTracker struct {
	kinds  [noveltySlots]uint64
	counts [noveltySlots]uint16
	age    [noveltySlots]uint32
	clock  uint32
}

const noveltySlots = 32

// observe records one anomaly of kind k and returns how many times that
// kind has been seen while it stayed in the table.
func (t *noveltyTracker) observe(k uint64) int {
	t.clock++
	victim := 0
	for i := range t.kinds {
		if t.kinds[i] == k && t.counts[i] > 0 {
			if t.counts[i] < 0xffff {
				t.counts[i]++
			}
			t.age[i] = t.clock
			return int(t.counts[i])
		}
		// Replace the least recently seen kind.
		if t.counts[i] == 0 || t.age[i] < t.age[victim] {
			victim = i
		}
	}
	t.kinds[victim], t.counts[victim], t.age[victim] = k, 1, t.clock
	return 1
}

// anomalyKind identifies the kind of an anomalous record by its template:
// the tokens the baseline predicted, with each surprising token (costing at
// least kindBits) replaced by a wildcard. Records of a new template with a
// varying value (a new host name each time) then share one kind, and so do
// repeats of one new message.
func anomalyKind(toks []uint64, costs []float32) uint64 {
	const kindBits = 6
	h := uint64(0x84222325cbf29ce4)
	for i, t := range toks {
		if i < len(costs) && costs[i] >= kindBits {
			t = 0x5bd1e995 // wildcard
		}
		h = (h ^ t) * 0x100000001b3
	}
	return h | 1
}
