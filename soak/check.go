package soak

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/driftlock/driftlock/internal/store"
)

// Flagged is one record the collector emitted with driftlock.anomaly=true.
type Flagged struct {
	Seq         int64
	Fingerprint string
	Injected    bool
}

// ReadFlagged reads the file exporter's output (one OTLP/JSON logs request
// per line) and returns the flagged records by fingerprint, computed the
// way the driftlock exporter computes it (internal/store.Fingerprint over
// signal, stream, time, ids and the body plus non-driftlock attributes). A
// record emitted twice (re-sent after the collector was killed) counts
// once. It also returns how many records the file held in all. With
// allowTornTail an unreadable last line is skipped: a collector killed with
// SIGKILL may leave one half written.
func ReadFlagged(path string, into map[string]Flagged, allowTornTail bool) (records int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	u := &plog.JSONUnmarshaler{}
	line := 0
	var torn error
	for sc.Scan() {
		line++
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		if torn != nil {
			return records, torn // a bad line in the middle is not a torn tail
		}
		ld, err := u.UnmarshalLogs(sc.Bytes())
		if err != nil {
			torn = fmt.Errorf("%s:%d: %w", path, line, err)
			continue
		}
		records += ld.LogRecordCount()
		collectFlagged(ld, into)
	}
	if err := sc.Err(); err != nil {
		return records, err
	}
	if torn != nil && !allowTornTail {
		return records, torn
	}
	return records, nil
}

func collectFlagged(ld plog.Logs, into map[string]Flagged) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		service := ""
		if v, ok := rl.Resource().Attributes().Get("service.name"); ok {
			service = v.AsString()
		}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				if v, ok := lr.Attributes().Get("driftlock.anomaly"); !ok || !v.Bool() {
					continue
				}
				fp := Fingerprint(lr, service)
				seq, _ := lr.Attributes().Get(SeqKey)
				inj, _ := lr.Attributes().Get(InjectedKey)
				into[fp] = Flagged{Seq: seq.Int(), Fingerprint: fp, Injected: inj.Bool()}
			}
		}
	}
}

// Fingerprint is the store fingerprint of a flagged log record.
func Fingerprint(lr plog.LogRecord, service string) string {
	stream := ""
	if v, ok := lr.Attributes().Get("driftlock.stream"); ok {
		stream = v.AsString()
	}
	if stream == "" {
		stream = service + "/logs"
	}
	observed := time.Now()
	for _, t := range []pcommon.Timestamp{lr.Timestamp(), lr.ObservedTimestamp()} {
		if t != 0 {
			observed = t.AsTime()
			break
		}
	}
	traceID, spanID := "", ""
	if id := lr.TraceID(); !id.IsEmpty() {
		traceID = id.String()
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		spanID = id.String()
	}
	attrs := map[string]any{}
	for k, v := range lr.Attributes().All() {
		if !strings.HasPrefix(k, "driftlock.") {
			attrs[k] = v.AsRaw()
		}
	}
	body := map[string]any{"body": lr.Body().AsRaw(), "attributes": attrs}
	return store.Fingerprint("logs", stream, observed, traceID, spanID, store.EncodeJSON(body))
}

// StoredRow is one anomalies row of the soak.
type StoredRow struct {
	Fingerprint string
	Seq         int64
}

// Result is the soak's verdict.
type Result struct {
	Flagged     int // distinct flagged records the collector emitted
	Stored      int // rows in anomalies
	Lost        int // flagged but not stored
	Duplicated  int // rows beyond the first for one record (by fingerprint or by seq)
	Extra       int // stored but absent from the file output (see Compare)
	Injected    int // injected anomalies sent
	InjectedHit int // injected anomalies flagged
	LostSeqs    []int64
}

// Compare checks the store against the flagged records. Extra rows are not
// an error: the file exporter buffers its writes (flush_interval), so the
// records it held when the collector was SIGKILLed never reach the file
// while the persistent queue kept them for the store.
func Compare(flagged map[string]Flagged, rows []StoredRow, injected int) Result {
	r := Result{Flagged: len(flagged), Stored: len(rows), Injected: injected}
	byFP := map[string]int{}
	bySeq := map[int64]int{}
	for _, row := range rows {
		byFP[row.Fingerprint]++
		bySeq[row.Seq]++
	}
	for _, n := range byFP {
		if n > 1 {
			r.Duplicated += n - 1
		}
	}
	for _, n := range bySeq {
		if n > 1 {
			r.Duplicated += n - 1
		}
	}
	for fp, f := range flagged {
		if byFP[fp] == 0 {
			r.Lost++
			if len(r.LostSeqs) < 20 {
				r.LostSeqs = append(r.LostSeqs, f.Seq)
			}
		}
		if f.Injected {
			r.InjectedHit++
		}
	}
	for fp := range byFP {
		if _, ok := flagged[fp]; !ok {
			r.Extra++
		}
	}
	slices.Sort(r.LostSeqs)
	return r
}
