package cbad

import "math"

// The n-gram cost model: an adaptive token model over orders 0..ngramOrder
// with PPM-C escapes (the probability of a token never seen in a context is
// the share of distinct continuations of that context), backed by a spelling
// cost for tokens never seen at all. Its code length is what an arithmetic
// coder driven by this model would spend, so it is a compressor in the
// information-theoretic sense; unlike an LZ coder it has no per-record
// framing overhead, which is what makes short log lines resolvable.
//
// Counts are kept for the records currently in the baseline only: when a
// record leaves the baseline its n-grams are subtracted again, so the model
// slides with the stream without ever being rebuilt.

const (
	ngramOrder = 2
	// maxModelTokens caps the tokens of one record that the model sees; it
	// bounds the memory of a stream (see README, "Memory per stream").
	maxModelTokens = 48
	// A never-seen token is spelled out: log2 of its character class's
	// alphabet per byte (digits 10, letters 26, anything else ~64), plus
	// the cost of its end, over at most maxSpellBytes bytes. A new number
	// is then as cheap as its digits, a new word costlier, a new blob of
	// punctuation costlier still.
	spellDigitBits = 3.32
	spellAlphaBits = 4.70
	spellOtherBits = 6.00
	spellEndBits   = 4.00
	maxSpellBytes  = 24

	saltTotal = 0x9e3779b97f4a7c15
	bosToken  = 0x2545f4914f6cdd1d
)

// ngramModel holds the counts: t maps (order, context, token) to the
// token's count in that context; ctx maps (order, context) to the
// context's total count (low 32 bits) and its number of distinct tokens
// (high 32 bits), packed so that one probe updates both.
type ngramModel struct {
	t   countTable
	ctx countTable
	// order0 is the packed total and distinct count of the order-0
	// context, which is the same for every token: kept here rather than
	// probed in ctx for every token of every record.
	order0 uint64
}

// contexts returns the context hash of orders 0, 1 and 2 for a position
// whose two preceding tokens are p2 and p1 (bosToken before the record's
// start): the hash of the order's preceding tokens, seeded by the order.
// Straight-line code for ngramOrder 2; TestContextsMatchDefinition holds
// it to the general definition.
func contexts(p2, p1 uint64) [ngramOrder + 1]uint64 {
	return [ngramOrder + 1]uint64{
		ctxSeeds[0],
		ctxStep(ctxSeeds[1], p1),
		ctxStep(ctxStep(ctxSeeds[2], p2), p1),
	}
}

const ctxSeed = 0x94d049bb133111eb

// ctxSeeds seeds each order's context hash: (order+1) * ctxSeed, mod 2^64.
var ctxSeeds = func() (s [ngramOrder + 1]uint64) {
	for o := range s {
		s[o] = uint64(o+1) * uint64(ctxSeed)
	}
	return s
}()

func ctxStep(h, tok uint64) uint64 {
	h = (h ^ tok) * 0x100000001b3
	return h ^ h>>29
}

func (m *ngramModel) update(toks []uint64, d int32) { m.updateExcept(toks, nil, d) }

// replace moves the model from counting old to counting new, as
// update(old, -1) then update(new, 1) would, but skips the n-grams the two
// records share at the same position: their counts would go down and up by
// the same amount. When the two are of one template only the grams around
// its variable tokens are touched; on the loghub samples, where the record
// 512 back is often of another template, it skips a third of the updates.
func (m *ngramModel) replace(old, new []uint64) {
	m.updateExcept(old, new, -1)
	m.updateExcept(new, old, 1)
}

