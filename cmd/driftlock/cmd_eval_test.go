package main

import (
	"strings"
	"testing"
)

// `eval nezha` refuses what is not a Nezha day with a message naming the
// problem (the full run is internal/nezhaeval's TestNezhaDay).
func TestEvalNezhaBadInput(t *testing.T) {
	_, stderr, code := runCLI(t, "", "eval", "nezha")
	if code == 0 || !strings.Contains(stderr, "needs a Nezha day folder") {
		t.Fatalf("no folder: code %d, stderr %q", code, stderr)
	}
	dir := t.TempDir()
	_, stderr, code = runCLI(t, "", "eval", "nezha", "--quiet", dir)
	if code == 0 || !strings.Contains(stderr, "not a Nezha day folder") || !strings.Contains(stderr, "fault_list.json") {
		t.Fatalf("empty folder: code %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCLI(t, "", "eval", "nezha", dir, "other")
	if code == 0 || !strings.Contains(stderr, "one folder expected") {
		t.Fatalf("two folders: code %d, stderr %q", code, stderr)
	}
}
