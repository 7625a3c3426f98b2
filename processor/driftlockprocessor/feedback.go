package driftlockprocessor

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/driftlock/driftlock/internal/cbad"
	"github.com/driftlock/driftlock/internal/store"
)

// Triage feedback: records a person marked false_positive in the anomaly
// store are pulled periodically and added to their stream's baseline with
// Detector.Learn, so the same kind of record stops being flagged without a
// restart.

// feedbackOverlap re-reads rows updated this long before the cursor: a
// triage transaction that commits late can carry an updated_at older than
// rows already seen. Rows already learned are skipped by id.
const feedbackOverlap = time.Minute

// maxFeedbackSeen bounds the ids remembered to skip re-learning.
const maxFeedbackSeen = 100_000

// feedbackQuery reads the false positives of one signal changed since the
// cursor, oldest first. It relies on the anomalies table of
// internal/store/migrations (status, signal, stream, record, attributes,
// updated_at).
const feedbackQuery = `SELECT id, stream, record, attributes, updated_at
 FROM anomalies
 WHERE status = 'false_positive' AND signal = $1 AND (updated_at, id) > ($2, $3)
 ORDER BY updated_at, id
 LIMIT $4`

type feedback struct {
	e      *engine
	dsn    string
	store  *store.Store
	cursor time.Time
	seen   map[int64]struct{}
	mu     sync.Mutex // one pull at a time
	stop   chan struct{}
	done   chan struct{}
}

func newFeedback(e *engine) *feedback {
	return &feedback{e: e, dsn: string(e.cfg.Feedback.DSN), seen: map[int64]struct{}{}}
}

// start opens a lazy pool (the pipeline starts even while PostgreSQL is
// down) and runs the pull loop.
func (f *feedback) start() error {
	s, err := store.New(f.dsn)
	if err != nil {
		return fmt.Errorf("driftlock: feedback: %w", err)
	}
	f.store = s
	f.stop = make(chan struct{})
	f.done = make(chan struct{})
	go f.loop(f.e.cfg.Feedback.Interval)
	return nil
}

func (f *feedback) loop(iv time.Duration) {
	defer close(f.done)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), iv)
			if _, err := f.pull(ctx); err != nil {
				f.e.logger.Warn("driftlock feedback pull failed", zap.String("signal", f.e.signal), zap.Error(err))
			}
			cancel()
		}
	}
}

func (f *feedback) shutdown() {
	if f.stop != nil {
		close(f.stop)
		<-f.done
		f.stop = nil
	}
	if f.store != nil {
		f.store.Close()
		f.store = nil
	}
}

// pull learns every false positive of this signal marked since the last
// pull, for the streams this collector holds, and returns how many records
// it learned. Pages are read in (updated_at, id) order from the cursor less
// feedbackOverlap; rows already learned are skipped by id.
func (f *feedback) pull(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	learned := 0
	pageTS, pageID := f.cursor.Add(-feedbackOverlap), int64(0)
	for {
		n, err := f.pullPage(ctx, &pageTS, &pageID, &learned)
		if err != nil {
			f.e.tb.ProcessorDriftlockFeedbackErrors.Add(ctx, 1, f.e.sigAttr)
			return learned, err
		}
		if n < f.e.cfg.Feedback.MaxRecords {
			break
		}
	}
	if learned > 0 {
		f.e.tb.ProcessorDriftlockFeedbackLearned.Add(ctx, int64(learned), f.e.sigAttr)
		f.e.logger.Info("learned records marked false positive", zap.String("signal", f.e.signal), zap.Int("records", learned))
	}
	return learned, nil
}

