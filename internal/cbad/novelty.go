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
	// admitted holds the kinds (kind.go) most recently admitted, a ring.
	admitted [noveltySlots]uint64
	nextAdm  int
}

// admit remembers that kind k was admitted to the baseline.
func (t *noveltyTracker) admit(k uint64) {
	if k == 0 || t.admittedKind(k) {
		return
	}
	t.admitted[t.nextAdm] = k
	t.nextAdm = (t.nextAdm + 1) % noveltySlots
}

// admittedKind reports whether kind k was admitted recently.
func (t *noveltyTracker) admittedKind(k uint64) bool {
	if k == 0 {
		return false
	}
	for _, a := range t.admitted {
		if a == k {
			return true
		}
	}
	return false
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

// Discovery: how often a stream introduces kinds it has never seen.
//
// Flagged records are quarantined: not learned and not in the calibration
// set. The calibration set therefore describes only the records the stream
// already knew, and a stream that routinely introduces new message kinds
// (a desktop's system log, a proxy logging each new host, an HPC cluster's
// mix of components) never learns how often that happens: the first
// occurrence of every kind lands beyond the calibrated range and is
// flagged. What such a stream's normal output looks like is a mixture: with
// probability D a record is of a kind never seen before (Good-Turing: the
// share of recent records whose kind was new is the probability that the
// next one is), and then its cost is drawn from what new kinds cost; else
// it is a known kind, whose cost the calibration set describes. The
// p-value of a score s under that mixture is
//
//	p = D * P(new-kind cost >= s) + (1 - D) * P(known cost >= s)
//
// so a new record is news only when it is rarer than the stream's own rate
// of novelty makes expected: a stream that produces a new kind every 20
// records must see one that costs more than most past new kinds, while a
// stream that never produces new kinds (D = 0) keeps flagging the first
// one. D and the new kinds' costs are measured on every record (flagged or
// not, by kind, not by verdict), so the estimate does not feed on its own
// decisions.
type discovery struct {
	seen kindSet
	// isNew is a ring of one bit per record of the last discoveryWindow
	// records: set when the record's kind was new. fresh counts the set
	// bits, n the records in the ring.
	isNew [discoveryWindow / 64]uint64
	at, n int
	fresh int
	// isNewErr and freshErr are the same for records of error severity or
	// worse: new kinds at that severity (see rate).
	isNewErr [discoveryWindow / 64]uint64
	freshErr int
	novel    calibration // costs (bits/token) of the recent new-kind records
	novelPk  calibration // their peak token costs (long records)
}

const (
	// discoveryWindow is how many recent records the discovery rate is
	// measured over (a multiple of 64).
	discoveryWindow = 512
	// discoveryMin is how many records the rate needs before it is used:
	// a young stream finds new kinds at every turn, which says nothing yet
	// about how often it will once it has run a while.
	discoveryMin = discoveryWindow / 2
	// novelCosts is how many recent new-kind records' costs are kept: the
	// rank of a new record among them is "how extreme among novelties".
	novelCosts = 64
)

func newDiscovery(peak bool) *discovery {
	d := &discovery{novel: newCalibration(novelCosts, textResolution)}
	if peak {
		d.novelPk = newCalibration(novelCosts, peakResolution)
	}
	return d
}

// observe records whether a scored record was of a new kind (see
// kindSet.visit), and its costs.
func (d *discovery) observe(isNew, isErr bool, score, peak float64) {
	w, b := d.at/64, uint64(1)<<(d.at%64)
	if d.n == discoveryWindow {
		if d.isNew[w]&b != 0 {
			d.fresh--
		}
		if d.isNewErr[w]&b != 0 {
			d.freshErr--
		}
	} else {
		d.n++
	}
	d.isNewErr[w] &^= b
	if isNew && isErr {
		d.isNewErr[w] |= b
		d.freshErr++
	}
	if isNew {
		d.isNew[w] |= b
		d.fresh++
		d.novel.add(score)
		d.novel.refresh()
		if d.novelPk.scores != nil {
			d.novelPk.add(peak)
			d.novelPk.refresh()
		}
	} else {
		d.isNew[w] &^= b
	}
	d.at = (d.at + 1) % discoveryWindow
}

// rate is the stream's discovery rate D: the share of recent records whose
// kind was new. For a record of error severity or worse (isErr) it is the
// share of recent records that were new kinds at that severity: severity
// is evidence (severityLikelihood) because a new error is rarer than a new
// message, and a stream's rate of new errors is what says how rare. A
// cluster's log full of new informational kinds whose new errors are rare
// (BGL) keeps its new errors' weight; a desktop's log whose new kinds are
// errors half the time (Mac) does not.
func (d *discovery) rate(isErr bool) float64 {
	if d.n < discoveryMin {
		return 0 // not measured yet: a young stream is discovering everything
	}
	if isErr {
		return float64(d.freshErr) / float64(d.n)
	}
	return float64(d.fresh) / float64(d.n)
}

// mix returns the p-value of a cost under the mixture of new and known
// kinds (see discovery), p the known kinds' p-value of it and novel the
// new kinds' recent costs.
func (d *discovery) mix(p float64, novel *calibration, s float64, isErr bool) float64 {
	D := d.rate(isErr)
	if D == 0 || novel.n == 0 {
		return p
	}
	return D*novel.tailPValue(s) + (1-D)*p
}

// kindSet remembers the kinds a stream has seen recently, by a 32-bit
// fingerprint, in two generations of kindSetSlots slots (open addressing):
// lookups probe both, a kind found only in the old generation moves to the
// current one, and when the current one is three-quarters full it becomes
// the old one. So it holds the last 384 to 768 distinct kinds seen, in
// 4 KiB, and a kind recurring at all regularly is never forgotten.
type kindSet struct {
	cur, old [kindSetSlots]uint32
	nCur     int
}

const (
	kindSetBits  = 9
	kindSetSlots = 1 << kindSetBits
)

// visit reports whether k was seen before and remembers it.
func (s *kindSet) visit(k uint64) bool {
	f := uint32(k>>32) ^ uint32(k)
	if f == 0 {
		f = 1 // 0 marks an empty slot
	}
	if s.probe(&s.cur, f) {
		return true
	}
	found := s.probe(&s.old, f)
	if s.nCur >= kindSetSlots*3/4 {
		s.old = s.cur
		s.cur = [kindSetSlots]uint32{}
		s.nCur = 0
	}
	s.insert(f)
	return found
}

func (s *kindSet) probe(t *[kindSetSlots]uint32, f uint32) bool {
	for i := f * 0x9e3779b9 >> (32 - kindSetBits); ; i = (i + 1) % kindSetSlots {
		switch t[i] {
		case f:
			return true
		case 0:
			return false
		}
	}
}

func (s *kindSet) insert(f uint32) {
	for i := f * 0x9e3779b9 >> (32 - kindSetBits); ; i = (i + 1) % kindSetSlots {
		if s.cur[i] == 0 {
			s.cur[i] = f
			s.nCur++
			return
		}
	}
}

// discoverySnap mirrors discovery with exported fields (gob needs them).
type discoverySnap struct {
	Cur, Old   []uint32
	NCur       int
	IsNew      []uint64
	At, N      int
	Fresh      int
	IsNewErr   []uint64
	FreshErr   int
	Novel      []float32
	NovelPeaks []float32
}

func (d *discovery) snap() *discoverySnap {
	s := &discoverySnap{Cur: d.seen.cur[:], Old: d.seen.old[:], NCur: d.seen.nCur,
		IsNew: d.isNew[:], At: d.at, N: d.n, Fresh: d.fresh, IsNewErr: d.isNewErr[:], FreshErr: d.freshErr,
		Novel: d.novel.ordered()}
	if d.novelPk.scores != nil {
		s.NovelPeaks = d.novelPk.ordered()
	}
	return s
}

// restore sets d from a snapshot; a snapshot whose sizes do not match
// these (another build's constants) is ignored: the rate is measured
// afresh.
func (d *discovery) restore(s *discoverySnap) {
	if len(s.Cur) != kindSetSlots || len(s.Old) != kindSetSlots || len(s.IsNew) != len(d.isNew) || len(s.IsNewErr) != len(d.isNewErr) ||
		s.At < 0 || s.At >= discoveryWindow || s.N < 0 || s.N > discoveryWindow || s.Fresh < 0 || s.Fresh > s.N || s.FreshErr < 0 || s.FreshErr > s.Fresh ||
		s.NCur < 0 || s.NCur > kindSetSlots {
		return
	}
	// Every probe ends at an empty slot: a table without one (a corrupt
	// snapshot) would loop for ever.
	if zeros(s.Cur) == 0 || zeros(s.Old) == 0 || kindSetSlots-zeros(s.Cur) != s.NCur {
		return
	}
	copy(d.seen.cur[:], s.Cur)
	copy(d.seen.old[:], s.Old)
	copy(d.isNew[:], s.IsNew)
	copy(d.isNewErr[:], s.IsNewErr)
	d.seen.nCur, d.at, d.n, d.fresh, d.freshErr = s.NCur, s.At, s.N, s.Fresh, s.FreshErr
	for _, v := range s.Novel[max(0, len(s.Novel)-novelCosts):] {
		d.novel.add(float64(v))
	}
	d.novel.refresh()
	if d.novelPk.scores != nil {
		for _, v := range s.NovelPeaks[max(0, len(s.NovelPeaks)-novelCosts):] {
			d.novelPk.add(float64(v))
		}
		d.novelPk.refresh()
	}
}

func zeros(t []uint32) int {
	n := 0
	for _, v := range t {
		if v == 0 {
			n++
		}
	}
	return n
}
