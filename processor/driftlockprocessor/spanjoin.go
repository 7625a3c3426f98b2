package driftlockprocessor

import (
	"sync"
	"sync/atomic"
)

// The span join finds calls between services: a caller's span whose child
// span (the callee's side of the same call) belongs to another service.
// Whichever of the two spans arrives second completes the pair, and the
// pair gives one observation of the edge caller -> callee: the network and
// queueing gap, caller-side duration minus callee-side duration. Network
// delay or a saturated connection pool in front of a service is invisible
// in that service's own spans and visible only here.
//
// The join is a fixed-size, set-associative table (no allocation, memory
// bounded by traces.edge_join_size entries of about 64 bytes): a span
// waiting for its partner occupies one entry, keyed by its own span id (a
// possible caller) or by its parent id (a child whose caller has not been
// seen). An entry older than traces.edge_join_ttl (in span time: the latest
// span end seen) is free, and a full bucket overwrites its oldest entry, so
// the table forgets by time and under pressure by age. Only spans that the
// same collector sees are joined: in a fleet where streams are routed by
// service, put the join in a tier that receives whole traces (e.g. behind
// the load-balancing exporter with routing_key: traceID); see README.

const joinWays = 4 // entries per bucket

// joinRole says what an entry waits for.
type joinRole uint8

const (
	roleCaller joinRole = 1 // keyed by its own span id: waits for a child
	roleChild  joinRole = 2 // keyed by its parent's span id: waits for it
)

type joinEntry struct {
	id      uint64 // span id (caller) or parent span id (child)
	trace   uint64 // low half of the trace id, to tell id collisions apart
	service string // interned
	start   int64  // unix nanoseconds
	end     int64
	role    joinRole
}

type joinBucket struct {
	mu sync.Mutex
	e  [joinWays]joinEntry
}

type spanJoin struct {
	buckets []joinBucket
	mask    uint64
	ttl     int64        // nanoseconds of span time an entry is kept
	clock   atomic.Int64 // latest span end seen
}

func newSpanJoin(entries int, ttlNanos int64) *spanJoin {
	n := 1
	for n*joinWays < entries {
		n <<= 1
	}
	return &spanJoin{buckets: make([]joinBucket, n), mask: uint64(n - 1), ttl: ttlNanos}
}

// bytes is the join's memory.
func (j *spanJoin) bytes() int { return len(j.buckets) * (8 + joinWays*64) }

// joinedCall is one completed caller -> callee pair.
type joinedCall struct {
	caller, callee string
	callerDur      int64 // nanoseconds
	calleeDur      int64
	// atCaller is true when the span at hand is the caller's (the child
	// arrived first), false when it is the callee's.
	atCaller bool
}

// gapSeconds is the caller-side duration minus the callee-side duration
// (clock skew between hosts can make it negative: it is then 0).
func (c *joinedCall) gapSeconds() float64 {
	return float64(max(c.callerDur-c.calleeDur, 0)) / 1e9
}

func joinHash(id uint64, role joinRole) uint64 {
	x := id ^ uint64(role)*0x9e3779b97f4a7c15
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return x
}

// observe adds one span and returns the call it completes, if any: the
// span's parent seen earlier in another service (the span is the callee's
// side), or a child of it seen earlier in another service (the span is the
// caller's side). spanID and parentID are 0 when absent.
func (j *spanJoin) observe(trace, spanID, parentID uint64, service string, start, end int64) (joinedCall, bool) {
	now := j.clock.Load()
	for end > now && !j.clock.CompareAndSwap(now, end) {
		now = j.clock.Load()
	}
	if end > now {
		now = end
	}
	horizon := now - j.ttl
	var call joinedCall
	found := false
	if parentID != 0 {
		if p, ok := j.find(parentID, trace, roleCaller, horizon, false); ok && p.service != service {
			call = joinedCall{caller: p.service, callee: service, callerDur: p.end - p.start, calleeDur: end - start}
			found = true
		} else if !ok {
			j.put(joinEntry{id: parentID, trace: trace, service: service, start: start, end: end, role: roleChild}, horizon)
		}
	}
	if spanID != 0 {
		if c, ok := j.find(spanID, trace, roleChild, horizon, true); ok && c.service != service && !found {
			call = joinedCall{caller: service, callee: c.service, callerDur: end - start, calleeDur: c.end - c.start, atCaller: true}
			found = true
		}
		// Later children (in other services) may still come.
		j.put(joinEntry{id: spanID, trace: trace, service: service, start: start, end: end, role: roleCaller}, horizon)
	}
	return call, found
}

// find returns the entry (id, trace, role) unless it expired, and removes
// it when take is set. A caller's entry stays (a caller span may have
// children in several services); a child's is used once.
func (j *spanJoin) find(id, trace uint64, role joinRole, horizon int64, take bool) (joinEntry, bool) {
	b := &j.buckets[joinHash(id, role)&j.mask]
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.e {
		x := &b.e[i]
		if x.role == role && x.id == id && x.trace == trace {
			out := *x
			if take || out.end < horizon {
				*x = joinEntry{}
			}
			if out.end < horizon {
				return joinEntry{}, false
			}
			return out, true
		}
	}
	return joinEntry{}, false
}

// put stores e in a free, expired or else the oldest way of its bucket.
func (j *spanJoin) put(e joinEntry, horizon int64) {
	b := &j.buckets[joinHash(e.id, e.role)&j.mask]
	b.mu.Lock()
	victim := 0
	for i := range b.e {
		x := &b.e[i]
		if x.role == 0 || x.end < horizon {
			victim = i
			break
		}
		if x.end < b.e[victim].end {
			victim = i
		}
	}
	b.e[victim] = e
	b.mu.Unlock()
}