// pullPage reads one page after (pageTS, pageID), advances the page key and
// the cursor, and returns the number of rows read.
func (f *feedback) pullPage(ctx context.Context, pageTS *time.Time, pageID *int64, learned *int) (int, error) {
	rows, err := f.store.Pool.Query(ctx, feedbackQuery, f.e.signal, *pageTS, *pageID, f.e.cfg.Feedback.MaxRecords)
	if err != nil {
		return 0, fmt.Errorf("query false positives: %w", err)
	}
	defer rows.Close()
	n := 0
	s := getScratch()
	defer putScratch(s)
	for rows.Next() {
		n++
		var (
			id            int64
			stream        string
			record, attrs []byte
			updated       time.Time
		)
		if err := rows.Scan(&id, &stream, &record, &attrs, &updated); err != nil {
			return 0, fmt.Errorf("scan false positive: %w", err)
		}
		*pageTS, *pageID = updated, id
		if updated.After(f.cursor) {
			f.cursor = updated
		}
		if _, dup := f.seen[id]; dup {
			continue
		}
		if len(f.seen) >= maxFeedbackSeen {
			clear(f.seen)
		}
		f.seen[id] = struct{}{}
		// Only streams this collector holds: in a fleet each stream lives on
		// one scorer, and learning elsewhere would create a stray stream.
		if f.e.det.StreamBytes(stream) == 0 {
			continue
		}
		rec, ok := f.canonical(s, record, attrs)
		if !ok {
			f.e.logger.Debug("false positive without a usable record", zap.Int64("id", id))
			continue
		}
		f.e.det.Learn(stream, rec)
		*learned++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read false positives: %w", err)
	}
	return n, nil
}

// storedRecord is the part of the exporter's record document that the
// canonical form uses.
type storedRecord struct {
	Body           any    `json:"body"`
	SeverityText   string `json:"severity_text"`
	SeverityNumber int32  `json:"severity_number"`
	Name           string `json:"name"`
	Kind           string `json:"kind"`
	Status         struct {
		Code string `json:"code"`
	} `json:"status"`
	StartTime string `json:"start_time"`
	EndTime   string `json:"end_time"`
}

// canonical rebuilds the record the processor scored from what the
// exporter stored, and returns it in the form Score saw.
func (f *feedback) canonical(s *scratch, record, attrs []byte) (cbad.Record, bool) {
	var doc storedRecord
	if err := json.Unmarshal(record, &doc); err != nil {
		return cbad.Record{}, false
	}
	var attrMap map[string]any
	if len(attrs) > 0 {
		_ = json.Unmarshal(attrs, &attrMap)
	}
	limit := f.e.cfg.Detector.MaxRecordBytes
	switch f.e.signal {
	case signalLogs:
		lr := plog.NewLogRecord()
		if err := lr.Body().FromRaw(doc.Body); err != nil {
			return cbad.Record{}, false
		}
		lr.SetSeverityText(doc.SeverityText)
		lr.SetSeverityNumber(plog.SeverityNumber(doc.SeverityNumber))
		_ = lr.Attributes().FromRaw(attrMap)
		s.rec = f.e.appendLogRecord(s.rec[:0], s, lr, limit)
		return cbad.Record{Data: s.rec, Severity: int(doc.SeverityNumber)}, true
	case signalTraces:
		sp := ptrace.NewSpan()
		sp.SetName(doc.Name)
		sp.SetKind(spanKind(doc.Kind))
		sp.Status().SetCode(statusCode(doc.Status.Code))
		start, err1 := time.Parse(time.RFC3339Nano, doc.StartTime)
		end, err2 := time.Parse(time.RFC3339Nano, doc.EndTime)
		if err1 == nil && err2 == nil {
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		}
		_ = sp.Attributes().FromRaw(attrMap)
		s.rec = f.e.appendSpan(s.rec[:0], s, sp, limit)
		return cbad.Record{Data: s.rec, Severity: spanSeverity(sp)}, true
	}
	return cbad.Record{}, false
}

func spanKind(s string) ptrace.SpanKind {
	for k := ptrace.SpanKindUnspecified; k <= ptrace.SpanKindConsumer; k++ {
		if k.String() == s {
			return k
		}
	}
	return ptrace.SpanKindUnspecified
}

func statusCode(s string) ptrace.StatusCode {
	for c := ptrace.StatusCodeUnset; c <= ptrace.StatusCodeError; c++ {
		if c.String() == s {
			return c
		}
	}
	return ptrace.StatusCodeUnset
}
