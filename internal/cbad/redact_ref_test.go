package cbad

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftlock/driftlock/internal/testutil"
)

// redactReference is Redact as first written, one byte at a time: the
// specification the bulk-copying Redact must match byte for byte.
func redactReference(dst, src []byte) []byte {
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '=' || c == ':':
			if keyEnd := trimKeyEnd(src, i); keyEnd > 0 && isSecretKeyReference(src, keyEnd) {
				dst = append(dst, c)
				j := i + 1
				for j < len(src) && (src[j] == ' ' || src[j] == '"' || src[j] == '\'') {
					dst = append(dst, src[j])
					j++
				}
				end := valueEnd(src, j)
				if end-j >= 5 && isAuthScheme(src[j:end]) {
					dst = append(dst, src[j:end]...)
					j = end
					for j < len(src) && src[j] == ' ' {
						dst = append(dst, ' ')
						j++
					}
					end = valueEnd(src, j)
				}
				if end > j {
					dst = append(dst, RedactedMarker...)
				}
				i = end
				continue
			}
			dst = append(dst, c)
			i++
		case c >= '0' && c <= '9' && (i == 0 || !isIDByte(src[i-1])):
			if end, ok := cardNumber(src, i); ok {
				dst = append(dst, "<card>"...)
				i = end
				continue
			}
			dst = append(dst, c)
			i++
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}

// isSecretKeyReference is isSecretKey as first written: measure the key,
// then try every secret name as its suffix.
func isSecretKeyReference(src []byte, end int) bool {
	if end == 0 {
		return false
	}
	start := end
	for start > 0 && isKeyByte(src[start-1]) {
		start--
	}
	key := src[start:end]
	if len(key) == 0 || len(key) > 64 {
		return false
	}
	for _, k := range secretKeys {
		if len(key) >= len(k) && equalFoldASCII(key[len(key)-len(k):], k) {
			return true
		}
	}
	return false
}

func checkRedactMatches(t *testing.T, in []byte) {
	t.Helper()
	want := redactReference([]byte("prefix|"), in)
	if got := Redact([]byte("prefix|"), in); !bytes.Equal(got, want) {
		t.Fatalf("Redact(%q) = %q, reference %q", in, got, want)
	}
}

// TestRedactMatchesReference: on secret-dense random text built from the
// pieces Redact reacts to.
func TestRedactMatchesReference(t *testing.T) {
	pieces := []string{"password", "Token", "api_key", "Authorization", "=", ":", " ", "\"", "'",
		"passwd", "COOKIE", "session_id", "x-api-key", "db.", strings.Repeat("k", 60),
		"Bearer", "Basic ", "4111", "1111", "-", "378282246310005", "x", "0", "9", ".", ",", "}", "é", "\xff"}
	rng := rand.New(rand.NewPCG(9, 10))
	var b []byte
	for range 20000 {
		b = b[:0]
		for range rng.IntN(24) {
			b = append(b, pieces[rng.IntN(len(pieces))]...)
		}
		checkRedactMatches(t, b)
	}
}

// TestRedactMatchesReferenceOnLoghub: on every line of the loghub samples.
func TestRedactMatchesReferenceOnLoghub(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testutil.SharedData(t, "loghub"), "*_2k.log"))
	if len(files) == 0 {
		t.Skip("no loghub samples in ../shared/data/loghub")
	}
	for _, f := range files {
		for _, l := range testutil.LogLines(t, filepath.Base(f)) {
			checkRedactMatches(t, l)
		}
	}
}

func FuzzRedactMatchesReference(f *testing.F) {
	for _, s := range []string{"", "password=x", "Authorization: Bearer abc.def", "4111 1111 1111 1111", "a=1:2=3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkRedactMatches)
}
