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

// ctxHashes returns the context hash of each order for position i of toks.
func ctxHash(toks []uint64, i, order int) uint64 {
	h := uint64(order+1) * 0x94d049bb133111eb
	for k := i - order; k < i; k++ {
		var tk uint64 = bosToken
		if k >= 0 {
			tk = toks[k]
		}
		h = (h ^ tk) * 0x100000001b3
		h ^= h >> 29
	}
	return h
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
	run := 0 // positions up to i where toks and other agree, in a row
	for i, tok := range toks {
		if i < len(other) && other[i] == tok {
			run++
		} else {
			run = 0
		}
		for o := 0; o <= ngramOrder; o++ {
			// The order-o gram at i spans positions max(0, i-o)..i (the
			// positions before the record's start are the same padding).
			if run > min(o, i) {
				continue
			}
			m.addGram(ctxHash(toks, i, o), tok, o, d)
		}
	}
}

// addGram adds d to the count of token tok in the order-o context ctx,
// and keeps the context's total and distinct counts.
func (m *ngramModel) addGram(ctx, tok uint64, o int, d int32) {
	n := m.t.add(mixKey(ctx^tok*0x2127599bf4325c37), d)
	delta := int64(d) // total
	switch {
	case d > 0 && n == uint32(d): // first occurrence in this context
		delta += 1 << 32
	case d < 0 && n == 0: // last occurrence left
		delta -= 1 << 32
	}
	if o == 0 {
		// As countTable.add64 would: a value that is no longer positive is
		// gone (0).
		m.order0 = uint64(max(int64(m.order0)+delta, 0))
		return
	}
	m.ctx.add64(mixKey(ctx^saltTotal), delta)
}

// cost returns the code length of toks in bits, and the largest single
// token cost; spell gives each token's cost if it was never seen.
// Each token's cost is appended to per.
func (m *ngramModel) cost(toks []uint64, spell []float32, per []float32) (total, peak float64, perOut []float32) {
	for i, tok := range toks {
		bits := 0.0
		found := false
		for o := ngramOrder; o >= 0; o-- {
			ctx := ctxHash(toks, i, o)
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
			bits += float64(spell[i])
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
// to toks and their spelling costs to spell, at most maxModelTokens of them,
// and returns the record's kind (see kindOf).
func tokenize(toks []uint64, spell []float32, s []byte) ([]uint64, []float32, uint64) {
	kind := uint64(kindSeed)
	i := 0
	for i < len(s) && len(toks) < maxModelTokens {
		c := s[i]
		if c == ' ' {
			i++
			continue
		}
		j := i + 1
		digit := false // only a word token can hold a digit
		switch {
		case isWordByte(c):
			cls := byteClass[c]
			for ; j < len(s); j++ {
				x := byteClass[s[j]]
				if x&clsWord == 0 {
					break
				}
				cls |= x
			}
			digit = cls&clsDigit != 0
		case c == '<':
			k := i + 1
			for k < len(s) && k-i < 8 && isAlpha(s[k]) {
				k++
			}
			if k < len(s) && s[k] == '>' && k > i+1 {
				j = k + 1
			}
		}
		// One pass over the token's bytes: its FNV-1a hash and its spelling
		// cost (summed in the same order as always: the float32 sum is
		// part of the score).
		h := uint64(0xcbf29ce484222325)
		sp := float32(spellEndBits)
		for k, b := range s[i:j] {
			h ^= uint64(b)
			h *= 0x100000001b3
			if k < maxSpellBytes {
				sp += spellBits[b]
			}
		}
		toks = append(toks, h|1)
		spell = append(spell, sp)
		kind = kindStep(kind, h|1, s[i:j], digit)
		i = j
	}
	return toks, spell, kind | 1
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