// updateExcept adds d for each n-gram of toks that other does not have at
// the same position.
func (m *ngramModel) updateExcept(toks, other []uint64, d int32) {
	run := 0                                     // positions up to i where toks and other agree, in a row
	p2, p1 := uint64(bosToken), uint64(bosToken) // the two tokens before i
	for i, tok := range toks {
		// Without branches (eqInt and ltInt compile to flag sets): whether a
		// token matches the other record's is data, and a mispredicted
		// jump per position cost more than the updates it guarded.
		same := 0
		if i < len(other) {
			same = eqInt(other[i], tok)
		}
		run = (run + 1) * same
		// The order-o gram at i spans positions max(0, i-o)..i (the
		// positions before the record's start are the same padding): it is
		// shared when run > min(o, i), which holds for a prefix of the
		// orders, so the first unshared order is how many of them hold.
		first := ltInt(0, run) + ltInt(min(1, i), run) + ltInt(min(2, i), run)
		if first <= ngramOrder {
			m.addGrams(contexts(p2, p1), tok, first, d)
		}
		p2, p1 = p1, tok
	}
}

// eqInt is 1 if a == b, else 0.
func eqInt(a, b uint64) int {
	var r int
	if a == b {
		r = 1
	}
	return r
}

// ltInt is 1 if a < b, else 0.
func ltInt(a, b int) int {
	var r int
	if a < b {
		r = 1
	}
	return r
}

// addGrams adds d to the count of token tok in its contexts of orders
// first..ngramOrder, and keeps each context's total and distinct counts.
// (One call per position rather than per n-gram, and the count tables'
// common case inline: this runs for every position of two records per
// record scored. Straight-line code for ngramOrder 2, as contexts: a loop
// over the orders from a first that is data mispredicted its exit.)
func (m *ngramModel) addGrams(ctxs [ngramOrder + 1]uint64, tok uint64, first int, d int32) {
	tk := tok * 0x2127599bf4325c37
	if first == 0 {
		// The order-0 context is the same for every token: its totals are
		// m.order0, kept as countTable.add64 would (a value that is no
		// longer positive is gone, 0).
		key := mixKey(ctxs[0] ^ tk)
		v, ok := m.t.addHome(key, int64(d))
		if !ok {
			v = m.t.add64(key, int64(d))
		}
		m.order0 = uint64(max(int64(m.order0)+contextDelta(uint32(v), d), 0))
	}
	if first <= 1 {
		key := mixKey(ctxs[1] ^ tk)
		v, ok := m.t.addHome(key, int64(d))
		if !ok {
			v = m.t.add64(key, int64(d))
		}
		delta := contextDelta(uint32(v), d)
		key = mixKey(ctxs[1] ^ saltTotal)
		if _, ok := m.ctx.addHome(key, delta); !ok {
			m.ctx.add64(key, delta)
		}
	}
	key := mixKey(ctxs[2] ^ tk)
	v, ok := m.t.addHome(key, int64(d))
	if !ok {
		v = m.t.add64(key, int64(d))
	}
	delta := contextDelta(uint32(v), d)
	key = mixKey(ctxs[2] ^ saltTotal)
	if _, ok := m.ctx.addHome(key, delta); !ok {
		m.ctx.add64(key, delta)
	}
}

// contextDelta is the change of a context's packed total and distinct
// count when d was added to a token's count there, making it n.
func contextDelta(n uint32, d int32) int64 {
	delta := int64(d) // total
	switch {
	case d > 0 && n == uint32(d): // first occurrence in this context
		delta += 1 << 32
	case d < 0 && n == 0: // last occurrence left
		delta -= 1 << 32
	}
	return delta
}

// cost returns the code length of toks in bits, and the largest single
// token cost; spans locate each token in text, to spell it out if it was
// never seen. Each token's cost is appended to per.
func (m *ngramModel) cost(toks []uint64, spans []tokenSpan, text []byte, per []float32) (total, peak float64, perOut []float32) {
	p2, p1 := uint64(bosToken), uint64(bosToken) // the two tokens before i
	for i, tok := range toks {
		bits := 0.0
		found := false
		ctxs := contexts(p2, p1)
		p2, p1 = p1, tok
		for o := ngramOrder; o >= 0; o-- {
			ctx := ctxs[o]
			packed := m.order0 // the context's packed total and distinct count
			if o > 0 {
				packed = m.ctx.get64(mixKey(ctx ^ saltTotal))
			}
			if packed == 0 {
				continue // context never seen: nothing to escape from
			}
			tot, dist := uint32(packed), uint32(packed>>32)
			denom := log2u(tot + dist)
			if c := m.t.get(mixKey(ctx ^ tok*0x2127599bf4325c37)); c > 0 {
				bits += denom - log2u(c)
				found = true
				break
			}
			bits += denom - log2u(dist)
		}
		if !found {
			bits += float64(spellCost(text[spans[i].from:spans[i].to]))
		}
		total += bits
		if bits > peak {
			peak = bits
		}
		per = append(per, float32(bits))
	}
	return total, peak, per
}

