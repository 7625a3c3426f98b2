package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

func f64(v float64) *float64 { return &v }

// sampleRows builds n distinct rows (distinct fingerprints) for stream.
func sampleRows(n int, stream string) []store.Anomaly {
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	rows := make([]store.Anomaly, n)
	for i := range rows {
		body := fmt.Sprintf("ERROR disk /dev/sda%d failed after %d retries", i%7, i)
		obs := base.Add(time.Duration(i) * time.Millisecond)
		rec := map[string]any{"body": body, "severity_text": "ERROR"}
		rows[i] = store.Anomaly{
			Fingerprint: store.Fingerprint(store.SignalLogs, stream, obs, "", "", []byte(body)),
			Signal:      store.SignalLogs,
			Stream:      stream,
			Service:     "checkout",
			ObservedAt:  obs,
			Score:       7.5 + float64(i%10)/10,
			PValue:      0.001,
			NCD:         f64(0.42),
			Severity:    "ERROR",
			Summary:     body,
			Explanation: "rare tokens: sda, retries",
			Attributes:  map[string]any{"host.name": "web-" + strconv.Itoa(i%3), "driftlock.score": 7.5},
			Resource:    map[string]any{"service.name": "checkout"},
			Record:      rec,
		}
	}
	return rows
}

func count(t *testing.T, s *store.Store) int {
	t.Helper()
	var n int
	if err := storetest.Pool(s).QueryRow(context.Background(), "SELECT count(*) FROM anomalies").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestInsertAnomaliesStoresRowsAndIsIdempotent(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	rows := sampleRows(250, "app/logs")
	n, err := s.InsertAnomalies(ctx, rows)
	if err != nil || n != 250 {
		t.Fatalf("first insert: n=%d err=%v, want 250 rows", n, err)
	}
	n, err = s.InsertAnomalies(ctx, rows)
	if err != nil || n != 0 {
		t.Fatalf("second insert of the same batch: n=%d err=%v, want 0 new rows", n, err)
	}
	// A batch overlapping the stored one plus duplicates inside itself.
	more := append(sampleRows(300, "app/logs")[200:], sampleRows(300, "app/logs")[290:]...)
	n, err = s.InsertAnomalies(ctx, more)
	if err != nil || n != 50 {
		t.Fatalf("overlapping insert: n=%d err=%v, want 50 new rows", n, err)
	}
	if got := count(t, s); got != 300 {
		t.Fatalf("rows = %d, want 300", got)
	}
	var (
		stream, service, status, expl string
		score                         float64
		ncd                           *float64
		ratio                         *float64
		attrs                         map[string]any
	)
	err = storetest.Pool(s).QueryRow(ctx, `SELECT stream, service, status, explanation, score, ncd, compression_ratio, attributes
		FROM anomalies WHERE fingerprint = $1`, rows[3].Fingerprint).
		Scan(&stream, &service, &status, &expl, &score, &ncd, &ratio, &attrs)
	if err != nil {
		t.Fatal(err)
	}
	if stream != "app/logs" || service != "checkout" || status != "open" || score != rows[3].Score ||
		ncd == nil || *ncd != 0.42 || ratio != nil || attrs["host.name"] != "web-0" || expl != rows[3].Explanation {
		t.Fatalf("stored row differs: %q %q %q %v %v %v %v", stream, service, status, score, ncd, ratio, attrs)
	}
}

func TestInsertAnomaliesEmptyBatch(t *testing.T) {
	s, _ := storetest.Open(t)
	for _, rows := range [][]store.Anomaly{nil, {}} {
		n, err := s.InsertAnomalies(context.Background(), rows)
		if err != nil || n != 0 {
			t.Fatalf("empty batch: n=%d err=%v", n, err)
		}
	}
	if got := count(t, s); got != 0 {
		t.Fatalf("rows = %d after empty batches", got)
	}
}

// rawConn opens a connection of its own to the test database, beside the
// store's pool, with a 30 s context; both end with the test.
func rawConn(t *testing.T, dsn string) (context.Context, *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return ctx, conn
}

// listenConn is rawConn listening on the store's notification channel.
func listenConn(t *testing.T, dsn string) (context.Context, *pgx.Conn) {
	t.Helper()
	ctx, conn := rawConn(t, dsn)
	if _, err := conn.Exec(ctx, "LISTEN "+store.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	return ctx, conn
}

func TestInsertAnomaliesNotifiesMaxID(t *testing.T) {
	s, dsn := storetest.Open(t)
	ctx, conn := listenConn(t, dsn)
	rows := sampleRows(10, "notify")
	if _, err := s.InsertAnomalies(ctx, rows); err != nil {
		t.Fatal(err)
	}
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	var maxID int64
	if err := storetest.Pool(s).QueryRow(ctx, "SELECT max(id) FROM anomalies").Scan(&maxID); err != nil {
		t.Fatal(err)
	}
	if n.Channel != store.NotifyChannel || n.Payload != strconv.FormatInt(maxID, 10) {
		t.Fatalf("notification %q %q, want payload %d", n.Channel, n.Payload, maxID)
	}
	// A batch of duplicates stores nothing and must not notify.
	if _, err := s.InsertAnomalies(ctx, rows); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if n, err := conn.WaitForNotification(short); err == nil {
		t.Fatalf("unexpected notification for a duplicate batch: %q", n.Payload)
	}
}

func TestInsertAnomaliesBadInputIsRepairedNotRejected(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	huge := strings.Repeat("x", store.MaxStringBytes+5000)
	deep := map[string]any{"leaf": "bottom"}
	for i := 0; i < 40; i++ {
		deep = map[string]any{"level": deep}
	}
	inj := "x'); DROP TABLE anomalies; --"
	rows := sampleRows(5, "bad")
	rows[0].Record = map[string]any{"body": huge}
	rows[1].Record = map[string]any{"body": "a\x00b\xff\xfec"}
	rows[1].Stream = "s\x00t\xc3"
	rows[1].Summary = "nul\x00here"
	rows[2].Attributes = deep
	rows[3].Attributes = map[string]any{inj: inj, `"k"\`: "v\"\\", "robert'); --": []any{inj, int64(1), nil, true}}
	rows[4].Attributes = map[string]any{"nan": nanValue(), "bytes": []byte{0, 1, 2}}
	n, err := s.InsertAnomalies(ctx, rows)
	if err != nil || n != 5 {
		t.Fatalf("insert: n=%d err=%v, want all 5 stored", n, err)
	}
	get := func(fp, col string) string {
		var v string
		if err := storetest.Pool(s).QueryRow(ctx, "SELECT "+col+"::text FROM anomalies WHERE fingerprint=$1", fp).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var body string
	if err := storetest.Pool(s).QueryRow(ctx, "SELECT record->>'body' FROM anomalies WHERE fingerprint=$1", rows[0].Fingerprint).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, store.TruncatedMarker) || len(body) > store.MaxStringBytes+100 || len(body) < store.MaxStringBytes {
		t.Fatalf("huge body: len %d, marker %v", len(body), strings.Contains(body, store.TruncatedMarker))
	}
	if got := get(rows[1].Fingerprint, "record->>'body'"); got != "ab\uFFFDc" {
		t.Fatalf("NUL/invalid UTF-8 body stored as %q", got)
	}
	if got := get(rows[1].Fingerprint, "stream"); got != "st\uFFFD" {
		t.Fatalf("stream stored as %q", got)
	}
	if got := get(rows[1].Fingerprint, "summary"); got != "nulhere" {
		t.Fatalf("summary stored as %q", got)
	}
	if got := get(rows[2].Fingerprint, "attributes"); !strings.Contains(got, `[driftlock: nested deeper than 16 levels, flattened]`) || !strings.Contains(got, "bottom") {
		t.Fatalf("deep map stored as %.300s", got)
	}
	var attrs map[string]any
	if err := storetest.Pool(s).QueryRow(ctx, "SELECT attributes FROM anomalies WHERE fingerprint=$1", rows[3].Fingerprint).Scan(&attrs); err != nil {
		t.Fatal(err)
	}
	if attrs[inj] != inj || attrs[`"k"\`] != "v\"\\" {
		t.Fatalf("injection strings not stored verbatim: %#v", attrs)
	}
	if arr, _ := attrs["robert'); --"].([]any); len(arr) != 4 || arr[0] != inj {
		t.Fatalf("array attribute: %#v", attrs["robert'); --"])
	}
	if got := get(rows[4].Fingerprint, "attributes->>'nan'"); got != "NaN" {
		t.Fatalf("NaN stored as %q", got)
	}
	if got := count(t, s); got != 5 {
		t.Fatalf("table has %d rows: injection must not have dropped anything", got)
	}
}

func nanValue() float64 { var z float64; return z / z }

func TestInsertAnomaliesIsolatesRejectedRows(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	rows := sampleRows(6, "reject")
	rows[2].DetectorConfigHash = "no-such-detector" // foreign key violation: permanent
	rows[4].Signal = "profiles"                     // not a known signal
	n, err := s.InsertAnomalies(ctx, rows)
	if n != 4 {
		t.Fatalf("inserted %d, want the 4 good rows", n)
	}
	var rej *store.RejectedRowsError
	if !errors.As(err, &rej) || len(rej.Rows) != 2 || rej.Rows[0].Index != 2 || rej.Rows[1].Index != 4 {
		t.Fatalf("err = %v, want rows 2 and 4 rejected", err)
	}
	if !store.IsPermanent(err) || store.IsTransient(err) {
		t.Fatalf("rejected rows must classify as permanent: %v", err)
	}
	if !errors.Is(rej.Rows[1].Err, store.ErrBadSignal) {
		t.Fatalf("row 4 error %v, want ErrBadSignal", rej.Rows[1].Err)
	}
	// With the detector recorded first, the row is accepted.
	if err := s.UpsertDetector(ctx, "no-such-detector", []byte(`{"p_value":0.001}`)); err != nil {
		t.Fatal(err)
	}
	n, err = s.InsertAnomalies(ctx, rows[:3])
	if err != nil || n != 1 {
		t.Fatalf("after upsert: n=%d err=%v", n, err)
	}
}

func TestUpsertDetector(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	if err := s.UpsertDetector(ctx, "abc", nil); err != nil {
		t.Fatal(err)
	}
	var first, last time.Time
	var cfg map[string]any
	if err := storetest.Pool(s).QueryRow(ctx, "SELECT first_seen, last_seen, config FROM detectors WHERE config_hash='abc'").Scan(&first, &last, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg) != 0 {
		t.Fatalf("config %v, want {}", cfg)
	}
	time.Sleep(20 * time.Millisecond)
	if err := s.UpsertDetector(ctx, "abc", []byte(`{"window":256}`)); err != nil {
		t.Fatal(err)
	}
	var last2 time.Time
	if err := storetest.Pool(s).QueryRow(ctx, "SELECT last_seen, config FROM detectors WHERE config_hash='abc'").Scan(&last2, &cfg); err != nil {
		t.Fatal(err)
	}
	if !last2.After(last) || cfg["window"] != float64(256) {
		t.Fatalf("last_seen %v -> %v, config %v", last, last2, cfg)
	}
	if err := s.UpsertDetector(ctx, "abc", []byte(`{not json`)); err == nil {
		t.Fatal("invalid config JSON accepted")
	}
	if err := s.UpsertDetector(ctx, "", nil); err == nil {
		t.Fatal("empty hash accepted")
	}
}

func TestDeleteOlderThanDeletesInBatches(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	old := sampleRows(25, "old")
	for i := range old {
		old[i].DetectedAt = time.Now().Add(-40 * 24 * time.Hour)
	}
	fresh := sampleRows(7, "fresh")
	if _, err := s.InsertAnomalies(ctx, append(old, fresh...)); err != nil {
		t.Fatal(err)
	}
	var batches []int64
	n, err := s.DeleteOlderThanEach(ctx, time.Now().Add(-30*24*time.Hour), 10, func(d int64) { batches = append(batches, d) })
	if err != nil || n != 25 {
		t.Fatalf("deleted %d err=%v, want 25", n, err)
	}
	if fmt.Sprint(batches) != "[10 10 5]" {
		t.Fatalf("batches %v, want [10 10 5]", batches)
	}
	if got := count(t, s); got != 7 {
		t.Fatalf("rows left %d, want the 7 fresh ones", got)
	}
	var streams []string
	rows, _ := storetest.Pool(s).Query(ctx, "SELECT DISTINCT stream FROM anomalies")
	streams, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(streams) != 1 || streams[0] != "fresh" {
		t.Fatalf("left streams %v err=%v", streams, err)
	}
	if _, err := s.DeleteOlderThan(ctx, time.Now(), 0); err == nil {
		t.Fatal("batch size 0 accepted")
	}
}

func TestDeleteOlderThanStopsAtBatchBoundaryWhenCanceled(t *testing.T) {
	s, _ := storetest.Open(t)
	old := sampleRows(30, "old")
	for i := range old {
		old[i].DetectedAt = time.Now().Add(-40 * 24 * time.Hour)
	}
	if _, err := s.InsertAnomalies(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	// A context canceled before the call: nothing may be deleted, because
	// each batch is its own statement and the first one never starts.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := s.DeleteOlderThan(ctx, time.Now(), 10)
	if err == nil || n != 0 || count(t, s) != 30 {
		t.Fatalf("canceled retention: n=%d err=%v rows=%d", n, err, count(t, s))
	}
}

func TestEncodeJSONIsValidAndDeterministic(t *testing.T) {
	v := map[string]any{"b": int64(1), "a": []any{"x\n\"y", 1.5, false, nil}, "c": map[string]any{"z": "\x00\xff"}}
	first := store.EncodeJSON(v)
	for i := 0; i < 20; i++ {
		if got := store.EncodeJSON(v); string(got) != string(first) {
			t.Fatalf("encoding differs between runs: %s vs %s", got, first)
		}
	}
	var back map[string]any
	if err := json.Unmarshal(first, &back); err != nil {
		t.Fatalf("invalid JSON %s: %v", first, err)
	}
	if want := `{"a":["x\n\"y",1.5,false,null],"b":1,"c":{"z":"�"}}`; string(first) != want {
		t.Fatalf("got %s\nwant %s", first, want)
	}
}

// Large batches are split into statements of about MaxStatementBytes, each
// its own commit (and notification); bad signals are rejected on the way.
func TestInsertAnomaliesSplitsLargeBatches(t *testing.T) {
	s, dsn := storetest.Open(t)
	defer store.SetMaxStatementBytes(20_000)()
	ctx, conn := listenConn(t, dsn)
	rows := sampleRows(40, "split")
	for i := range rows {
		rows[i].Record = map[string]any{"body": strings.Repeat("y", 2000)}
	}
	rows[25].Signal = "bogus"
	n, err := s.InsertAnomalies(ctx, rows)
	var rej *store.RejectedRowsError
	if n != 39 || !errors.As(err, &rej) || len(rej.Rows) != 1 || rej.Rows[0].Index != 25 {
		t.Fatalf("n=%d err=%v, want 39 stored and row 25 rejected", n, err)
	}
	notes := 0
	for {
		short, c := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := conn.WaitForNotification(short)
		c()
		if err != nil {
			break
		}
		notes++
	}
	// ~2.3 kB per row, 20 kB per statement: 9 rows a statement, 5 statements.
	if notes < 4 {
		t.Fatalf("%d notifications: the batch was not split into statements", notes)
	}
}

// Writers serialize on the advisory lock (so ids become visible in
// order): while another session holds it, InsertAnomalies waits.
func TestInsertAnomaliesWaitsForTheWriterLock(t *testing.T) {
	s, dsn := storetest.Open(t)
	ctx, conn := rawConn(t, dsn)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", store.InsertLockKey); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.InsertAnomalies(ctx, sampleRows(3, "locked"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("insert finished while another writer held the lock (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := count(t, s); got != 3 {
		t.Fatalf("rows = %d", got)
	}
}

// Several writers racing with the same batch (collectors replaying the same
// data) store each row once, and their counts add up.
func TestInsertAnomaliesConcurrentWritersStoreOnce(t *testing.T) {
	s, _ := storetest.Open(t)
	rows := sampleRows(300, "race")
	results := make(chan int, 6)
	errs := make(chan error, 6)
	for w := 0; w < 6; w++ {
		go func(w int) {
			mine := make([]store.Anomaly, len(rows))
			copy(mine, rows)
			// Each writer sends the rows in its own order.
			for i := range mine {
				j := (i + w*37) % len(mine)
				mine[i], mine[j] = mine[j], mine[i]
			}
			n, err := s.InsertAnomalies(context.Background(), mine)
			results <- n
			errs <- err
		}(w)
	}
	total := 0
	for w := 0; w < 6; w++ {
		total += <-results
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if total != 300 || count(t, s) != 300 {
		t.Fatalf("writers reported %d new rows, table has %d; want 300 and 300", total, count(t, s))
	}
}
