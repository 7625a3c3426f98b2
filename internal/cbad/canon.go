package cbad

// Masks written by Canonicalize in place of volatile tokens.
const (
	MaskNum   = "<num>"
	MaskTime  = "<ts>"
	MaskHex   = "<hex>"
	MaskUUID  = "<uuid>"
	MaskIP    = "<ip>"
	MaskEmail = "<email>"
	MaskB64   = "<b64>"
	MaskValue = "<v>"
)

// Canonicalize appends the canonical form of src to dst: secrets redacted
// (see Redact), then volatile tokens masked — timestamps, numbers with 4 or
// more digits, hex ids and hashes, UUIDs, IPv4 addresses, emails, URL query
// values and base64 blobs — and digit runs inside identifiers folded to one
// '0' (R02-M1 and R17-M0 are the same kind of node name). Whitespace runs
// become one space. The baseline then learns a stream's structure rather
// than its ever-changing values. scratch is a reusable buffer (may be nil);
// the result is returned together with the grown scratch so callers can
// reuse both without allocating.
func Canonicalize(dst, scratch, src []byte) (out, scratchOut []byte) {
	scratch = Redact(scratch[:0], src)
	s := scratch
	i := 0
	for i < len(s) {
		if isSpace(s[i]) {
			for i < len(s) && isSpace(s[i]) {
				i++
			}
			if len(dst) > 0 && dst[len(dst)-1] != ' ' {
				dst = append(dst, ' ')
			}
			continue
		}
		// One scan finds the word's end and which classes of bytes it holds.
		j := i
		var cls uint8          // classes some byte of the word has
		all := uint8(clsDigit) // classes every byte has (of interest: digit)
		for j < len(s) {
			c := byteClass[s[j]]
			if c&clsSpace != 0 {
				break
			}
			cls |= c
			all &= c
			j++
		}
		switch {
		case cls&(clsMaskable|clsQuery) == 0:
			// No digit, '@' or '?': no mask applies to any part of the
			// word, so it is copied as it is (most words of most records).
			dst = append(dst, s[i:j]...)
		case all != 0:
			// Only digits (times and counts: 081109 203615 148): a number
			// of 4 digits or more, as canonPiece would find after the
			// whole-word tests, which digits alone never pass.
			if j-i >= 4 {
				dst = append(dst, MaskNum...)
			} else {
				dst = append(dst, s[i:j]...)
			}
		default:
			dst = canonWord(dst, s[i:j], cls)
		}
		i = j
	}
	if n := len(dst); n > 0 && dst[n-1] == ' ' {
		dst = dst[:n-1]
	}
	return dst, scratch
}

// canonWord masks one whitespace-delimited word; cls is the union of its
// bytes' classes.
func canonWord(dst, w []byte, cls uint8) []byte {
	// Peel wrapping punctuation so that "[10.0.0.1]," is seen as an IP.
	a, b := 0, len(w)
	for a < b && isWrap(w[a]) {
		a++
	}
	for b > a && isWrap(w[b-1]) {
		b--
	}
	core := w[a:b]
	// Wrapping punctuation holds no digit or '@': the core holds one iff
	// the word does.
	coreTested := cls&clsMaskable != 0 && len(core) > 0
	if coreTested {
		if m := wholeMask(core, cls&clsAt != 0); m != "" {
			dst = append(dst, w[:a]...)
			dst = append(dst, m...)
			return append(dst, w[b:]...)
		}
	}
	if !coreTested {
		a, b = -1, -1 // no piece is known not to be a whole mask
	}
	return canonPieces(dst, w, a, b)
}

// hasDigitOrAt reports whether b could hold a volatile value at all:
// every whole-word mask needs a digit or an '@'. Plain words skip the
// pattern tests, which keeps canonicalization cheap on typical text.
func hasDigitOrAt(b []byte) bool {
	for _, c := range b {
		if byteClass[c]&clsMaskable != 0 {
			return true
		}
	}
	return false
}

// wholeMask classifies a word that is one volatile value as a whole; at
// says whether c holds an '@' (an email needs one).
func wholeMask(c []byte, at bool) string {
	switch {
	case len(c) == 36 && isUUID(c):
		return MaskUUID
	case isIPv4(c):
		return MaskIP
	case at && isEmail(c):
		return MaskEmail
	case isTimestamp(c):
		return MaskTime
	}
	return ""
}

