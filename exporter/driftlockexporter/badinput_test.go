package driftlockexporter

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// Hostile records go through the real exporter into the real database:
// every one is stored (repaired, marked), none fails the batch.
func TestBadInputThroughTheExporter(t *testing.T) {
	st, dsn := openDB(t)
	set, tt := testSettings(t)
	exp := startLogs(t, syncConfig(dsn), set, componenttest.NewNopHost())
	defer exp.Shutdown(context.Background())
	ctx := context.Background()

	const inj = `'); DROP TABLE anomalies; --`
	ld := flaggedLogs(0, 6, all)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	// 0: a 3 MiB body.
	lrs.At(0).Body().SetStr(strings.Repeat("0123456789abcdef", 3<<16))
	// 1: invalid UTF-8 and NUL bytes in the body, an attribute and the stream.
	lrs.At(1).Body().SetStr("bad \xff\xfe utf8 and nul \x00 inside")
	lrs.At(1).Attributes().PutStr("k\x00ey", "v\x00al\xc3")
	lrs.At(1).Attributes().PutStr("driftlock.stream", "str\x00eam\xff")
	// 2: a map body nested 64 levels deep.
	m := lrs.At(2).Body().SetEmptyMap()
	for i := 0; i < 64; i++ {
		m = m.PutEmptyMap("d")
	}
	m.PutStr("leaf", "deepest")
	// 3: SQL injection in attribute keys and values, and in the body.
	lrs.At(3).Attributes().PutStr(inj, inj)
	lrs.At(3).Attributes().PutStr(`"; DELETE FROM detectors; --`, `\'; SELECT pg_sleep(10); --`)
	lrs.At(3).Body().SetStr(inj)
	// 4: bytes and an empty body.
	lrs.At(4).Body().SetEmptyBytes().FromRaw([]byte{0, 1, 2, 255})
	// 5: no timestamp at all.
	lrs.At(5).SetTimestamp(0)

	if err := exp.ConsumeLogs(ctx, ld); err != nil {
		t.Fatalf("hostile batch failed: %v", err)
	}
	if got := rowCount(t, st); got != 6 {
		t.Fatalf("rows = %d, want all 6", got)
	}
	wantCounter(t, tt, "otelcol_exporter_driftlock_rows_dropped", 0)
	// An empty request is fine too.
	if err := exp.ConsumeLogs(ctx, plog.NewLogs()); err != nil {
		t.Fatalf("empty request: %v", err)
	}

	body := func(where string, args ...any) string {
		t.Helper()
		var s string
		if err := storetest.Pool(st).QueryRow(ctx, "SELECT record->>'body' FROM anomalies WHERE "+where, args...).Scan(&s); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		return s
	}
	huge := body("length(record->>'body') > 1000000")
	if len(huge) > store.MaxStringBytes+100 || !strings.Contains(huge, store.TruncatedMarker) {
		t.Fatalf("huge body stored with %d bytes, marker %v", len(huge), strings.Contains(huge, store.TruncatedMarker))
	}
	if got := body("record->>'body' LIKE 'bad %'"); got != "bad \uFFFD utf8 and nul  inside" {
		t.Fatalf("repaired body %q", got)
	}
	var stream, attr string
	if err := storetest.Pool(st).QueryRow(ctx, `SELECT stream, attributes->>'key' FROM anomalies WHERE attributes ? 'key'`).Scan(&stream, &attr); err != nil {
		t.Fatal(err)
	}
	if stream != "stream\uFFFD" || attr != "val\uFFFD" {
		t.Fatalf("stream %q attr %q", stream, attr)
	}
	deep := body("record->>'body' LIKE '%deepest%'")
	if !strings.Contains(deep, store.DepthMarker) {
		t.Fatalf("deep body lacks the depth marker: %.200s", deep)
	}
	var v1, v2 string
	if err := storetest.Pool(st).QueryRow(ctx, `SELECT attributes->>$1, attributes->>$2 FROM anomalies WHERE record->>'body' = $1`,
		inj, `"; DELETE FROM detectors; --`).Scan(&v1, &v2); err != nil {
		t.Fatalf("injection row not found verbatim: %v", err)
	}
	if v1 != inj || v2 != `\'; SELECT pg_sleep(10); --` {
		t.Fatalf("injection values %q %q", v1, v2)
	}
	if got := body("record->>'body' = 'AAEC/w=='"); got != "AAEC/w==" {
		t.Fatalf("bytes body %q", got)
	}
}

// The depth limit applies to attributes too, and repairs keep keys apart.
func TestBadInputDeepAttributes(t *testing.T) {
	w := goldenWriter(true)
	ld := flaggedLogs(0, 1, all)
	m := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutEmptyMap("nest")
	for i := 0; i < 30; i++ {
		m = m.PutEmptyMap("n")
	}
	m.PutInt("x", 1)
	b := w.logsBatch(ld, baseTime)
	doc := b.rows[0].AttributesJSON
	if !strings.Contains(doc, "nested deeper than 16 levels") || strings.Count(doc, `{"n":{`) > store.MaxDepth {
		t.Fatalf("attributes not flattened below depth %d: %.300s", store.MaxDepth, doc)
	}
}
