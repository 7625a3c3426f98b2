package replay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/driftlock/driftlock/internal/testutil/otlpsink"
)

// startHTTP serves OTLP/HTTP protobuf; the first `fail` requests get 503
// to exercise the retry.
func startHTTP(t *testing.T, fail int) (string, *otlpsink.Sink) {
	s := &otlpsink.Sink{}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if fail > 0 {
			fail--
			mu.Unlock()
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		mu.Unlock()
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, s
}

func sample(n int) []Record {
	t0 := time.Date(2023, 1, 29, 10, 0, 0, 0, time.UTC)
	var out []Record
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		svc := []string{"a", "b"}[i%2]
		out = append(out,
			Record{Signal: Logs, Time: at, Service: svc, Pod: svc + "-1", Body: "hello", Severity: plog.SeverityNumberInfo, Attrs: map[string]any{"k": "v", "n": int64(i)}},
			Record{Signal: Traces, Time: at, End: at.Add(time.Millisecond), Service: svc, Name: "op", TraceID: [16]byte{1}, SpanID: [8]byte{byte(i + 1)}},
			Record{Signal: Metrics, Time: at, Service: svc, Points: []Point{{Name: "cpu", Unit: "1", Value: float64(i)}, {Name: "mem", Value: 1}}},
		)
	}
	return out
}

func TestSendersDeliverEverything(t *testing.T) {
	recs := sample(300)
	gAddr, gSink := otlpsink.StartGRPC(t)
	hURL, hSink := startHTTP(t, 2)
	for name, tc := range map[string]struct {
		protocol, endpoint string
		s                  *otlpsink.Sink
	}{"grpc": {ProtocolGRPC, gAddr, gSink}, "http": {ProtocolHTTP, hURL, hSink}} {
		t.Run(name, func(t *testing.T) {
			snd, err := NewSender(tc.protocol, tc.endpoint)
			if err != nil {
				t.Fatal(err)
			}
			defer snd.Close()
			var progress strings.Builder
			st, err := Run(context.Background(), SliceSource(recs), snd, Options{BatchSize: 64, Progress: &progress})
			if err != nil {
				t.Fatal(err)
			}
			if st.Logs != 300 || st.Traces != 300 || st.Metrics != 300 || st.Points != 600 {
				t.Fatalf("stats = %+v", st)
			}
			l, tr, m := tc.s.Counts()
			if l != 300 || tr != 300 || m != 600 {
				t.Fatalf("received logs %d spans %d points %d, want 300/300/600", l, tr, m)
			}
			if !strings.Contains(progress.String(), "900 records sent") {
				t.Fatalf("progress %q lacks the final count", progress.String())
			}
			// Resource attributes and record content survive the trip.
			rl := tc.s.Logs()[0].ResourceLogs().At(0)
			svc, _ := rl.Resource().Attributes().Get("service.name")
			pod, _ := rl.Resource().Attributes().Get("k8s.pod.name")
			lr := rl.ScopeLogs().At(0).LogRecords().At(0)
			n, _ := lr.Attributes().Get("n")
			if svc.Str() != "a" || pod.Str() != "a-1" || lr.Body().Str() != "hello" || n.Int() != 0 || !lr.Timestamp().AsTime().Equal(recs[0].Time) {
				t.Fatalf("first log record changed: %v %v %q %v %v", svc.Str(), pod.Str(), lr.Body().Str(), n.Int(), lr.Timestamp())
			}
		})
	}
}

type failingSender struct{ Sender }

func (failingSender) SendLogs(context.Context, plog.Logs) error { return errors.New("refused") }
func (failingSender) Close() error                              { return nil }

func TestRunStopsOnSendError(t *testing.T) {
	_, err := Run(context.Background(), SliceSource(sample(10)), failingSender{}, Options{BatchSize: 3})
	if err == nil || !strings.Contains(err.Error(), "send logs: refused") {
		t.Fatalf("err = %v, want the send error", err)
	}
}

func TestRunLimitAndBadSpeed(t *testing.T) {
	addr, s := otlpsink.StartGRPC(t)
	snd, _ := NewGRPCSender(addr)
	defer snd.Close()
	st, err := Run(context.Background(), SliceSource(sample(10)), snd, Options{Limit: 7})
	if err != nil || st.Records() != 7 {
		t.Fatalf("limit 7: stats %+v err %v", st, err)
	}
	if l, tr, _ := s.Counts(); l+tr != 5 {
		t.Fatalf("received %d logs+spans, want 5 of the first 7 records", l+tr)
	}
	if _, err := Run(context.Background(), SliceSource(nil), snd, Options{Speed: -1}); err == nil {
		t.Fatal("negative speed accepted")
	}
	if _, err := NewSender("udp", "x"); !errors.Is(err, ErrProtocol) {
		t.Fatalf("unknown protocol: %v", err)
	}
}

func TestLineSource(t *testing.T) {
	in := "2024-01-01 INFO started\n\n   \nWARN: disk 91%\r\nplain line\n"
	recs := drain(t, NewLineSource(strings.NewReader(in), "app.log", "app"))
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3 (blank lines skipped)", len(recs))
	}
	if recs[0].Severity != plog.SeverityNumberInfo || recs[1].Severity != plog.SeverityNumberWarn || recs[2].Severity != plog.SeverityNumberUnspecified {
		t.Fatalf("severities %v %v %v", recs[0].Severity, recs[1].Severity, recs[2].Severity)
	}
	if recs[1].Body != "WARN: disk 91%" || recs[0].Service != "app" || recs[0].Signal != Logs {
		t.Fatalf("record = %+v", recs[1])
	}
	long := "ok\n" + strings.Repeat("x", maxLine+10) + "\n"
	src := NewLineSource(strings.NewReader(long), "big.log", "app")
	if _, err := src.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := src.Next()
	if !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), "big.log line 2") {
		t.Fatalf("err = %v, want ErrBadRecord naming big.log line 2", err)
	}
}
