package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// requireDistro skips under -short and builds the distro (no database needed).
func requireDistro(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped under -short (builds the collector distribution)")
	}
	return collectorBinary(t)
}

type componentsOut struct {
	Processors []componentInfo `yaml:"processors"`
	Exporters  []componentInfo `yaml:"exporters"`
	Receivers  []componentInfo `yaml:"receivers"`
	Extensions []componentInfo `yaml:"extensions"`
}

type componentInfo struct {
	Name      string            `yaml:"name"`
	Module    string            `yaml:"module"`
	Stability map[string]string `yaml:"stability"`
}

func components(t *testing.T, bin string) componentsOut {
	t.Helper()
	out, err := exec.Command(bin, "components").CombinedOutput()
	if err != nil {
		t.Fatalf("%s components: %v\n%s", bin, err, out)
	}
	var c componentsOut
	if err := yaml.Unmarshal(out, &c); err != nil {
		t.Fatalf("components output is not YAML: %v\n%s", err, out)
	}
	return c
}

func find(list []componentInfo, name string) (componentInfo, bool) {
	for _, c := range list {
		if c.Name == name {
			return c, true
		}
	}
	return componentInfo{}, false
}

// requireDriftlock checks both driftlock components are listed, with a
// stability for every signal.
func requireDriftlock(t *testing.T, c componentsOut) {
	t.Helper()
	for kind, list := range map[string][]componentInfo{"processor": c.Processors, "exporter": c.Exporters} {
		d, ok := find(list, "driftlock")
		if !ok {
			t.Fatalf("no driftlock %s in `components`", kind)
		}
		for _, sig := range []string{"logs", "traces", "metrics"} {
			if s := d.Stability[sig]; s != "Alpha" && s != "Beta" && s != "Development" {
				t.Errorf("driftlock %s: %s stability %q, want Development/Alpha/Beta", kind, sig, s)
			}
		}
	}
}

func TestDistroComponents(t *testing.T) {
	c := components(t, requireDistro(t))
	requireDriftlock(t, c)
	// The manifest's other components (builder-config.yaml).
	want := map[string][]string{
		"receivers":  {"otlp", "file_log"},
		"processors": {"batch", "memory_limiter", "filter", "transform"},
		"exporters":  {"debug", "otlp_grpc", "otlp_http", "load_balancing", "file"},
		"extensions": {"driftlock_feedback", "health_check", "file_storage", "pprof", "zpages"},
	}
	lists := map[string][]componentInfo{"receivers": c.Receivers, "processors": c.Processors, "exporters": c.Exporters, "extensions": c.Extensions}
	for kind, names := range want {
		for _, n := range names {
			if _, ok := find(lists[kind], n); !ok {
				t.Errorf("%s %q missing from `components`", kind, n)
			}
		}
	}
}

// TestValidateExampleConfigs runs `otelcol-driftlock validate` on every
// config in config/ and on deploy/collector.yaml, and on a broken one that must fail naming the field.
func TestValidateExampleConfigs(t *testing.T) {
	bin := requireDistro(t)
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "config", "*.yaml"))
	if len(files) < 4 {
		t.Fatalf("want at least 4 example configs in config/, found %d", len(files))
	}
	// The container image's default config too.
	files = append(files, filepath.Join(root, "deploy", "collector.yaml"))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cmd := exec.Command(bin, "validate", "--config", f)
			cmd.Env = append(os.Environ(), "DRIFTLOCK_DSN=postgres://driftlock@127.0.0.1:5432/driftlock?sslmode=disable")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("validate %s: %v\n%s", f, err, out)
			}
		})
	}
	cmd := exec.Command(bin, "validate", "--config", filepath.Join(root, "e2e", "testdata", "bad-p-value.yaml"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted p_value 1.5:\n%s", out)
	}
	if !strings.Contains(string(out), "p_value") {
		t.Fatalf("validate error does not name p_value:\n%s", out)
	}
}

// builderBinary finds the OpenTelemetry Collector Builder, installing the
// pinned version when it is missing.
func builderBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("builder"); err == nil {
		if out, _ := exec.Command(p, "version").CombinedOutput(); strings.Contains(string(out), "0.165.0") {
			return p
		}
	}
	gobin, _ := exec.Command("go", "env", "GOBIN").Output()
	dir := strings.TrimSpace(string(gobin))
	if dir == "" {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		dir = filepath.Join(strings.TrimSpace(string(gopath)), "bin")
	}
	p := filepath.Join(dir, "builder")
	if runtime.GOOS == "windows" {
		p += ".exe"
	}
	if out, err := exec.Command(p, "version").CombinedOutput(); err == nil && strings.Contains(string(out), "0.165.0") {
		return p
	}
	if out, err := exec.Command("go", "install", "go.opentelemetry.io/collector/cmd/builder@v0.165.0").CombinedOutput(); err != nil {
		t.Skipf("builder not installed and `go install` failed (offline?): %v\n%s", err, out)
	}
	return p
}

// TestGeneratedSourcesMatchManifest is `make check-generated` as a test.
func TestGeneratedSourcesMatchManifest(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped under -short (runs the builder)")
	}
	builderBinary(t)
	cmd := exec.Command("scripts/distro", "check")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cmd/otelcol-driftlock is stale against builder-config.yaml (run `make generate`):\n%s", out)
	}
}

// TestPlatformTeamManifest runs the builder on a platform team's minimal
// manifest (testdata/platform-manifest.yaml: gomod + import lines for the
// processor and exporter, this checkout wired through replaces) in a temp
// dir, builds the result and checks that it lists both components.
func TestPlatformTeamManifest(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped under -short (runs the builder and compiles a collector)")
	}
	builder := builderBinary(t)
	root := repoRoot(t)
	tmp := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(root, "e2e", "testdata", "platform-manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := strings.NewReplacer("OUTPUT", filepath.Join(tmp, "out"), "REPO", root).Replace(string(raw))
	if err := os.WriteFile(filepath.Join(tmp, "manifest.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	// The builder resolves modules (go mod tidy) and generates; the
	// compilation is ours, without the builder's -trimpath, so it reuses
	// the build cache of the distro build.
	cmd := exec.Command(builder, "--config", filepath.Join(tmp, "manifest.yaml"), "--skip-compilation")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("builder: %v\n%s", err, out)
	}
	bin := filepath.Join(tmp, "otelcol-platform")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(tmp, "out")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the generated collector: %v\n%s", err, out)
	}
	c := components(t, bin)
	requireDriftlock(t, c)
	d, _ := find(c.Processors, "driftlock")
	if !strings.HasPrefix(d.Module, "github.com/driftlock/driftlock") {
		t.Fatalf("driftlock processor module = %q", d.Module)
	}
}
