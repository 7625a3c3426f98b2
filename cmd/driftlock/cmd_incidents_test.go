package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
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

func TestIncidentsConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("TEST_HOOK_SECRET_CFG", "cfg-secret-value")
	good := write("good.yaml", `correlator:
  name: blue
  idle_advance: 90s
  warmup: 2h
  incident:
    false_incidents_per_hour: 1.5
    quiet: 10m
notify:
  public_url: https://driftlock.example
  alertmanagers:
    - url: http://127.0.0.1:9093
      resend_interval: 30s
      labels: {team: sre}
  webhooks:
    - name: ops
      url: https://hooks.example/x
      secret: {env: TEST_HOOK_SECRET_CFG}
`)
	f := &incidentFlags{config: good, alertmanager: "http://127.0.0.1:9094"}
	ccfg, ncfg, err := f.load()
	if err != nil {
		t.Fatal(err)
	}
	if ccfg.Name != "blue" || ccfg.IdleAdvance != 90*time.Second || ccfg.Warmup != 2*time.Hour || ccfg.Batch != 1000 ||
		ccfg.Incident.FalseIncidentsPerHour != 1.5 || ccfg.Incident.Quiet != 10*time.Minute || ccfg.Incident.Bucket != time.Minute {
		t.Errorf("correlator config %+v", ccfg)
	}
	if len(ncfg.Alertmanagers) != 2 || ncfg.Alertmanagers[0].ResendInterval != 30*time.Second ||
		ncfg.Alertmanagers[0].Labels["team"] != "sre" || ncfg.Webhooks[0].Secret.Env != "TEST_HOOK_SECRET_CFG" {
		t.Errorf("notify config %+v", ncfg)
	}
	for name, c := range map[string]struct{ body, want string }{
		"no secret":     {"notify:\n  webhooks:\n    - url: https://hooks.example/x\n", "webhooks[0].secret: no secret source"},
		"bad duration":  {"correlator:\n  idle_advance: soon\n", "line 2: cannot unmarshal !!str `soon` into time.Duration"},
		"typo":          {"notify:\n  alertmanager:\n    - url: http://x\n", "field alertmanager not found"},
		"negative":      {"correlator:\n  batch: 0\n", "correlator.batch must be in [1, 100000], got 0"},
		"reserved":      {"notify:\n  alertmanagers:\n    - url: http://x\n      labels: {severity: low}\n", `"severity" is set by Driftlock`},
		"not yaml":      {"notify: [", "did not find expected node content"},
		"budget":        {"correlator:\n  incident:\n    false_incidents_per_hour: 0\n", "correlator.incident: false_incidents_per_hour must be in (0, 60], got 0"},
		"incident typo": {"correlator:\n  incident:\n    quite: 5m\n", "field quite not found"},
		"secret in url": {"notify:\n  alertmanagers:\n    - url: ftp://user:cfg-secret-value@x\n", "scheme must be http or https"},
	} {
		f := &incidentFlags{config: write(strings.ReplaceAll(name, " ", "_")+".yaml", c.body)}
		_, _, err := f.load()
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, errUsage) {
			t.Errorf("%s: %v, want a usage error containing %q", name, err, c.want)
		} else if strings.Contains(err.Error(), "cfg-secret-value") {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
	// serve refuses a bad file before touching the database.
	var out, errOut bytes.Buffer
	bad := write("serve_bad.yaml", "notify:\n  webhooks:\n    - url: https://hooks.example/x\n")
	if code := run([]string{"serve", "--dsn", "postgres://127.0.0.1:1/x", "--incidents-config", bad}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "secret") {
		t.Fatalf("serve with a bad incidents config: exit %d, %s", code, errOut.String())
	}
}
