package store

import (
	"github.com/driftlock/driftlock/internal/cbad"

	"encoding/base64"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits applied to everything written to the store. PostgreSQL rejects NUL
// bytes in text and jsonb, and invalid UTF-8 in a UTF-8 database; a single
// such record must not make a whole batch fail, so values are repaired
// before they reach the database instead of being rejected there.
const (
	// MaxStringBytes caps one string value (a log body, an attribute).
	MaxStringBytes = 1 << 20
	// MaxDocumentBytes caps one encoded JSON document (attributes, resource
	// or record). Strings past the budget are truncated to their marker.
	MaxDocumentBytes = 4 << 20
	// MaxDepth is how deep maps and arrays may nest; deeper values are
	// flattened into one string with DepthMarker in front.
	MaxDepth = 16
	// MaxIndexedBytes caps the columns that carry a btree index (stream,
	// service): a btree entry over ~2.7 kB is a hard error in PostgreSQL.
	MaxIndexedBytes = 1024
	// MaxTextBytes caps the other free-text columns.
	MaxTextBytes = 64 << 10
	// MaxStatementBytes is about the most payload one INSERT statement
	// carries; InsertAnomalies splits larger batches.
	MaxStatementBytes = 64 << 20
)

// Markers left where values were changed, so that a reader can tell.
const (
	// TruncatedMarker prefixes the note appended to a truncated string.
	TruncatedMarker = "…[driftlock: truncated"
	// DepthMarker prefixes a subtree flattened because it nested too deep.
	DepthMarker = "[driftlock: nested deeper than 16 levels, flattened] "
)

// hardDepth bounds recursion while flattening a too-deep subtree; past it
// the rest is replaced by "…".
const hardDepth = 256

// SanitizeString strips NUL bytes, replaces invalid UTF-8 with U+FFFD and
// truncates s to at most limit bytes (on a rune boundary) plus a marker
// that says how many bytes were cut. A valid, short string is returned
// unchanged without allocating.
func SanitizeString(s string, limit int) string {
	if len(s) <= limit && strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("%s %d bytes]", TruncatedMarker, len(s)-cut)
}

// EncodeJSON writes v as a JSON document that PostgreSQL's jsonb accepts:
// strings are sanitized (SanitizeString with MaxStringBytes), object keys
// are sorted (so equal values encode to equal bytes, which the fingerprint
// relies on), NaN and ±Inf become strings, []byte becomes base64, maps
// nested deeper than MaxDepth are flattened to a marked string, and the
// document as a whole stays near MaxDocumentBytes.
//
// Supported values are those of pcommon's AsRaw: nil, bool, string, int64,
// float64, []byte, []any and map[string]any (other ints, float32 and
// time.Time are accepted too); anything else is written with %v.
func EncodeJSON(v any) []byte {
	e := encoder{budget: MaxDocumentBytes}
	e.value(v, 0)
	return e.buf
}

type encoder struct {
	buf    []byte
	budget int
}

func (e *encoder) value(v any, depth int) {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case string:
		e.str(x)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case float64:
		e.float(x)
	case float32:
		e.float(float64(x))
	case []byte:
		e.str(base64.StdEncoding.EncodeToString(x))
	case time.Time:
		e.str(x.UTC().Format(time.RFC3339Nano))
	case map[string]any:
		if depth >= MaxDepth {
			e.flatten(x)
			return
		}
		e.object(x, depth, false)
	case []any:
		if depth >= MaxDepth {
			e.flatten(x)
			return
		}
		e.array(x, depth, false)
	default:
		e.str(fmt.Sprintf("%v", x))
	}
}

// flatten writes a too-deep subtree as one marked string holding its JSON.
func (e *encoder) flatten(v any) {
	inner := encoder{budget: e.budget}
	inner.deep(v, 0)
	e.str(DepthMarker + string(inner.buf))
}

// deep encodes without the depth limit (it is only called under flatten),
// stopping at hardDepth so a hostile million-level value cannot blow the stack.
func (e *encoder) deep(v any, depth int) {
	if depth >= hardDepth {
		e.buf = append(e.buf, `"…"`...)
		return
	}
	switch x := v.(type) {
	case map[string]any:
		e.object(x, depth, true)
	case []any:
		e.array(x, depth, true)
	default:
		e.value(x, 0)
	}
}

// object writes a map with its keys sorted (equal maps encode to equal
// bytes). Outside flatten, keys are written as they are and a
// secret-named field's value is redacted (field); under flatten (deep) the
// subtree ends up inside one string, and keys and values both go through
// str, values by way of deep.
func (e *encoder) object(x map[string]any, depth int, deep bool) {
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if deep {
			e.str(k)
			e.buf = append(e.buf, ':')
			e.deep(x[k], depth+1)
			continue
		}
		e.key(k)
		e.buf = append(e.buf, ':')
		e.field(k, x[k], depth+1)
	}
	e.buf = append(e.buf, '}')
}

// field writes the value of the field named k.
func (e *encoder) field(k string, v any, depth int) {
	switch v.(type) {
	case map[string]any, []any, nil, bool:
	default:
		// The value of a secret-named field never reaches storage.
		if cbad.IsSecretKey(k) {
			e.key(cbad.RedactedMarker)
			return
		}
	}
	e.value(v, depth)
}

// array writes a list, its elements through value, or deep under flatten.
func (e *encoder) array(x []any, depth int, deep bool) {
	e.buf = append(e.buf, '[')
	for i, el := range x {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if deep {
			e.deep(el, depth+1)
		} else {
			e.value(el, depth+1)
		}
	}
	e.buf = append(e.buf, ']')
}

func (e *encoder) float(f float64) {
	switch {
	case math.IsNaN(f):
		e.buf = append(e.buf, `"NaN"`...)
	case math.IsInf(f, 1):
		e.buf = append(e.buf, `"+Inf"`...)
	case math.IsInf(f, -1):
		e.buf = append(e.buf, `"-Inf"`...)
	default:
		e.buf = strconv.AppendFloat(e.buf, f, 'g', -1, 64)
	}
}

// str writes a string value: secrets in it redacted (cbad.Redact: key=value
// pairs, Authorization credentials, card numbers), then sanitized.
func (e *encoder) str(s string) { e.key(cbad.RedactString(s)) }

// key writes a sanitized, escaped JSON string and charges it to the budget.
func (e *encoder) key(s string) {
	limit := MaxStringBytes
	if e.budget < limit {
		limit = max(e.budget, 0)
	}
	s = SanitizeString(s, limit)
	e.budget -= len(s)
	e.buf = append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		e.buf = append(e.buf, s[start:i]...)
		switch c {
		case '"':
			e.buf = append(e.buf, '\\', '"')
		case '\\':
			e.buf = append(e.buf, '\\', '\\')
		case '\n':
			e.buf = append(e.buf, '\\', 'n')
		case '\r':
			e.buf = append(e.buf, '\\', 'r')
		case '\t':
			e.buf = append(e.buf, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			e.buf = append(e.buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	e.buf = append(e.buf, s[start:]...)
	e.buf = append(e.buf, '"')
}