// tokenize splits canonical text into tokens: runs of letters, digits and
// _ - . ; mask tokens such as <num>; and single punctuation characters.
// Spaces separate tokens and are not tokens themselves. It appends hashes
// to toks and where each token is in s to spans, at most maxModelTokens of
// them, and returns the record's kind (see kindStep).
func tokenize(toks []uint64, spans []tokenSpan, s []byte) ([]uint64, []tokenSpan, uint64) {
	kind := uint64(kindSeed)
	i := 0
	for i < len(s) && len(toks) < maxModelTokens {
		c := s[i]
		if c == ' ' {
			i++
			continue
		}
		// A token's hash is FNV-1a of its bytes; a word's is computed in the
		// scan that finds its end.
		const fnvOffset, fnvPrime = 0xcbf29ce484222325, 0x100000001b3
		h := uint64(fnvOffset)
		j := i + 1
		wild := false // a value (see kindStep): a word with a digit, or a mask
		switch {
		case isWordByte(c):
			cls := byteClass[c]
			h = (h ^ uint64(c)) * fnvPrime
			for ; j < len(s); j++ {
				b := s[j]
				x := byteClass[b]
				if x&clsWord == 0 {
					break
				}
				cls |= x
				h = (h ^ uint64(b)) * fnvPrime
			}
			wild = cls&clsDigit != 0 || (j-i == 3 && calendarWord(s[i], s[i+1], s[i+2]))
		case c == '<':
			k := i + 1
			for k < len(s) && k-i < 8 && isAlpha(s[k]) {
				k++
			}
			if k < len(s) && s[k] == '>' && k > i+1 {
				j = k + 1
				wild = true
			}
			fallthrough
		default:
			for _, b := range s[i:j] {
				h = (h ^ uint64(b)) * fnvPrime
			}
		}
		toks = append(toks, h|1)
		spans = append(spans, tokenSpan{uint32(i), uint32(j)})
		kind = kindStep(kind, h|1, wild)
		i = j
	}
	return toks, spans, kind | 1
}

// tokenSpan is where a token is in the text it was cut from.
type tokenSpan struct{ from, to uint32 }

// spellCost is the cost of spelling out a never-seen token w: computed
// only for tokens the model has not seen (most tokens of most records
// are known, and this serial float sum was a tenth of tokenizing).
func spellCost(w []byte) float32 {
	sp := float32(spellEndBits)
	for _, b := range w[:min(len(w), maxSpellBytes)] {
		sp += spellBits[b]
	}
	return sp
}

// spellBits is the spelling cost of each byte by its character class.
var spellBits = func() (t [256]float32) {
	for c := range t {
		switch b := byte(c); {
		case isDigit(b):
			t[c] = spellDigitBits
		case isAlpha(b):
			t[c] = spellAlphaBits
		default:
			t[c] = spellOtherBits
		}
	}
	return t
}()

// log2Table holds log2 of small integers: counts are integers, and a table
// lookup is several times cheaper than math.Log2 on the per-token path.
var log2Table = func() (t [4096]float64) {
	for i := 1; i < len(t); i++ {
		t[i] = math.Log2(float64(i))
	}
	return t
}()

func log2u(x uint32) float64 {
	if x < uint32(len(log2Table)) {
		return log2Table[x]
	}
	return math.Log2(float64(x))
}
