package otlpsink

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

func TestServeHTTP(t *testing.T) {
	s := &Sink{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("x")
	good, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, ctype string
		body        []byte
		want        int
	}{
		{"/v1/logs", "application/x-protobuf", good, http.StatusOK},
		{"/v1/logs", "application/json", good, http.StatusUnsupportedMediaType},
		{"/v1/traces", "application/x-protobuf", []byte{0xff, 0xff}, http.StatusBadRequest},
		{"/v1/other", "application/x-protobuf", good, http.StatusNotFound},
	} {
		resp, err := http.Post(srv.URL+tc.path, tc.ctype, bytes.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: status %d, want %d", tc.path, tc.ctype, resp.StatusCode, tc.want)
		}
	}
	if l, sp, p := s.Counts(); l != 1 || sp != 0 || p != 0 {
		t.Fatalf("counts %d/%d/%d, want only the one good log record", l, sp, p)
	}
	if got := s.Logs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str(); got != "x" {
		t.Fatalf("body %q", got)
	}
}
