package cbad

// RedactedMarker replaces every secret that Redact finds.
const RedactedMarker = "<redacted>"

// secretKeys are key names whose values are secrets, matched
// case-insensitively as a suffix of the key (so db_password and X-Api-Key
// match too).
var secretKeys = []string{
	"password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "api-key",
	"access_key", "accesskey", "private_key", "credential", "credentials", "authorization",
	"session_id", "sessionid", "cookie",
}

// Redact appends src to dst with secrets replaced by RedactedMarker:
// values of secret-looking keys (password=..., "token": "...", api_key: ...),
// the credentials of Authorization headers (Bearer/Basic/...), and card
// numbers (13-19 digits, optionally grouped by spaces or dashes, passing the
// Luhn check). It is applied before anything is compressed, checkpointed or
// stored, so secrets never reach the baseline or the anomaly store.
// It allocates only when dst must grow.
func Redact(dst, src []byte) []byte {
	from := 0 // src[from:i] is copied unchanged when the next secret (or the end) comes
	i := 0
	for i < len(src) {
		// Only a separator or a digit can start a secret: skip the rest in
		// one scan and copy it in one append.
		for i < len(src) && !redactTrigger[src[i]] {
			i++
		}
		if i == len(src) {
			break
		}
		c := src[i]
		switch {
		case c == '=' || c == ':':
			keyEnd := trimKeyEnd(src, i)
			if keyEnd == 0 || !isSecretKey(src, keyEnd) {
				i++
				continue
			}
			// Keep the separator, quoting and one optional space; replace
			// the value.
			j := i + 1
			for j < len(src) && (src[j] == ' ' || src[j] == '"' || src[j] == '\'') {
				j++
			}
			end := valueEnd(src, j)
			// "Authorization: Bearer xyz": the scheme is not secret, the credential is.
			if end-j >= 5 && isAuthScheme(src[j:end]) {
				j = end
				for j < len(src) && src[j] == ' ' {
					j++
				}
				end = valueEnd(src, j)
			}
			dst = append(dst, src[from:j]...)
			if end > j {
				dst = append(dst, RedactedMarker...)
			}
			i, from = end, end
		default: // a digit
			if i == 0 || !isIDByte(src[i-1]) { // it may start a card number
				if end, ok := cardNumber(src, i); ok {
					dst = append(dst, src[from:i]...)
					dst = append(dst, "<card>"...)
					i, from = end, end
					continue
				}
			}
			// No card starts inside an identifier or a digit run, and such
			// a run holds no '=' or ':': skip it at once rather than byte by
			// byte (timestamps and ids are most of a log line's digits).
			i++
			for i < len(src) && isIDByte(src[i]) {
				i++
			}
		}
	}
	return append(dst, src[from:]...)
}

// redactTrigger marks the bytes at which Redact must look closer.
var redactTrigger = func() (t [256]bool) {
	t['='], t[':'] = true, true
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	return t
}()

// RedactString is Redact for strings: it returns s itself (no copy) when
// there is nothing to redact.
func RedactString(s string) string {
	out := Redact(make([]byte, 0, len(s)), []byte(s))
	if string(out) == s {
		return s
	}
	return string(out)
}

// IsSecretKey reports whether a structured field named key holds a secret
// (password, token, api_key, authorization, ...: the same names Redact
// recognises in text), so that its value can be redacted as a whole.
func IsSecretKey(key string) bool {
	return len(key) > 0 && isSecretKey([]byte(key), len(key))
}

// trimKeyEnd returns the end of the key that precedes the separator at i,
// skipping a closing quote and spaces ("password" : x); 0 when there is none.
func trimKeyEnd(src []byte, i int) int {
	j := i
	for j > 0 && src[j-1] == ' ' {
		j--
	}
	if j > 0 && (src[j-1] == '"' || src[j-1] == '\'') {
		j--
	}
	return j
}

// isSecretKey reports whether the key ending at end names a secret: the
// run of key bytes ending there (at most 64 of them) ends in one of
// secretKeys, case-insensitively.
func isSecretKey(src []byte, end int) bool {
	if end == 0 {
		return false
	}
	// Only the names ending in the key's last letter can match; most keys
	// (kind=, status=, http.route=) are settled by a comparison or two.
	for _, k := range secretKeysByLast[src[end-1]|0x20] {
		if end >= len(k) && equalFoldASCII(src[end-len(k):end], k) {
			start := end - len(k)
			for start > 0 && isKeyByte(src[start-1]) {
				start--
			}
			return end-start <= 64
		}
	}
	return false
}

var secretKeysByLast = func() (t [256][]string) {
	for _, k := range secretKeys {
		t[k[len(k)-1]] = append(t[k[len(k)-1]], k)
	}
	return t
}()

func isKeyByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' || isAlnum(c)
}

// valueEnd returns where a secret value starting at j ends: at whitespace,
// a quote, or a separator of the enclosing structure.
func valueEnd(src []byte, j int) int {
	for j < len(src) {
		switch src[j] {
		case ' ', '\t', '\r', '\n', '"', '\'', ',', ';', '&', '}', ')', ']':
			return j
		}
		j++
	}
	return j
}

func isAuthScheme(v []byte) bool {
	for _, s := range [...]string{"Bearer", "Basic", "Digest", "Negotiate", "AWS4-HMAC-SHA256", "Token"} {
		if equalFoldASCII(v, s) {
			return true
		}
	}
	return false
}

// isIDByte reports bytes that join a digit run to an identifier (a UUID's
// dashes, a hash, a dotted version): a card number never starts after one.
// A table, as byteClass: Redact skips every digit run byte by byte with it,
// and the chain of comparisons mispredicted on mixed runs.
func isIDByte(c byte) bool { return idBytes[c] }

var idBytes = func() (t [256]bool) {
	for c := range t {
		b := byte(c)
		t[c] = isAlnum(b) || b == '-' || b == '_' || b == '.'
	}
	return t
}()

// cardNumber recognises a payment card number starting at i: 13 to 19
// digits, either in one run or grouped by single spaces or dashes into
// groups of at least 3 digits the first of which has 4 (every card layout
// in use starts so: 4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3), passing Luhn, and
// not glued to an identifier. (Without the first-group rule, log time
// stamps such as HDFS's "081109 210248 1138" passed for cards.)
func cardNumber(src []byte, i int) (end int, ok bool) {
	var digits [19]byte
	n := 0
	j := i
	last := i
	group := 0
	for j < len(src) {
		c := src[j]
		if isDigit(c) {
			if n == len(digits) {
				return 0, false
			}
			digits[n] = c - '0'
			n++
			group++
			j++
			last = j
			continue
		}
		if (c == ' ' || c == '-') && j+1 < len(src) && isDigit(src[j+1]) && n > 0 {
			if group < 3 || (n == group && group != 4) {
				return 0, false
			}
			group = 0
			j++
			continue
		}
		break
	}
	if n < 13 || group < 3 || (last < len(src) && isIDByte(src[last]) && src[last] != '.') {
		return 0, false
	}
	sum := 0
	for k := 0; k < n; k++ {
		d := int(digits[n-1-k])
		if k%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return last, sum%10 == 0
}

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
