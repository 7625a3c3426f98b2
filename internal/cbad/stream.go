package cbad

import (
	"sync"
	"time"
	"unsafe"
)

// maxSlotBytes caps the canonical bytes one record contributes to the
// window and reference texts (drift tests and dictionary compressors).
const maxSlotBytes = 512

// slot is one record kept in a ring; its buffers are reused when the ring
// wraps, so a warm stream does not allocate.
type slot struct {
	toks    []uint64
	text    []byte
	flagged bool
}

// ring is a fixed-capacity ring of slots, oldest first.
type ring struct {
	slots []slot
	head  int // next write position
	n     int
}

func newRing(size int) ring { return ring{slots: make([]slot, size)} }

// push returns the slot to overwrite and, when the ring was full, whether
// the returned slot still holds the evicted oldest record (the caller reads
// it before overwriting).
func (r *ring) push() (s *slot, evicted bool) {
	s = &r.slots[r.head]
	r.head++
	if r.head == len(r.slots) {
		r.head = 0
	}
	if r.n < len(r.slots) {
		r.n++
		return s, false
	}
	return s, true
}

// at returns the i-th oldest slot.
func (r *ring) at(i int) *slot {
	j := r.head - r.n + i
	if j < 0 {
		j += len(r.slots)
	}
	return &r.slots[j]
}

// stream is the state of one keyed stream.
type stream struct {
	mu  sync.Mutex
	key string
	// LRU list links, guarded by Detector.mu.
	prev, next *stream
	lastSeen   time.Time

	index uint64 // records scored so far

	// Text path.
	model    ngramModel
	baseline ring // tokens of the records in the model, oldest first
	ref      ring // canonical text of the most recent normal records
	window   ring // the current window: all records, flagged or not
	cal      calibration
	// calPeak holds the recent normal records' peak token costs (ngram
	// model only): the evidence of one rare event in a long record.
	calPeak  calibration
	ncds     ncdRange
	driftRun int
	rng      splitmix64
	dict     dictModel
	novelty  noveltyTracker
	// disc measures how often the stream introduces new kinds (novelty.go).
	disc *discovery

	// lastWindowC is the compressed size of the window closed last (0 if
	// not known), and movedSinceClose how many of its records moved on to
	// the reference block since (negative once one did not): when all
	// did, the next window's test compares against exactly that text.
	lastWindowC, movedSinceClose int

	// Stream-level evidence (counts per kind and time bucket), allocated on
	// the first record with a time.
	rate *rateState

	// Numeric path (metrics), allocated on first ScoreValue.
	num *numericState
	// Latency path (span durations, edge gaps, error status), allocated on
	// first ScoreLatency or ScoreError.
	lat *latencyState
}

// newStream returns an empty stream; the text or numeric state is sized on
// first use, so a metric series does not carry text rings and vice versa.
func newStream(key string, cfg *Config) *stream {
	return &stream{key: key, rng: splitmix64(cfg.Seed ^ fnv64(key))}
}

// ensureText allocates the text path's rings and calibration set.
func (st *stream) ensureText(cfg *Config) {
	if st.baseline.slots != nil {
		return
	}
	refSize := cfg.Hop
	if cfg.Compressor != CompressorNgram {
		refSize = cfg.BaselineSize
	}
	st.baseline = newRing(cfg.BaselineSize)
	st.ref = newRing(refSize)
	st.window = newRing(cfg.Hop)
	st.cal = newCalibration(cfg.CalibrationSize, textResolution)
	st.disc = newDiscovery(cfg.Compressor == CompressorNgram)
	if cfg.Compressor == CompressorNgram {
		st.calPeak = newCalibration(cfg.CalibrationSize, peakResolution)
	}
}

// ensureNumeric allocates the numeric path's state and calibration set.
func (st *stream) ensureNumeric(cfg *Config) *numericState {
	if st.num == nil {
		st.num = &numericState{values: ring1{v: make([]float64, cfg.NumericBaselineSize)}, sorted: make([]float64, 0, cfg.NumericBaselineSize), prevSym: -1}
		if st.baseline.slots == nil {
			st.cal = newCalibration(cfg.NumericCalibrationSize, 0)
		}
	}
	return st.num
}

func fnv64(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}

// learn adds a record's tokens to the baseline (the n-gram model). Its text
// reaches the reference ring only when it leaves the window (see
// pushWindow), so that the drift test compares a window with the normal
// records before it, never with itself.
func (st *stream) learn(toks []uint64) {
	s, evicted := st.baseline.push()
	if evicted {
		st.model.replace(s.toks, toks)
	} else {
		st.model.update(toks, 1)
	}
	s.toks = append(s.toks[:0], toks...)
}

func appendCapped(dst, b []byte) []byte {
	if len(b) > maxSlotBytes {
		b = b[:maxSlotBytes]
	}
	dst = append(dst, b...)
	return append(dst, '\n')
}

// pushWindow adds a record to the window. The record it displaces, if it
// was normal, moves on to the reference ring.
func (st *stream) pushWindow(text []byte, toks []uint64, flagged bool) {
	w, full := st.window.push()
	if full {
		if w.flagged {
			st.movedSinceClose = -len(st.window.slots) // not all of the last window moves on
		} else {
			// The text moves on by handing over its buffer (the slot's
			// next text is written into the one it displaces): no copy.
			r, _ := st.ref.push()
			r.text, w.text = w.text, r.text
			st.movedSinceClose++
		}
	}
	w.text = appendCapped(w.text[:0], text)
	w.toks = append(w.toks[:0], toks...)
	w.flagged = flagged
}

// bytes estimates the stream's memory footprint.
func (st *stream) bytes() int {
	n := 512 + st.model.t.bytes() + st.model.ctx.bytes() + len(st.cal.scores)*4 + cap(st.cal.sorted)*4 +
		len(st.calPeak.scores)*4 + cap(st.calPeak.sorted)*4
	for _, r := range []*ring{&st.baseline, &st.ref, &st.window} {
		for i := range r.slots {
			n += 48 + cap(r.slots[i].toks)*8 + cap(r.slots[i].text)
		}
	}
	n += st.dict.bytes()
	if st.num != nil {
		n += st.num.bytes()
	}
	if st.lat != nil {
		n += st.lat.bytes()
	}
	if st.rate != nil {
		n += int(unsafe.Sizeof(*st.rate))
	}
	if st.disc != nil {
		n += int(unsafe.Sizeof(*st.disc)) + 2*novelCosts*8
	}
	return n
}
