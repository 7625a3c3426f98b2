package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Options control a replay.
type Options struct {
	// Speed compresses time: records are sent when (record time - first
	// record time) / Speed has elapsed. 0 sends as fast as possible.
	Speed float64
	// BatchSize is the number of records per OTLP request (all signals
	// together); default 512.
	BatchSize int
	// Limit stops after this many records; 0 means all.
	Limit int
	// Progress receives a status line every ProgressEvery (default 1s) and
	// a final one; nil disables it.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// Stats counts what a replay sent.
type Stats struct {
	Logs, Traces, Metrics int // records per signal (a metrics record is one scrape of a pod)
	Points                int // metric data points
	Requests              int
	Elapsed               time.Duration
}

// Records is the total number of records sent.
func (s Stats) Records() int { return s.Logs + s.Traces + s.Metrics }

func (s Stats) line() string {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Records()) / s.Elapsed.Seconds()
	}
	return fmt.Sprintf("replay: %d records sent (logs %d, spans %d, metric scrapes %d), %.0f records/s, elapsed %s",
		s.Records(), s.Logs, s.Traces, s.Metrics, rate, s.Elapsed.Round(100*time.Millisecond))
}

// Run reads src to the end (or Limit) and sends its records through s.
// A send error stops the replay: nothing is silently dropped.
func Run(ctx context.Context, src Source, s Sender, opt Options) (Stats, error) {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 512
	}
	if opt.ProgressEvery <= 0 {
		opt.ProgressEvery = time.Second
	}
	if opt.Speed < 0 {
		return Stats{}, fmt.Errorf("speed must not be negative: got %v", opt.Speed)
	}
	var st Stats
	start := time.Now()
	lastProgress := start
	var t0 time.Time
	b := newBatch()

	flush := func() error {
		if b.len() == 0 {
			return nil
		}
		if b.n[Logs] > 0 {
			if err := s.SendLogs(ctx, b.logs); err != nil {
				return fmt.Errorf("send logs: %w", err)
			}
			st.Requests++
		}
		if b.n[Traces] > 0 {
			if err := s.SendTraces(ctx, b.traces); err != nil {
				return fmt.Errorf("send traces: %w", err)
			}
			st.Requests++
		}
		if b.n[Metrics] > 0 {
			if err := s.SendMetrics(ctx, b.metrics); err != nil {
				return fmt.Errorf("send metrics: %w", err)
			}
			st.Requests++
		}
		st.Logs += b.n[Logs]
		st.Traces += b.n[Traces]
		st.Metrics += b.n[Metrics]
		b = newBatch()
		now := time.Now()
		st.Elapsed = now.Sub(start)
		if opt.Progress != nil && now.Sub(lastProgress) >= opt.ProgressEvery {
			lastProgress = now
			fmt.Fprintln(opt.Progress, st.line())
		}
		return nil
	}

	for n := 0; opt.Limit == 0 || n < opt.Limit; n++ {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		r, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, err
		}
		if opt.Speed > 0 && !r.Time.IsZero() {
			if t0.IsZero() {
				t0 = r.Time
			}
			due := start.Add(time.Duration(float64(r.Time.Sub(t0)) / opt.Speed))
			if wait := time.Until(due); wait > 0 {
				if err := flush(); err != nil {
					return st, err
				}
				select {
				case <-ctx.Done():
					return st, ctx.Err()
				case <-time.After(time.Until(due)):
				}
			}
		}
		b.add(r)
		st.Points += len(r.Points)
		if b.len() >= opt.BatchSize {
			if err := flush(); err != nil {
				return st, err
			}
		}
	}
	err := flush()
	st.Elapsed = time.Since(start)
	if opt.Progress != nil {
		fmt.Fprintln(opt.Progress, st.line())
	}
	return st, err
}
