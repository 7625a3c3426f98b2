package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/notify/amtest"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

func TestIncidentsUsageErrors(t *testing.T) {
	t.Setenv("DRIFTLOCK_DSN", "postgres://127.0.0.1:1/x")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"incidents"}, "missing action"},
		{[]string{"incidents", "replay", "--since", "all"}, `unknown action "replay"`},
		{[]string{"incidents", "rebuild"}, "--since: required"},
		{[]string{"incidents", "rebuild", "--since", "yesterday"}, `"yesterday" is neither`},
		{[]string{"incidents", "rebuild", "--since", "all", "--incidents-config", "/nonexistent.yaml"}, "/nonexistent.yaml"},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}

// faultyHours stores two hours of routine flags in two services, ending
// now, with a burst of errors in the quiet one three minutes ago.
func faultyHours(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	from := now.Add(-2 * time.Hour)
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []store.Anomaly
	add := func(svc string, at time.Time, reason, kind string) {
		rows = append(rows, store.Anomaly{Fingerprint: fmt.Sprintf("cmd-%d", len(rows)), Signal: store.SignalLogs,
			Stream: svc + "/logs", Service: svc, ObservedAt: at, Score: 1, PValue: 0.008, Summary: "line of " + svc,
			Attributes: map[string]any{attrs.Reason: reason, attrs.Kind: kind}})
	}
	for at := from; at.Before(now); at = at.Add(time.Second) {
		if rng.Float64() < 5.0/60 {
			add("noisy", at, attrs.ReasonNovel, "routine")
		}
		if rng.Float64() < 0.05/60 {
			add("quiet", at, attrs.ReasonNovel, "routine")
		}
	}
	for i := range 12 {
		add("quiet", now.Add(-3*time.Minute+time.Duration(i)*5*time.Second), attrs.ReasonErrors, "k-err")
	}
	if _, err := st.InsertAnomalies(ctx, rows); err != nil {
		t.Fatal(err)
	}
}

// TestServeCorrelatesAndAlerts runs the real serve command with its
// correlator and a real Alertmanager: the incident of the stored fault is
// opened, shown in /metrics, and firing in Alertmanager; a rebuild asked
// from the command line is served by the running correlator.
func TestServeCorrelatesAndAlerts(t *testing.T) {
	am := amtest.Start(t, "")
	dsn := storetest.NewDatabase(t)
	faultyHours(t, dsn)
	var keyOut, errOut bytes.Buffer
	if code := run([]string{"keys", "create", "--dsn", dsn, "--name", "inc", "--role", "viewer"}, &keyOut, &errOut); code != 0 {
		t.Fatalf("keys create: %s", errOut.String())
	}
	key := strings.TrimSpace(keyOut.String())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"serve", "--dsn", dsn, "--addr", "127.0.0.1:0", "--search-index=false",
			"--alertmanager-url", am, "--public-url", "http://driftlock.test"}, stdout, stderr)
	}()
	defer func() {
		_ = syscall.Kill(syscall.Getpid(), syscall.SIGINT)
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d: %s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop on SIGINT")
		}
	}()
	re := regexp.MustCompile(`listening on (http://[0-9.:]+)/`)
	var base string
	for range 400 {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if base == "" {
		t.Fatalf("serve never listened; stderr: %s", stderr.String())
	}
	metrics := func() string {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; serve stderr:\n%s", what, stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	wait("the open incident in /metrics", func() bool {
		m := metrics()
		return strings.Contains(m, `driftlock_incidents_open{service="quiet"} 1`) && strings.Contains(m, "driftlock_correlator_active 1")
	})
	var alerts []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	wait("the alert in Alertmanager", func() bool {
		res, err := http.Get(am + "/api/v2/alerts")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		alerts = nil
		return json.NewDecoder(res.Body).Decode(&alerts) == nil && len(alerts) > 0
	})
	if alerts[0].Labels["service"] != "quiet" || alerts[0].Labels["alertname"] != "DriftlockIncident" ||
		!strings.Contains(alerts[0].Annotations["incident_url"], "http://driftlock.test/#/incidents/") {
		t.Fatalf("alert %+v", alerts[0])
	}
	// A rebuild while serve runs: serve's correlator does it, the command waits.
	var out bytes.Buffer
	errOut.Reset()
	if code := run([]string{"incidents", "rebuild", "--since", "3h", "--dsn", dsn, "--timeout", "30s"}, &out, &errOut); code != 0 {
		t.Fatalf("incidents rebuild exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "active correlator") || !regexp.MustCompile(`rebuilt in .*: [1-9]\d* incidents active since .*, 1 open`).MatchString(out.String()) {
		t.Fatalf("rebuild output:\n%s", out.String())
	}
}

func TestIncidentsRebuildWithoutServe(t *testing.T) {
	dsn := storetest.NewDatabase(t)
	faultyHours(t, dsn)
	var out, errOut bytes.Buffer
	if code := run([]string{"incidents", "rebuild", "--since", "all", "--dsn", dsn}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if strings.Contains(out.String(), "active correlator") || !regexp.MustCompile(`: [1-9]\d* incidents active in all, 1 open`).MatchString(out.String()) {
		t.Fatalf("output:\n%s", out.String())
	}
}
