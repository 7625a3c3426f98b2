package driftlockprocessor

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/cbad"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// BenchmarkFeedbackPull compares the two feedback sources over the same
// store of 1000 false positives of one held stream: "first" learns all of
// them (fresh memory each iteration), "steady" is a pull with nothing new.
// The store source (driftlock_feedback extension) is the baseline; read the endpoint's numbers as a ratio
// against it from the same run.
func BenchmarkFeedbackPull(b *testing.B) {
	const n = 1000
	st, dsn := storetest.Open(b)
	ctx := context.Background()
	for i := range n {
		_, err := storetest.Pool(st).Exec(ctx, `
INSERT INTO anomalies (fingerprint, signal, stream, service, observed_at, detected_at, score, p_value,
  severity, status, summary, explanation, record, attributes, resource)
VALUES ($1, 'logs', 'logs/checkout', 'checkout', now(), now(), 9, 0.001, 'INFO', 'false_positive', $2, '',
  $3::jsonb, '{"http.route":"/quote"}'::jsonb, '{"service.name":"checkout"}'::jsonb)`,
			fmt.Sprintf("bench-%d", i), fmt.Sprintf("retrying quote %d", i),
			fmt.Sprintf(`{"body":"retrying shipment quote from carrier-%d after upstream timeout (attempt %d)","severity_text":"INFO","severity_number":9}`, i%9, 10000+i))
		require.NoError(b, err)
	}
	a := startAPI(b, st, false, func(c *api.Config) { c.RateLimit, c.RateBurst = 1e6, 1e6 }).URL
	key := createKey(b, st, "bench", store.RoleViewer)
	host := feedbackHost(b, dsn)

	sources := []struct {
		name string
		set  func(*Config)
	}{
		{"source", func(c *Config) { c.Feedback.Source = &feedbackID }},
		{"endpoint", func(c *Config) {
			c.Feedback.Endpoint = a
			c.Feedback.APIKey = configopaque.String(key)
		}},
	}
	for _, src := range sources {
		cfg := testConfig()
		src.set(cfg)
		require.NoError(b, cfg.Validate())
		e, err := newEngine(testSettings(), cfg, logsForm{})
		require.NoError(b, err)
		require.NoError(b, e.fb.src.start(ctx, host))
		e.det.Learn("logs/checkout", cbad.Record{Data: []byte("warm")}) // the stream is held here
		reset := func() {
			e.fb.seen = map[int64]struct{}{}
			if q, ok := e.fb.src.(*storeFeedback); ok {
				q.cursor = q.cursor.AddDate(-100, 0, 0)
			}
		}
		b.Run(src.name+"/first", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				reset()
				b.StartTimer()
				learned, err := e.fb.pull(ctx)
				if err != nil || learned != n {
					b.Fatalf("learned %d, %v", learned, err)
				}
			}
		})
		b.Run(src.name+"/steady", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if learned, err := e.fb.pull(ctx); err != nil || learned != 0 {
					b.Fatalf("learned %d, %v", learned, err)
				}
			}
		})
		e.fb.src.close()
		e.tb.Shutdown()
	}
}