// canonPieces masks the pieces of a word split at punctuation, and values of
// URL query strings. w[a:b] is a piece already known to be no whole mask
// (the word's core, tested by canonWord): a word without inner punctuation
// (12345, blk_-1608999687) is then not tested twice.
func canonPieces(dst, w []byte, a, b int) []byte {
	inQuery := false
	afterEq := false
	i := 0
	for i < len(w) {
		c := w[i]
		if isPieceDelim(c) {
			if c == '?' && i > 0 {
				inQuery = true
			}
			afterEq = c == '='
			dst = append(dst, c)
			i++
			continue
		}
		// A date or time spans delimiters (22:19:57, 2017/05/16): mask the
		// whole run before splitting it into pieces.
		if isDigit(c) && (i == 0 || !isAlnum(w[i-1])) {
			if end := timeRun(w, i); end > i {
				dst = append(dst, MaskTime...)
				afterEq = false
				i = end
				continue
			}
		}
		j := i
		for j < len(w) && !isPieceDelim(w[j]) {
			j++
		}
		p := w[i:j]
		if inQuery && afterEq {
			dst = append(dst, MaskValue...)
		} else {
			dst = canonPiece(dst, p, i == a && j == b)
		}
		afterEq = false
		i = j
	}
	return dst
}

// canonPiece masks one punctuation-free piece of a word; notWhole says
// wholeMask(p) is already known to find nothing.
func canonPiece(dst, p []byte, notWhole bool) []byte {
	if !hasDigitOrAt(p) {
		return append(dst, p...) // a plain word: nothing to mask
	}
	if !notWhole {
		// '@' splits pieces, so a piece holds none: no email.
		if m := wholeMask(p, false); m != "" {
			return append(dst, m...)
		}
	}
	var digits, letters, hexLetters, upper, lower, other int
	// Counted without branches, by adding up each byte's packed counts
	// (pieceCounts), 65,535 bytes at most at a time so that no 16-bit
	// field can overflow: a switch on each byte's class mispredicted on
	// the mixed pieces this runs on (node-246, 0x1f, R02-M1).
	for rest := p; len(rest) > 0; {
		chunk := rest[:min(len(rest), 0xffff)]
		rest = rest[len(chunk):]
		var n uint64
		for _, c := range chunk {
			n += pieceCounts[c]
		}
		d, lo, up := int(n&0xffff), int(n>>16&0xffff), int(n>>32&0xffff)
		digits += d
		lower += lo
		upper += up
		hexLetters += int(n >> 48)
		other += len(chunk) - d - lo - up
	}
	letters = upper + lower
	switch {
	case digits >= 4 && letters == 0:
		// 12345, 3.14159, -1608999687: a number (a date such as
		// 2005.06.03 is a timestamp, masked by wholeMask above).
		return append(dst, MaskNum...)
	case letters == 0 && isDecimal(p):
		// 6.20, 0.11: a measurement whatever its number of digits.
		return append(dst, MaskNum...)
	case len(p) > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && isHexRun(p[2:]):
		return append(dst, MaskHex...)
	case len(p) >= 8 && digits > 0 && letters == hexLetters && other == 0:
		return append(dst, MaskHex...)
	case len(p) >= 20 && digits > 0 && upper > 0 && lower > 0 && isBase64Run(p):
		return append(dst, MaskB64...)
	case digits > 0 && letters > 0:
		// An identifier with numbers in it (node-246, R02-M1, bglio78): fold
		// each digit run to a single 0 so its shape, not its value, is learned.
		for k := 0; k < len(p); k++ {
			if isDigit(p[k]) {
				if k == 0 || !isDigit(p[k-1]) {
					dst = append(dst, '0')
				}
				continue
			}
			dst = append(dst, p[k])
		}
		return dst
	}
	return append(dst, p...)
}

// pieceCounts packs, 16 bits a field, what canonPiece counts of a byte:
// whether it is a digit, a lower-case letter, an upper-case letter, and a
// hex letter (a-f, A-F). Any other byte is counted as other.
var pieceCounts = func() (t [256]uint64) {
	for c := range t {
		b := byte(c)
		switch {
		case isDigit(b):
			t[c] = 1
		case b >= 'a' && b <= 'z':
			t[c] = 1 << 16
		case b >= 'A' && b <= 'Z':
			t[c] = 1 << 32
		}
		if (b|0x20) >= 'a' && (b|0x20) <= 'f' {
			t[c] |= 1 << 48
		}
	}
	return t
}()

