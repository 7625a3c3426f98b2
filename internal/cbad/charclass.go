package cbad

// Byte classes for the scanners (canonicalization, tokenization, redaction),
// looked up in one table: these tests run for every byte of every record.
const (
	clsSpace = 1 << iota
	clsDigit
	clsAlpha
	clsPieceDelim // splits a word into pieces; kept in the output
	clsWrap       // punctuation that commonly wraps a token: "x", [x], x,
	clsWord       // continues a token: letters, digits, _ - . and UTF-8 bytes
	clsAt         // '@', which an email needs
	clsQuery      // '?', which starts a query string (its values are masked)
)

// clsMaskable marks the bytes every mask needs one of: a digit or '@'. A
// word without them or a '?' is left as it is by Canonicalize.
const clsMaskable = clsDigit | clsAt

var byteClass = func() (t [256]uint8) {
	for _, c := range " \t\n\r\f\v" {
		t[c] |= clsSpace
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= clsDigit | clsWord
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= clsAlpha | clsWord
		t[c-'a'+'A'] |= clsAlpha | clsWord
	}
	for _, c := range "=:,;()[]{}<>\"'|&?/\\@#`*+!$%~^" {
		t[c] |= clsPieceDelim
	}
	for _, c := range "\"'()[]{}<>,;.`" {
		t[c] |= clsWrap
	}
	for _, c := range "_-." {
		t[c] |= clsWord
	}
	t['@'] |= clsAt
	t['?'] |= clsQuery
	for c := 0x80; c < 0x100; c++ {
		t[c] |= clsWord
	}
	return t
}()

func isSpace(c byte) bool      { return byteClass[c]&clsSpace != 0 }
func isDigit(c byte) bool      { return byteClass[c]&clsDigit != 0 }
func isAlpha(c byte) bool      { return byteClass[c]&clsAlpha != 0 }
func isAlnum(c byte) bool      { return byteClass[c]&(clsDigit|clsAlpha) != 0 }
func isPieceDelim(c byte) bool { return byteClass[c]&clsPieceDelim != 0 }
func isWrap(c byte) bool       { return byteClass[c]&clsWrap != 0 }
func isWordByte(c byte) bool   { return byteClass[c]&clsWord != 0 }
