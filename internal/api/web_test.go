package api_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// chromiumPath finds Debian's chromium (scripts/deps installs it).
func chromiumPath() string {
	for _, p := range []string{os.Getenv("DRIFTLOCK_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// needChromium skips the test in -short mode or without a browser.
func needChromium(t *testing.T) string {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	bin := chromiumPath()
	if bin == "" {
		t.Skip("chromium not found (apt-get install -y chromium, or run scripts/deps); set DRIFTLOCK_CHROMIUM to its path")
	}
	return bin
}

// artifactsDir is where screenshots go: $DRIFTLOCK_ARTIFACTS when set (CI
// keeps it), else the test's temporary directory.
func artifactsDir(t *testing.T) string {
	if d := os.Getenv("DRIFTLOCK_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestWebPageInChromium drives the real page in a real headless Chromium
// against a real server and database: log in, filter, receive a live
// anomaly over SSE, open it and resolve it, and take a screenshot.
func TestWebPageInChromium(t *testing.T) {
	bin := needChromium(t)
	e := newEnv(t)
	now := time.Now()
	if err := e.st.UpsertDetector(context.Background(), "cfg-web", []byte(`{"p_value":0.001,"window":256,"min_effect":1.5}`)); err != nil {
		t.Fatal(err)
	}
	for i := range 24 {
		svc := []string{"checkout", "auth", "search"}[i%3]
		e.insert(row{Service: svc, Stream: svc + "/api", Score: 4 + float64(i%7), DetectedAt: now.Add(-time.Duration(i) * 50 * time.Minute),
			Summary: fmt.Sprintf("%s: unusual line #%d", svc, i), DetectorHash: "cfg-web"})
	}
	// Hostile text must show as text, never run.
	e.insert(row{Service: "auth", Summary: `<img src=x onerror="window.pwned=1">`, DetectedAt: now.Add(-2 * time.Minute)})

	b := newBrowser(t, bin)
	ctx, step, eval, poll := b.ctx, b.step, b.eval, poll

	// 1. Load: the login form shows; a wrong key is refused.
	step("load", chromedp.Navigate(e.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#key")))
	step("bad login", chromedp.SendKeys(chromedp.CSS("#key"), "dlk_wrong-key-0123456789"), chromedp.Click(chromedp.CSS("#login")),
		poll(`document.querySelector("#login-error").textContent.includes("unknown API key")`))
	// 2. Log in as an analyst.
	step("login", chromedp.SendKeys(chromedp.CSS("#key"), e.analyst), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#incidents-view")),
		poll(`document.querySelector("#inc-empty").hidden === false`), // no incidents: the page says so
		chromedp.Click(chromedp.CSS("#tab-anomalies")),
		chromedp.WaitVisible(chromedp.CSS("#feed tbody tr")),
		poll(`document.querySelectorAll("#feed tbody tr").length === 25`),
		poll(`document.querySelector("#whoami").textContent === "ann-analyst (analyst)"`),
		poll(`document.querySelectorAll("#timeline polyline").length === 3`))
	if got := eval(`document.cookie`); got != "" {
		t.Fatalf("session cookie readable from JavaScript: %q", got)
	}
	// 3. Filter to one service.
	step("filter", chromedp.SendKeys(chromedp.CSS("#f-service"), "checkout"), chromedp.Click(chromedp.CSS("#apply")),
		poll(`document.querySelectorAll("#feed tbody tr").length === 8 &&
			[...document.querySelectorAll("#feed tbody tr")].every(tr => tr.cells[1].textContent === "checkout")`),
		poll(`document.querySelector("#live-status").textContent === "live"`))
	// 4. A live anomaly arrives over SSE (and one of another service does not).
	e.insert(row{Service: "auth", Summary: "auth: should be filtered out"})
	// Observed a little after the page loaded: a "last 24 hours" window is
	// open-ended, so it still arrives.
	liveID := e.insert(row{Service: "checkout", Stream: "checkout/api", Score: 11.25, PValue: 0.00002, DetectorHash: "cfg-web",
		DetectedAt: time.Now().Add(5 * time.Second),
		Summary:    "checkout: payment provider returned HTTP 599", Record: `{"body":"payment provider returned HTTP 599","attributes":{"http.status":599}}`})[0]
	step("live", poll(fmt.Sprintf(`document.querySelector('#feed tbody tr[data-id="%d"]') !== null`, liveID)),
		poll(`document.querySelectorAll("#feed tbody tr").length === 9`))
	if first := eval(`document.querySelector("#feed tbody tr").cells[7].textContent`); !strings.Contains(first, "HTTP 599") {
		t.Fatalf("live anomaly is not at the top: %q", first)
	}
	// 5. Open it and resolve it with a note.
	step("detail", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#feed tbody tr[data-id="%d"]`, liveID))),
		chromedp.WaitVisible(chromedp.CSS("#detail")),
		poll(`document.querySelector("#d-record").textContent.includes("payment provider returned HTTP 599")`),
		poll(`document.querySelector("#d-explanation").textContent.includes("bits/token")`),
		poll(`document.querySelector("#d-detector").textContent.includes("min_effect")`),
		poll(`document.querySelector("#d-scores").textContent.includes("11.250")`))
	step("resolve", chromedp.SendKeys(chromedp.CSS("#note"), "provider outage, ticket OPS-42"),
		chromedp.Click(chromedp.CSS("#btn-resolve")),
		poll(`document.querySelector("#d-msg").textContent === "Saved: resolved."`),
		poll(fmt.Sprintf(`document.querySelector('#feed tbody tr[data-id="%d"] .st').textContent === "resolved"`, liveID)),
		poll(`document.querySelector("#d-history").textContent.includes("ann-analyst: status_change")`))
	var status, note, actor string
	if err := storetest.Pool(e.st).QueryRow(context.Background(), `SELECT a.status, a.note, l.actor FROM anomalies a JOIN audit_log l ON l.anomaly_id = a.id WHERE a.id = $1`, liveID).
		Scan(&status, &note, &actor); err != nil {
		t.Fatal(err)
	}
	if status != "resolved" || note != "provider outage, ticket OPS-42" || actor != "ann-analyst" {
		t.Fatalf("database after the click: status %q note %q actor %q", status, note, actor)
	}
	// 6. The hostile summary stayed text.
	eval(`document.querySelector("#f-service").value = ""`)
	step("clear filter", chromedp.Click(chromedp.CSS("#apply")),
		poll(`[...document.querySelectorAll("#feed tbody td")].some(td => td.textContent.includes("onerror"))`))
	if v := eval(`String(window.pwned)`); v != "undefined" {
		t.Fatalf("an anomaly summary ran as HTML: window.pwned = %s", v)
	}
	if n := eval(`String(document.querySelectorAll("#feed img").length)`); n != "0" {
		t.Fatalf("anomaly text became %s <img> elements", n)
	}
	// Show the resolved anomaly again for the screenshot.
	step("reselect", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#feed tbody tr[data-id="%d"]`, liveID))),
		poll(`document.querySelector("#d-meta").textContent.includes("resolved")`))
	p := shot(t, ctx, "web-resolved")
	t.Logf("screenshot: %s", p)
}

// TestIncidentPageInChromium drives the incident page: it opens on the open
// incidents, the time-range picker widens and narrows the list in observed
// time, an incident shows its ranked services, a timeline per service, the
// evidence grouped by template with counts and value explanations, a group
// drills down to its records with trace links, and a false-positive triage
// reaches every member in the database. Screenshots go to the artifacts.
func TestIncidentPageInChromium(t *testing.T) {
	bin := needChromium(t)
	e := newEnv(t, func(c *api.Config) { c.TraceURL = "http://jaeger.example:16686/trace/{trace_id}" })
	f := newFixture(e)
	b := newBrowser(t, bin)
	rows := `document.querySelectorAll("#incidents tbody tr").length`

	// 1. It opens on the open incidents, even with a day-old replay: open
	// incidents are in every window until they close.
	b.step("load", chromedp.Navigate(e.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), e.analyst), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#incidents tbody tr")),
		poll(rows+` === 1`),
		poll(`document.querySelector("#live-status").textContent === "live"`))
	first := b.eval(`document.querySelector("#incidents tbody tr").textContent`)
	for _, want := range []string{"ts-basic-service: new ERROR template", "2023-01-29 08:00:00", "1. ts-basic-service", "2. ts-travel-service", "logs", "traces", "metrics", "42"} {
		if !strings.Contains(first, want) {
			t.Fatalf("incident row %q lacks %q", first, want)
		}
	}
	shot(t, b.ctx, "incidents-list")
	// 2. The picker: all states over all time shows both; a custom window
	// around the closed one (observed time, a day back) shows only it.
	b.eval(`document.querySelector("#inc-status").value = ""; "ok"`)
	b.step("all time", chromedp.SetValue(chromedp.CSS("#r-preset"), "all"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#r-preset").dispatchEvent(new Event("change"))`),
		poll(rows+` === 2`))
	b.step("custom window", chromedp.SetValue(chromedp.CSS("#r-preset"), "custom"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#r-preset").dispatchEvent(new Event("change"))`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#r-since").value = "2023-01-29T02:00:00"; document.querySelector("#r-until").value = "2023-01-29T04:00:00"`),
		chromedp.Click(chromedp.CSS("#r-apply")),
		poll(rows+` === 1`),
		poll(fmt.Sprintf(`document.querySelector('#incidents tbody tr[data-id="%d"]') !== null`, f.closed)))
	b.step("back to all", chromedp.SetValue(chromedp.CSS("#r-preset"), "all"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#r-preset").dispatchEvent(new Event("change"))`),
		poll(rows+` === 2`))

	// 3. Open the incident.
	b.step("open incident", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#incidents tbody tr[data-id="%d"]`, f.open))),
		chromedp.WaitVisible(chromedp.CSS("#incident")),
		poll(`document.querySelectorAll("#i-services > li").length === 2`),
		poll(`document.querySelector("#i-services").textContent.includes("callee of 1 troubled service")`),
		poll(`document.querySelectorAll("#i-signals tbody tr").length === 3`),
		poll(`document.querySelectorAll("#i-timeline rect").length === 5`), // 4 minutes of ts-basic-service, 1 of ts-travel-service
		poll(`document.querySelectorAll("#i-groups tbody tr").length === 3`))
	groups := b.eval(`[...document.querySelectorAll("#i-groups tbody tr")].map(tr => tr.textContent).join("\n")`)
	if !strings.HasPrefix(groups, "40ts-basic-servicelogs") || !strings.Contains(groups, "catch price exception") {
		t.Fatalf("the 40 log records are not one group first:\n%s", groups)
	}
	if !strings.Contains(groups, "Observed 0.93, above the expected range 0.05 to 0.2 (x4.65).") ||
		!strings.Contains(groups, "Observed 812, above the expected range 3 to 25 (x32.5).") || !strings.Contains(groups, "callee ts-basic-service") {
		t.Fatalf("numeric anomalies are not explained:\n%s", groups)
	}
	lanes := b.eval(`[...document.querySelectorAll("#i-timeline .lane-label")].map(t => t.textContent).join("|")`)
	if lanes != "ts-basic-service (41)|ts-travel-service (1)" {
		t.Fatalf("timeline lanes %q", lanes)
	}
	// 4. Drill down into the template: its 40 records, in observed order,
	// with ingestion time beside and trace links out.
	b.step("drill down", chromedp.Click(chromedp.CSS(`#i-groups tbody tr[data-group="0"]`)),
		chromedp.WaitVisible(chromedp.CSS("#i-drill")),
		poll(`document.querySelectorAll("#i-members tbody tr").length === 40`))
	if href := b.eval(`document.querySelector("#i-members tbody tr a").href`); href != "http://jaeger.example:16686/trace/00000000000000000000000000000001" {
		t.Fatalf("trace link %q", href)
	}
	if obs := b.eval(`document.querySelector("#i-members tbody tr").cells[0].textContent`); obs != "2023-01-29 08:00:00" {
		t.Fatalf("first record observed at %q", obs)
	}
	shot(t, b.ctx, "incident-detail")
	// 5. Triage: false positive, for the incident and all its members.
	b.step("triage", chromedp.SendKeys(chromedp.CSS("#i-note"), "known deploy noise"),
		chromedp.Click(chromedp.CSS("#i-fp")),
		poll(`document.querySelector("#i-msg").textContent === "Saved: false positive (42 anomalies updated)."`),
		poll(fmt.Sprintf(`document.querySelector('#incidents tbody tr[data-id="%d"]').textContent.includes("false positive")`, f.open)),
		poll(`document.querySelector("#i-history").textContent.includes("ann-analyst: incident_triage")`))
	var fp int
	if err := storetest.Pool(e.st).QueryRow(context.Background(), `SELECT count(*) FROM anomalies WHERE incident_id = $1 AND status = 'false_positive'`, f.open).Scan(&fp); err != nil || fp != 42 {
		t.Fatalf("after the click: %d members are false positives (%v), want 42", fp, err)
	}
	p := shot(t, b.ctx, "incident-triaged")
	t.Logf("screenshots: %s", filepath.Dir(p))
	// 6. Out to every anomaly of the incident's time (5 minutes either
	// side): its 42 members and the routine record beside them.
	b.step("window", chromedp.Click(chromedp.CSS("#i-window")),
		chromedp.WaitVisible(chromedp.CSS("#anomalies-view")),
		poll(`document.querySelectorAll("#feed tbody tr").length === 43`),
		poll(`document.querySelector("#r-since").value.startsWith("2023-01-29T07:55")`))
	if last := b.eval(`[...document.querySelectorAll("#feed tbody tr")].pop().cells[0].textContent`); last != "2023-01-29 08:00:00" {
		t.Fatalf("oldest record in the window observed at %q", last)
	}
}

// browser is one headless Chromium for one test.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, bin string) *browser {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1500, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // start the browser without a timeout
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// step runs actions, failing the test (with a screenshot) after 30 s.
func (b *browser) step(name string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, c := context.WithTimeout(b.ctx, 30*time.Second)
	defer c()
	if err := chromedp.Do(sctx, steps...); err != nil {
		shot(b.t, b.ctx, "failed-"+name)
		b.t.Fatalf("%s: %v", name, err)
	}
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// poll waits until js is true.
func poll(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))
}

func shot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	sctx, c := context.WithTimeout(ctx, 20*time.Second)
	defer c()
	buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(artifactsDir(t), name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