func isHexRun(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isDigit(c) && !((c|0x20) >= 'a' && (c|0x20) <= 'f') {
			return false
		}
	}
	return true
}

func isBase64Run(b []byte) bool {
	for _, c := range b {
		if !isAlnum(c) && c != '+' && c != '/' && c != '=' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// isUUID matches 8-4-4-4-12 hex digits.
func isUUID(b []byte) bool {
	if len(b) != 36 {
		return false
	}
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isDigit(c) && !((c|0x20) >= 'a' && (c|0x20) <= 'f') {
				return false
			}
		}
	}
	return true
}

// isIPv4 matches a.b.c.d with an optional :port.
func isIPv4(b []byte) bool {
	parts, n, val := 0, 0, 0
	i := 0
	for ; i < len(b); i++ {
		c := b[i]
		if isDigit(c) {
			n++
			val = val*10 + int(c-'0')
			if n > 3 || val > 255 {
				return false
			}
			continue
		}
		if c == '.' && n > 0 && parts < 3 {
			parts++
			n, val = 0, 0
			continue
		}
		break
	}
	if parts != 3 || n == 0 {
		return false
	}
	if i == len(b) {
		return true
	}
	if b[i] != ':' || i+1 == len(b) {
		return false
	}
	for _, c := range b[i+1:] {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// isEmail matches local@domain.tld loosely.
func isEmail(b []byte) bool {
	if len(b) < 5 || !containsByte(b, '@') {
		return false
	}
	at := -1
	for i, c := range b {
		if c == '@' {
			if at >= 0 {
				return false
			}
			at = i
		} else if !isAlnum(c) && c != '.' && c != '_' && c != '-' && c != '+' {
			return false
		}
	}
	if at <= 0 || at >= len(b)-3 {
		return false
	}
	for _, c := range b[at+1:] {
		if c == '.' {
			return true
		}
	}
	return false
}

// isTimestamp matches dates and times written with digits and separators:
// 2005-06-03-15.42.50.675872, 15:42:50,978, 2017-05-16T00:00:00.008Z,
// 20171223-22:15:29:606, 17/06/09. It needs at least 4 digits and 2
// separators so that plain decimals are left to the number rule.
func isTimestamp(b []byte) bool {
	digits, seps := 0, 0
	for i, c := range b {
		switch {
		case isDigit(c):
			digits++
		case c == '-' || c == ':' || c == '.' || c == '/' || c == ',' || c == '_' || c == '+':
			if i == 0 || !isDigit(b[i-1]) {
				return false
			}
			seps++
		case (c == 'T' || c == 'Z' || c == 'z') && i > 0 && isDigit(b[i-1]):
			seps++
		default:
			return false
		}
	}
	return digits >= 4 && seps >= 2
}

// timeRun returns the end of a timestamp-shaped run starting at i (digits
// joined by - : . / , +), or i when the run is not a timestamp.
func timeRun(w []byte, i int) int {
	j := i
	for j < len(w) {
		c := w[j]
		if isDigit(c) {
			j++
			continue
		}
		if (c == '-' || c == ':' || c == '.' || c == '/' || c == ',' || c == '+') && j+1 < len(w) && isDigit(w[j+1]) {
			j++
			continue
		}
		break
	}
	if j < len(w) && isAlpha(w[j]) {
		return i // part of an identifier (12:34abc)
	}
	if isTimestamp(w[i:j]) && hasTimeSep(w[i:j]) {
		return j
	}
	return i
}

// hasTimeSep reports a ':' or '/' or two '-', which plain decimals lack.
func hasTimeSep(b []byte) bool {
	dashes := 0
	for _, c := range b {
		switch c {
		case ':', '/':
			return true
		case '-':
			dashes++
		}
	}
	return dashes >= 2
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// isDecimal matches digits '.' digits (an optional leading '-').
func isDecimal(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	dot := -1
	for i, c := range b {
		if c == '.' {
			if dot >= 0 {
				return false
			}
			dot = i
		} else if !isDigit(c) {
			return false
		}
	}
	return dot > 0 && dot < len(b)-1
}
