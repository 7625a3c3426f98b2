package cbad

// countTable is an open-addressing hash table from 64-bit keys to 64-bit
// values, with linear probing and backward-shift deletion (no tombstones),
// so a stream whose baseline slides forever keeps a stable footprint and
// never allocates once it has grown to its working size. Keys and values
// sit side by side so a probe touches one cache line. Key 0 marks an empty
// slot; callers never use 0 as a key (see mixKey).
type countTable struct {
	e    []entry
	n    int
	mask uint64
}

type entry struct {
	k, v uint64
}

const minTableSize = 64

func (t *countTable) init(size int) {
	c := minTableSize
	for c < size {
		c <<= 1
	}
	t.e = make([]entry, c)
	t.mask = uint64(c - 1)
	t.n = 0
}

func (t *countTable) get(k uint64) uint32 { return uint32(t.get64(k)) }

func (t *countTable) get64(k uint64) uint64 {
	e, mask := t.e, t.mask
	if e == nil {
		return 0
	}
	for i := k & mask; ; i = (i + 1) & mask {
		x := &e[i]
		switch x.k {
		case k:
			return x.v
		case 0:
			return 0
		}
	}
}

// addHome is add64's common case, small enough to be inlined into the
// n-gram update (a hundred and more calls per record): a key found in its
// home slot whose value stays positive. ok is false when the caller must
// call add64.
func (t *countTable) addHome(k uint64, d int64) (v uint64, ok bool) {
	if i := k & t.mask; i < uint64(len(t.e)) {
		x := &t.e[i]
		if nv := int64(x.v) + d; x.k == k && nv > 0 {
			x.v = uint64(nv)
			return uint64(nv), true
		}
	}
	return 0, false
}

// add64 adds d to k's 64-bit value (callers pack two counters in it); a
// value that reaches zero is deleted. It returns the new value.
func (t *countTable) add64(k uint64, d int64) uint64 {
	if t.e == nil {
		t.init(minTableSize)
	}
	// The probe runs on locals: stores into e cannot change them, so the
	// compiler keeps them in registers instead of reloading t's fields.
	e, mask := t.e, t.mask
	i := k & mask
	for ; ; i = (i + 1) & mask {
		x := &e[i]
		if x.k == k {
			v := int64(x.v) + d
			if v > 0 {
				x.v = uint64(v)
				return uint64(v)
			}
			t.delete(i)
			return 0
		}
		if x.k == 0 {
			if d <= 0 {
				return 0
			}
			*x = entry{k, uint64(d)}
			t.n++
			if uint64(t.n)*4 > (mask+1)*3 { // load > 3/4: grow
				t.grow()
			}
			return uint64(d)
		}
	}
}

// delete removes slot i and shifts the following cluster back so that
// every key stays reachable from its home slot.
func (t *countTable) delete(i uint64) {
	t.n--
	for {
		t.e[i] = entry{}
		j := i
		for {
			j = (j + 1) & t.mask
			k := t.e[j].k
			if k == 0 {
				return
			}
			home := k & t.mask
			// Move k back to i if its home is not in (i, j] cyclically.
			if (i <= j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
				t.e[i] = t.e[j]
				i = j
				break
			}
		}
	}
}

func (t *countTable) grow() {
	old := t.e
	t.init(len(old) * 2)
	for _, x := range old {
		if x.k != 0 {
			t.insertFresh(x)
		}
	}
}

func (t *countTable) insertFresh(x entry) {
	for i := x.k & t.mask; ; i = (i + 1) & t.mask {
		if t.e[i].k == 0 {
			t.e[i] = x
			t.n++
			return
		}
	}
}

// bytes is the table's memory footprint.
func (t *countTable) bytes() int { return len(t.e) * 16 }

// mixKey scrambles a hash so that low bits (used for the slot) are well
// spread, and never returns 0 (the empty-slot marker). Its inputs are
// already hashes (ctxHash mixes each token in), so one multiply and one
// xor-shift spread them enough; both steps are bijections, so two inputs
// share a key only if they are equal (or map to 0 and 1): the counts are
// exactly those of a full finalizer, at a third of its cost on the
// per-token path.
func mixKey(x uint64) uint64 {
	x *= 0x9e3779b97f4a7c15
	x ^= x >> 32
	if x == 0 {
		x = 1
	}
	return x
}
