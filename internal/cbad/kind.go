package cbad

import "strconv"

// A record's kind is its template: the hash of its canonical tokens (see
// tokenize) with every mask token and every token that still holds a digit
// replaced by one wildcard, so "took 12 ms" and "took 7 ms", or node R0-M0 and R0-M1 after
// digit folding, are one kind. Canonicalization already masks ids, numbers
// of 4+ digits, timestamps, IPs and the like. The hash depends only on the
// canonical text (no seed, no stream key), so the same shape gets the same
// kind across restarts, collectors and streams: the store can group "40
// copies of one line" into one row, and the incident layer can follow one
// kind across services.

const (
	kindSeed     = 0x6b696e64cbf29ce4
	kindWildcard = 0x2a2a2a2a5bd1e995
)

// kindStep mixes one token (its hash h) into the kind hash; wild says the
// token is a value: it holds a digit, or it is a mask (<num>, <ip>, ...).
// (tokenize knows which while it cuts the token: only a word can hold a
// digit, and only a '<' that opens a mask makes a token of 3 or more bytes
// between '<' and '>'.)
func kindStep(kind, h uint64, wild bool) uint64 {
	if wild {
		h = kindWildcard
	}
	kind = (kind ^ h) * 0x100000001b3
	return kind ^ kind>>31
}

// FormatKind renders a kind as the 16 hex digits written in driftlock.kind.
func FormatKind(k uint64) string {
	var b [16]byte
	s := strconv.AppendUint(b[:0], k, 16)
	out := make([]byte, 16)
	for i := range out {
		out[i] = '0'
	}
	copy(out[16-len(s):], s)
	return string(out)
}

// KindOf returns the kind of a record's text exactly as Score computes it
// (canonicalized, tokenized): for tools that group records by kind.
func KindOf(data []byte) uint64 {
	canon, _ := Canonicalize(nil, nil, data)
	_, _, k := tokenize(nil, nil, canon)
	return k
}

// calendarWord reports whether a three-letter word is a capitalized
// month or weekday abbreviation (Jun, Fri): the words of a written-out
// date ("at Fri Jun 17 07:07:00 2005", a syslog line's "Jul  1"), which
// are values like the digits beside them. Without it a record's kind
// changed with the day of the week and the month, and a kind's history
// (its rate, its habit of bursting) restarted every month.
func calendarWord(a, b, c byte) bool {
	if a < 'A' || a > 'Z' {
		return false
	}
	switch uint32(a)<<16 | uint32(b)<<8 | uint32(c) {
	case 'J'<<16 | 'a'<<8 | 'n', 'F'<<16 | 'e'<<8 | 'b', 'M'<<16 | 'a'<<8 | 'r',
		'A'<<16 | 'p'<<8 | 'r', 'M'<<16 | 'a'<<8 | 'y', 'J'<<16 | 'u'<<8 | 'n',
		'J'<<16 | 'u'<<8 | 'l', 'A'<<16 | 'u'<<8 | 'g', 'S'<<16 | 'e'<<8 | 'p',
		'O'<<16 | 'c'<<8 | 't', 'N'<<16 | 'o'<<8 | 'v', 'D'<<16 | 'e'<<8 | 'c',
		'M'<<16 | 'o'<<8 | 'n', 'T'<<16 | 'u'<<8 | 'e', 'W'<<16 | 'e'<<8 | 'd',
		'T'<<16 | 'h'<<8 | 'u', 'F'<<16 | 'r'<<8 | 'i', 'S'<<16 | 'a'<<8 | 't',
		'S'<<16 | 'u'<<8 | 'n':
		return true
	}
	return false
}
