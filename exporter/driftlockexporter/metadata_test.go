package driftlockexporter

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/driftlock/driftlock/exporter/driftlockexporter/internal/metadata"
)

// metadata.yaml, documentation.md and the hand-written internal/metadata
// must agree (mdatagen would generate them from one file).
func TestMetadataAgrees(t *testing.T) {
	cm, err := confmaptest.LoadConf("metadata.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Get("type") != metadata.Type.String() {
		t.Fatalf("metadata.yaml type %v, code %v", cm.Get("type"), metadata.Type)
	}
	alpha, _ := cm.Get("status::stability::alpha").([]any)
	if len(alpha) != 3 {
		t.Fatalf("stability alpha = %v, want logs, traces, metrics", alpha)
	}
	metrics, _ := cm.Get("telemetry::metrics").(map[string]any)
	var yamlNames []string
	for k := range metrics {
		yamlNames = append(yamlNames, "otelcol_"+k)
	}
	sort.Strings(yamlNames)

	doc, err := os.ReadFile("documentation.md")
	if err != nil {
		t.Fatal(err)
	}
	var docNames []string
	for _, m := range regexp.MustCompile(`(?m)^### (otelcol_\w+)$`).FindAllStringSubmatch(string(doc), -1) {
		docNames = append(docNames, m[1])
	}
	sort.Strings(docNames)

	code, err := os.ReadFile("internal/metadata/generated_telemetry.go")
	if err != nil {
		t.Fatal(err)
	}
	var codeNames []string
	for _, m := range regexp.MustCompile(`"(otelcol_\w+)"`).FindAllStringSubmatch(string(code), -1) {
		codeNames = append(codeNames, m[1])
	}
	sort.Strings(codeNames)

	if strings.Join(yamlNames, ",") != strings.Join(docNames, ",") || strings.Join(yamlNames, ",") != strings.Join(codeNames, ",") {
		t.Fatalf("telemetry names differ:\nmetadata.yaml    %v\ndocumentation.md %v\ncode             %v", yamlNames, docNames, codeNames)
	}
	if len(codeNames) != 8 {
		t.Fatalf("%d metrics, want 8", len(codeNames))
	}
}
