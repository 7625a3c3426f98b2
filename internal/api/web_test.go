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
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	bin := chromiumPath()
	if bin == "" {
		t.Skip("chromium not found (apt-get install -y chromium, or run scripts/deps); set DRIFTLOCK_CHROMIUM to its path")
	}
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
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // start the browser without a timeout
		t.Fatalf("start chromium: %v", err)
	}
	step := func(name string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, c := context.WithTimeout(ctx, 30*time.Second)
		defer c()
		if err := chromedp.Do(sctx, steps...); err != nil {
			shot(t, ctx, "failed-"+name)
			t.Fatalf("%s: %v", name, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	poll := func(js string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))
	}

	// 1. Load: the login form shows; a wrong key is refused.
	step("load", chromedp.Navigate(e.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#key")))
	step("bad login", chromedp.SendKeys(chromedp.CSS("#key"), "dlk_wrong-key-0123456789"), chromedp.Click(chromedp.CSS("#login")),
		poll(`document.querySelector("#login-error").textContent.includes("unknown API key")`))
	// 2. Log in as an analyst.
	step("login", chromedp.SendKeys(chromedp.CSS("#key"), e.analyst), chromedp.Click(chromedp.CSS("#login")),
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
	liveID := e.insert(row{Service: "checkout", Stream: "checkout/api", Score: 11.25, PValue: 0.00002, DetectorHash: "cfg-web",
		Summary: "checkout: payment provider returned HTTP 599", Record: `{"body":"payment provider returned HTTP 599","attributes":{"http.status":599}}`})[0]
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
