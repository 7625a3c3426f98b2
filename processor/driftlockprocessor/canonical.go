package driftlockprocessor

import (
	"math/bits"
	"slices"
	"strconv"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

const hexDigits = "0123456789abcdef"

// maxValueDepth bounds recursion into nested maps and slices: a hostile
// record nested a hundred levels deep costs no more than one nested 8 deep.
const maxValueDepth = 8

// scratch holds the per-batch buffers of the hot path. One batch owns one
// scratch (taken from a sync.Pool), so concurrent batches never share it and
// steady-state scoring does not allocate.
type scratch struct {
	key  []byte   // stream key being built
	rec  []byte   // canonical record being built
	keys []string // sorted attribute keys (maps, metric series)

	// lastKey is the stream key built last (interned): the next record
	// is most often of the same stream.
	lastKey string

	counts   []uint64      // histogram bucket deltas
	verdicts []verdict     // verdicts on one metric data point
	batch    *metricsBatch // an unused companion scope, kept for the next resource
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{key: make([]byte, 0, 256), rec: make([]byte, 0, 2048), keys: make([]string, 0, 16)}
}}

// maxPooledBuffer keeps one huge record from pinning its buffer in the pool.
const maxPooledBuffer = 1 << 20

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	if cap(s.rec) > maxPooledBuffer || cap(s.key) > maxPooledBuffer {
		return
	}
	scratchPool.Put(s)
}

// appendValue appends a canonical text form of v to b: strings verbatim,
// numbers in Go's shortest form, bytes in hex, maps as {k=v ...} with keys
// sorted (so attribute order never changes a record's cost) and slices as
// [v ...]. Output stops growing at limit bytes.
func appendValue(b []byte, v pcommon.Value, s *scratch, limit, depth int) []byte {
	if len(b) >= limit {
		return b
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		str := v.Str()
		if room := limit - len(b); len(str) > room {
			str = str[:room]
		}
		return append(b, str...)
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return strconv.AppendFloat(b, v.Double(), 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	case pcommon.ValueTypeBytes:
		// Hex, read byte by byte: AsRaw would copy a possibly huge body.
		bs := v.Bytes()
		n := min(bs.Len(), (limit-len(b))/2)
		for i := 0; i < n; i++ {
			c := bs.At(i)
			b = append(b, hexDigits[c>>4], hexDigits[c&0x0f])
		}
		return b
	case pcommon.ValueTypeMap:
		if depth >= maxValueDepth {
			return append(b, "{...}"...)
		}
		return appendMap(b, v.Map(), s, limit, depth+1)
	case pcommon.ValueTypeSlice:
		if depth >= maxValueDepth {
			return append(b, "[...]"...)
		}
		sl := v.Slice()
		b = append(b, '[')
		for i := 0; i < sl.Len() && len(b) < limit; i++ {
			if i > 0 {
				b = append(b, ' ')
			}
			b = appendValue(b, sl.At(i), s, limit, depth+1)
		}
		return append(b, ']')
	default: // empty
		return b
	}
}

// appendMap appends m as {k=v ...} with sorted keys. The key slice is taken
// from the scratch; nested maps extend it past the caller's keys and put it
// back, so one scratch serves every depth.
func appendMap(b []byte, m pcommon.Map, s *scratch, limit, depth int) []byte {
	base := len(s.keys)
	for k := range m.All() {
		s.keys = append(s.keys, k)
	}
	mine := s.keys[base:]
	slices.Sort(mine)
	b = append(b, '{')
	for i := 0; i < len(mine) && len(b) < limit; i++ {
		k := s.keys[base+i] // re-read: nested calls may have grown s.keys
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, k...)
		b = append(b, '=')
		v, _ := m.Get(k)
		b = appendValue(b, v, s, limit, depth)
	}
	clear(s.keys[base:])
	s.keys = s.keys[:base]
	return append(b, '}')
}

// appendAttrs appends " key=value" for every configured key present in m.
func appendAttrs(b []byte, m pcommon.Map, keys []string, s *scratch, limit int) []byte {
	for _, k := range keys {
		if len(b) >= limit {
			return b
		}
		v, ok := m.Get(k)
		if !ok {
			continue
		}
		b = append(b, ' ')
		b = append(b, k...)
		b = append(b, '=')
		b = appendValue(b, v, s, limit, 0)
	}
	return b
}

// durationBucket returns a letter naming the power-of-two bucket of a span
// duration in microseconds: 'a' for under 1us, 'b' for 1us, 'c' for 2-3us,
// ... 'z' for 16.8-33.6s, then 'A', 'B', ... for longer spans ('A' from
// 33.6s, 'G' for 36-72 minutes, 'Z' from about 36 years on). A letter, not
// a number, because the detector's canonicalizer masks numbers, and the
// bucket is exactly the number that must survive; an ASCII letter, because
// it ends up in a UTF-8 attribute.
func durationBucket(startNanos, endNanos uint64) byte {
	if endNanos <= startNanos {
		return 'a'
	}
	b := bits.Len64((endNanos - startNanos) / 1000) // 0..54 for uint64 nanoseconds
	switch {
	case b < 26:
		return byte('a' + b)
	case b < 52:
		return byte('A' + b - 26)
	default:
		return 'Z'
	}
}

// internTable maps stream keys built in scratch buffers to shared strings,
// so that the steady state passes the detector a string without allocating
// (a map lookup by string(bytes) does not copy). It is cleared when it grows
// past max, which only costs re-allocating the live keys.
type internTable struct {
	mu  sync.RWMutex
	m   map[string]string
	max int
}

func newInternTable(maxEntries int) *internTable {
	return &internTable{m: make(map[string]string), max: maxEntries}
}

func (t *internTable) intern(b []byte) string {
	t.mu.RLock()
	s, ok := t.m[string(b)]
	t.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	t.mu.Lock()
	if len(t.m) >= t.max {
		clear(t.m)
	}
	t.m[s] = s
	t.mu.Unlock()
	return s
}
