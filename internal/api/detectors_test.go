package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDetectors(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for _, d := range []struct{ hash, config string }{
		{"h-old", `{"p_value":0.01,"window":256}`},
		{"h-new", `{"p_value":0.005,"window":512}`},
		{"h-idle", `{"p_value":0.05}`},
	} {
		if err := e.st.UpsertDetector(ctx, d.hash, []byte(d.config)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // distinct last_seen, for the order
	}
	e.insert(row{DetectorHash: "h-old"}, row{DetectorHash: "h-old"}, row{DetectorHash: "h-new"}, row{})
	if err := e.st.UpsertDetector(ctx, "h-new", nil); err != nil { // seen again: moves last_seen, keeps config
		t.Fatal(err)
	}

	r := e.get("/v1/detectors", e.viewer)
	wantCode(t, r, http.StatusOK)
	var list struct {
		Items []struct {
			ConfigHash string         `json:"config_hash"`
			Config     map[string]any `json:"config"`
			FirstSeen  time.Time      `json:"first_seen"`
			LastSeen   time.Time      `json:"last_seen"`
			Anomalies  int64          `json:"anomalies"`
		} `json:"items"`
		Limit int `json:"limit"`
	}
	r.json(t, &list)
	var got []string
	for _, d := range list.Items {
		got = append(got, fmt.Sprintf("%s:%d", d.ConfigHash, d.Anomalies))
		if d.FirstSeen.IsZero() || d.LastSeen.Before(d.FirstSeen) {
			t.Errorf("%s: first %v last %v", d.ConfigHash, d.FirstSeen, d.LastSeen)
		}
	}
	if strings.Join(got, " ") != "h-new:1 h-idle:0 h-old:2" || list.Limit != 100 {
		t.Fatalf("detectors (most recently seen first) %v, limit %d", got, list.Limit)
	}
	if list.Items[0].Config["window"] != 512.0 {
		t.Fatalf("h-new config %v", list.Items[0].Config)
	}

	r = e.get("/v1/detectors?limit=1", e.viewer)
	r.json(t, &list)
	if len(list.Items) != 1 || list.Items[0].ConfigHash != "h-new" {
		t.Fatalf("limit=1: %+v", list.Items)
	}

	r = e.get("/v1/detectors/h-old", e.viewer)
	wantCode(t, r, http.StatusOK)
	var one struct {
		ConfigHash string         `json:"config_hash"`
		Config     map[string]any `json:"config"`
		Anomalies  int64          `json:"anomalies"`
	}
	r.json(t, &one)
	if one.ConfigHash != "h-old" || one.Anomalies != 2 || one.Config["window"] != 256.0 {
		t.Fatalf("h-old: %+v", one)
	}

	for _, c := range []struct {
		path, param string
		code        int
	}{
		{"/v1/detectors/unknown", "", http.StatusNotFound},
		{"/v1/detectors/" + strings.Repeat("x", 2000), "hash", http.StatusBadRequest},
		{"/v1/detectors/a%00b", "hash", http.StatusBadRequest},
		{"/v1/detectors/h-old?verbose=1", "verbose", http.StatusBadRequest},
		{"/v1/detectors?limit=0", "limit", http.StatusBadRequest},
		{"/v1/detectors?limit=1&limit=2", "limit", http.StatusBadRequest},
		{"/v1/detectors?service=x", "service", http.StatusBadRequest},
	} {
		r := e.get(c.path, e.viewer)
		wantCode(t, r, c.code)
		if p := r.problem(t); c.param != "" && !strings.Contains(fmt.Sprint(p["invalid_params"]), "name:"+c.param+" ") {
			t.Errorf("%s: problem does not name %s: %v", c.path, c.param, p)
		}
	}
}
