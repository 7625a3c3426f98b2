package cbad

// countTable is an open-addressing hash table from 64-bit keys to counts,
// with linear probing and backward-shift deletion (no tombstones), so a
// stream whose baseline slides forever keeps a stable footprint and never
// allocates once it has grown to its working size. Key 0 marks an empty
// slot; callers never use 0 as a key (see mixKey).
type countTable struct {
	keys []uint64
	vals []uint32
	n    int
	mask uint64
}

const minTableSize = 64

func (t *countTable) init(size int) {
	c := minTableSize
	for c < size {
		c <<= 1
	}
	t.keys = make([]uint64, c)
	t.vals = make([]uint32, c)
	t.mask = uint64(c - 1)
	t.n = 0
}

func (t *countTable) get(k uint64) uint32 {
	if t.keys == nil {
		return 0
	}
	for i := k & t.mask; ; i = (i + 1) & t.mask {
		switch t.keys[i] {
		case k:
			return t.vals[i]
		case 0:
			return 0
		}
	}
}

// add adds d (which may be negative) to k's count; a count that reaches
// zero is deleted. It returns the new count.
func (t *countTable) add(k uint64, d int32) uint32 {
	if t.keys == nil {
		t.init(minTableSize)
	}
	i := k & t.mask
	for ; ; i = (i + 1) & t.mask {
		if t.keys[i] == k {
			break
		}
		if t.keys[i] == 0 {
			if d <= 0 {
				return 0
			}
			t.keys[i] = k
			t.vals[i] = uint32(d)
			t.n++
			if uint64(t.n)*4 > (t.mask+1)*3 { // load > 3/4: grow
				t.grow()
			}
			return uint32(d)
		}
	}
	v := int64(t.vals[i]) + int64(d)
	if v > 0 {
		t.vals[i] = uint32(v)
		return uint32(v)
	}
	t.delete(i)
	return 0
}

// delete removes slot i and shifts the following cluster back so that
// every key stays reachable from its home slot.
func (t *countTable) delete(i uint64) {
	t.n--
	for {
		t.keys[i] = 0
		t.vals[i] = 0
		j := i
		for {
			j = (j + 1) & t.mask
			k := t.keys[j]
			if k == 0 {
				return
			}
			home := k & t.mask
			// Move k back to i if its home is not in (i, j] cyclically.
			if (i <= j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
				t.keys[i] = k
				t.vals[i] = t.vals[j]
				i = j
				break
			}
		}
	}
}

func (t *countTable) grow() {
	oldK, oldV := t.keys, t.vals
	t.init(len(oldK) * 2)
	for i, k := range oldK {
		if k != 0 {
			t.insertFresh(k, oldV[i])
		}
	}
}

func (t *countTable) insertFresh(k uint64, v uint32) {
	for i := k & t.mask; ; i = (i + 1) & t.mask {
		if t.keys[i] == 0 {
			t.keys[i] = k
			t.vals[i] = v
			t.n++
			return
		}
	}
}

// bytes is the table's memory footprint.
func (t *countTable) bytes() int { return len(t.keys)*8 + len(t.vals)*4 }

// mixKey scrambles a hash so that low bits (used for the slot) are well
// spread, and never returns 0 (the empty-slot marker).
func mixKey(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	if x == 0 {
		x = 1
	}
	return x
}
