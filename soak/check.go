package soak

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Flagged is one record the collector emitted with driftlock.anomaly=true.
type Flagged struct {
	Seq      int64
	Injected bool
}

// ReadFlagged reads the file exporter's output (one OTLP/JSON logs request
// per line) and adds the flagged records to into, by their soak.seq: every
// soak record carries a unique one, so it names the record whatever the
// exporter's fingerprint encoding (which is the exporter's own business and
// has changed before). A record emitted twice (re-sent after the collector
// was killed) counts once. It returns how many records the file held in
// all. With allowTornTail an unreadable last line is skipped: a collector
// killed with SIGKILL may leave one half written.
func ReadFlagged(path string, into map[int64]Flagged, allowTornTail bool) (records int, err error) {
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
		if err := collectFlagged(ld, into); err != nil {
			return records, fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return records, err
	}
	if torn != nil && !allowTornTail {
		return records, torn
	}
	return records, nil
}

func collectFlagged(ld plog.Logs, into map[int64]Flagged) error {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if v, ok := lr.Attributes().Get("driftlock.anomaly"); !ok || !v.Bool() {
					continue
				}
				seq, ok := lr.Attributes().Get(SeqKey)
				if !ok || seq.Type() != pcommon.ValueTypeInt {
					return fmt.Errorf("flagged record without an integer %s", SeqKey)
				}
				inj, _ := lr.Attributes().Get(InjectedKey)
				into[seq.Int()] = Flagged{Seq: seq.Int(), Injected: inj.Bool()}
			}
		}
	}
	return nil
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
	Duplicated  int // rows beyond the first for one record (one soak.seq)
	Extra       int // stored but absent from the file output (see Compare)
	Injected    int // injected anomalies sent
	InjectedHit int // injected anomalies flagged
	LostSeqs    []int64
}

// Compare checks the store against the flagged records. Extra rows are not
// an error: the file exporter buffers its writes (flush_interval), so the
// records it held when the collector was SIGKILLed never reach the file
// while the persistent queue kept them for the store.
func Compare(flagged map[int64]Flagged, rows []StoredRow, injected int) Result {
	r := Result{Flagged: len(flagged), Stored: len(rows), Injected: injected}
	bySeq := map[int64]int{}
	for _, row := range rows {
		bySeq[row.Seq]++
	}
	// soak.seq names the record: a record stored twice is two rows with
	// one seq, whether its fingerprints differed or (were the UNIQUE
	// constraint gone) were equal.
	for _, n := range bySeq {
		r.Duplicated += n - 1
	}
	for seq, f := range flagged {
		if bySeq[seq] == 0 {
			r.Lost++
			if len(r.LostSeqs) < 20 {
				r.LostSeqs = append(r.LostSeqs, seq)
			}
		}
		if f.Injected {
			r.InjectedHit++
		}
	}
	for seq := range bySeq {
		if _, ok := flagged[seq]; !ok {
			r.Extra++
		}
	}
	slices.Sort(r.LostSeqs)
	return r
}
