package recorddoc

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// encode is what the store does with a document: JSON (the store's encoder
// also bounds and sanitizes; the exporter's golden tests cover its bytes).
func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

var when = time.Date(2026, 11, 29, 22, 3, 4, 123456789, time.UTC)

func TestLogRoundTrip(t *testing.T) {
	lr := plog.NewLogRecord()
	body := lr.Body().SetEmptyMap()
	body.PutStr("msg", "payment declined")
	body.PutInt("big", 1<<60) // beyond float64's exact integers
	body.PutDouble("ratio", 0.25)
	body.PutEmptySlice("tags").FromRaw([]any{"a", int64(2), true})
	lr.SetSeverityText("WARN")
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(when))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(when.Add(time.Second)))
	lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
	lr.SetEventName("checkout.declined")
	lr.Attributes().PutStr("http.route", "/pay")
	lr.Attributes().PutInt("http.response.status_code", 402)

	got, err := DecodeLog(encode(t, Log(lr)), encode(t, lr.Attributes().AsRaw()))
	require.NoError(t, err)
	assert.Equal(t, lr.Body().AsRaw(), got.Body().AsRaw())
	assert.Equal(t, lr.SeverityText(), got.SeverityText())
	assert.Equal(t, lr.SeverityNumber(), got.SeverityNumber())
	assert.Equal(t, lr.Timestamp(), got.Timestamp())
	assert.Equal(t, lr.ObservedTimestamp(), got.ObservedTimestamp())
	assert.Equal(t, lr.Flags(), got.Flags())
	assert.Equal(t, lr.EventName(), got.EventName())
	assert.Equal(t, lr.Attributes().AsRaw(), got.Attributes().AsRaw())

	// A string body and no attributes (null or absent document).
	lr.Body().SetStr("plain line")
	for _, attrs := range [][]byte{nil, []byte("null"), []byte("{}")} {
		got, err = DecodeLog(encode(t, Log(lr)), attrs)
		require.NoError(t, err)
		assert.Equal(t, "plain line", got.Body().Str())
		assert.Zero(t, got.Attributes().Len())
	}
}

func TestSpanRoundTrip(t *testing.T) {
	sp := ptrace.NewSpan()
	sp.SetName("GET /cart")
	sp.SetKind(ptrace.SpanKindServer)
	sp.Status().SetCode(ptrace.StatusCodeError)
	sp.Status().SetMessage("upstream timeout")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(when))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(when.Add(2 * time.Hour)))
	sp.SetParentSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.TraceState().FromRaw("vendor=x")
	sp.Attributes().PutStr("http.route", "/cart")
	sp.Attributes().PutInt("http.response.status_code", 504)
	for i := range MaxSpanEvents + 3 {
		sp.Events().AppendEmpty().SetName("retry")
		sp.Events().At(i).Attributes().PutInt("n", int64(i))
	}

	doc := Span(sp)
	assert.Len(t, doc[KeyEvents], MaxSpanEvents, "events are bounded")
	assert.Equal(t, int64(MaxSpanEvents+3), doc[KeyEventsTotal])
	assert.InDelta(t, 2*3600*1000.0, doc[KeyDurationMS], 1e-6)

	got, err := DecodeSpan(encode(t, doc), encode(t, sp.Attributes().AsRaw()))
	require.NoError(t, err)
	assert.Equal(t, sp.Name(), got.Name())
	assert.Equal(t, sp.Kind(), got.Kind())
	assert.Equal(t, sp.Status().Code(), got.Status().Code())
	assert.Equal(t, sp.Status().Message(), got.Status().Message())
	assert.Equal(t, sp.StartTimestamp(), got.StartTimestamp())
	assert.Equal(t, sp.EndTimestamp(), got.EndTimestamp())
	assert.Equal(t, sp.ParentSpanID(), got.ParentSpanID())
	assert.Equal(t, sp.TraceState().AsRaw(), got.TraceState().AsRaw())
	assert.Equal(t, sp.Attributes().AsRaw(), got.Attributes().AsRaw())

	// A span that ends before it starts has no duration; unset times stay unset.
	odd := ptrace.NewSpan()
	odd.SetStartTimestamp(10)
	odd.SetEndTimestamp(5)
	assert.Nil(t, Span(odd)[KeyDurationMS])
	got, err = DecodeSpan(encode(t, Span(ptrace.NewSpan())), nil)
	require.NoError(t, err)
	assert.Zero(t, got.StartTimestamp())
	assert.Equal(t, ptrace.SpanKindUnspecified, got.Kind())
}

func TestDecodeRejectsWhatIsNoDocument(t *testing.T) {
	for _, bad := range []string{``, `[]`, `"text"`, `{"body":`, `null`} {
		_, err := DecodeLog([]byte(bad), nil)
		assert.ErrorIs(t, err, ErrNotDocument, "record %q", bad)
		_, err = DecodeSpan([]byte(bad), nil)
		assert.ErrorIs(t, err, ErrNotDocument, "record %q", bad)
	}
	_, err := DecodeLog([]byte(`{"body":"x"}`), []byte(`[1,2]`))
	assert.ErrorIs(t, err, ErrNotDocument, "attributes must be an object")
	// Wrong types in known keys are ignored, not trusted.
	lr, err := DecodeLog([]byte(`{"body":"x","severity_number":"nine","flags":-1,"time":"yesterday"}`), nil)
	require.NoError(t, err)
	assert.Equal(t, plog.SeverityNumberUnspecified, lr.SeverityNumber())
	assert.Zero(t, lr.Timestamp())
	assert.Zero(t, lr.Flags())
}
