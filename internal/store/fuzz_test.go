package store_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/driftlock/driftlock/internal/store"
)

// FuzzEncodeJSON: whatever the strings, the document is valid JSON, valid
// UTF-8, free of NUL (raw or escaped: jsonb rejects \u0000) and bounded.
func FuzzEncodeJSON(f *testing.F) {
	f.Add("body", "value", 3)
	f.Add("k\x00", "\xff\xfe\x00", 40)
	f.Add(`"; DROP TABLE x; --`, "\u2028\\\"", 0)
	f.Fuzz(func(t *testing.T, key, val string, depth int) {
		depth = min(max(depth, 0), 100)
		var v any = map[string]any{key: val, "n": []any{val, 1.5, nil}}
		for i := 0; i < depth; i++ {
			v = map[string]any{key: v}
		}
		doc := store.EncodeJSON(v)
		if !json.Valid(doc) {
			t.Fatalf("invalid JSON: %q", doc)
		}
		if !utf8.Valid(doc) || strings.Contains(string(doc), `\u0000`) || strings.IndexByte(string(doc), 0) >= 0 {
			t.Fatalf("jsonb would refuse: %q", doc)
		}
		var back any
		if err := json.Unmarshal(doc, &back); err != nil {
			t.Fatal(err)
		}
		if len(doc) > store.MaxDocumentBytes+64<<10 {
			t.Fatalf("document of %d bytes", len(doc))
		}
	})
}
