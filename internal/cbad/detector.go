package cbad

import (
	"sync"
	"sync/atomic"
	"time"
)

// Detector owns many streams, each keyed by a string, and scores records in
// each stream's order. It is safe for concurrent use: the stream table is
// guarded by one mutex held only for the lookup, and each stream by its own,
// so batches of different streams score in parallel while records of one
// stream are scored one at a time in the order the calls take its lock.
type Detector struct {
	cfg Config
	rp  rateParams
	// noDiscovery turns off the novelty-rate mixture (tests measure what
	// it changes).
	noDiscovery bool
	// keepAdmittedSeverity keeps weighing an admitted kind's severity
	// (tests measure what dropping it changes).
	keepAdmittedSeverity bool

	mu      sync.Mutex
	streams map[string]*stream
	// LRU list: head is the most recently used stream.
	head, tail *stream

	scratch sync.Pool

	// families pool metric series of one metric name for cold start
	// (coldstart.go).
	families familyTable

	records     atomic.Uint64
	anomalies   atomic.Uint64
	driftEvents atomic.Uint64
	evicted     atomic.Uint64
}

// New validates cfg and returns a Detector.
func New(cfg Config, opts ...Option) (*Detector, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	d := &Detector{cfg: cfg, streams: make(map[string]*stream)}
	if cfg.RateBucket > 0 {
		d.rp = newRateParams(&cfg)
	}
	for _, o := range opts {
		o(d)
	}
	d.scratch.New = func() any { return new(scratch) }
	return d, nil
}

// Config returns the detector's effective configuration.
func (d *Detector) Config() Config { return d.cfg }

// acquire returns key's stream, locked, creating it (and evicting others)
// as needed. now drives idle eviction; zero skips it.
func (d *Detector) acquire(key string, now time.Time) *stream {
	d.mu.Lock()
	st, ok := d.streams[key]
	if !ok {
		st = newStream(key, &d.cfg)
		d.streams[key] = st
		d.pushFront(st)
		for len(d.streams) > d.cfg.MaxStreams {
			d.evictLocked(d.tail)
		}
	} else if d.head != st {
		d.unlink(st)
		d.pushFront(st)
	}
	if !now.IsZero() {
		if now.After(st.lastSeen) {
			st.lastSeen = now
		}
		if d.cfg.IdleTimeout > 0 {
			for d.tail != nil && d.tail != st && !d.tail.lastSeen.IsZero() && now.Sub(d.tail.lastSeen) > d.cfg.IdleTimeout {
				d.evictLocked(d.tail)
			}
		}
	}
	d.mu.Unlock()
	st.mu.Lock()
	return st
}

func (d *Detector) pushFront(st *stream) {
	st.prev = nil
	st.next = d.head
	if d.head != nil {
		d.head.prev = st
	}
	d.head = st
	if d.tail == nil {
		d.tail = st
	}
}

func (d *Detector) unlink(st *stream) {
	if st.prev != nil {
		st.prev.next = st.next
	} else {
		d.head = st.next
	}
	if st.next != nil {
		st.next.prev = st.prev
	} else {
		d.tail = st.prev
	}
	st.prev, st.next = nil, nil
}

func (d *Detector) evictLocked(st *stream) {
	d.unlink(st)
	delete(d.streams, st.key)
	d.evicted.Add(1)
}

// Score scores one text record of stream key and, unless it is anomalous,
// adds it to the stream's baseline.
func (d *Detector) Score(key string, rec Record) Result {
	st := d.acquire(key, rec.Time)
	sc := d.scratch.Get().(*scratch)
	res := d.scoreText(st, sc, rec)
	st.mu.Unlock()
	d.scratch.Put(sc)
	d.records.Add(1)
	return res
}

// Learn adds a record to a stream's baseline without scoring it: the triage
// feedback path for records a person marked as false positives. The record
// is canonicalized exactly as Score would.
func (d *Detector) Learn(key string, rec Record) {
	st := d.acquire(key, rec.Time)
	sc := d.scratch.Get().(*scratch)
	data := rec.Data
	if len(data) > d.cfg.MaxRecordBytes {
		data = data[:d.cfg.MaxRecordBytes]
	}
	if d.cfg.Canonicalize {
		sc.canon, sc.redact = Canonicalize(sc.canon[:0], sc.redact, data)
	} else {
		sc.canon = Redact(sc.canon[:0], data)
	}
	sc.toks, sc.spans, sc.kind = tokenize(sc.toks[:0], sc.spans[:0], sc.canon)
	st.ensureText(&d.cfg)
	st.learn(sc.toks)
	// A person said this record is normal: its kind is known, and (like a
	// kind admitted after recurring) no longer weighed by its severity.
	st.disc.seen.visit(sc.kind)
	st.novelty.admit(sc.kind)
	st.mu.Unlock()
	d.scratch.Put(sc)
}

// Stats returns detector-wide counters.
func (d *Detector) Stats() Stats {
	d.mu.Lock()
	n := len(d.streams)
	d.mu.Unlock()
	return Stats{
		ActiveStreams:  n,
		EvictedStreams: d.evicted.Load(),
		Records:        d.records.Load(),
		Anomalies:      d.anomalies.Load(),
		DriftEvents:    d.driftEvents.Load(),
	}
}

// Has reports whether the detector currently holds stream key (it may have
// been evicted, or never seen by this instance).
func (d *Detector) Has(key string) bool {
	d.mu.Lock()
	_, ok := d.streams[key]
	d.mu.Unlock()
	return ok
}

// StreamBytes returns the estimated memory of one stream, 0 if unknown.
func (d *Detector) StreamBytes(key string) int {
	d.mu.Lock()
	st, ok := d.streams[key]
	d.mu.Unlock()
	if !ok {
		return 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.bytes()
}
