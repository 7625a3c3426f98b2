package synth

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/replay"
)

func all(t *testing.T, g *Generator) []replay.Record {
	t.Helper()
	var out []replay.Record
	for {
		r, err := g.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
}

var start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func TestDeterministic(t *testing.T) {
	a, _ := New(Config{Seed: 3, Steps: 200, Start: start})
	b, _ := New(Config{Seed: 3, Steps: 200, Start: start})
	c, _ := New(Config{Seed: 4, Steps: 200, Start: start})
	ra, rb, rc := all(t, a), all(t, b), all(t, c)
	if !reflect.DeepEqual(ra, rb) {
		t.Fatal("same seed, different streams")
	}
	if reflect.DeepEqual(ra, rc) {
		t.Fatal("different seeds, same stream")
	}
	if len(ra) != a.Total() || a.Total() != 200*4*3 {
		t.Fatalf("%d records, Total %d", len(ra), a.Total())
	}
}

// TestFaultsAreWhereTheySay checks the ground truth: inside a fault window
// the service's signal misbehaves, outside it never does, and the stream
// is in time order.
func TestFaultsAreWhereTheySay(t *testing.T) {
	g, err := New(Config{Steps: 600, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Faults()) != 3 {
		t.Fatalf("%d default faults, want 3", len(g.Faults()))
	}
	inside := map[string]int{}
	var prev time.Time
	for _, r := range all(t, g) {
		if r.Time.Before(prev) {
			t.Fatalf("record at %s after one at %s", r.Time, prev)
		}
		prev = r.Time
		if r.Service == "" || r.Pod == "" || !strings.HasPrefix(r.Pod, r.Service+"-") {
			t.Fatalf("record without service/pod: %+v", r)
		}
		f, faulty := g.InFault(r.Service, r.Signal, r.Time)
		var bad bool
		switch r.Signal {
		case replay.Logs:
			bad = strings.Contains(r.Body, "Exception")
		case replay.Traces:
			bad = r.StatusCode == ptrace.StatusCodeError
		case replay.Metrics:
			bad = r.Points[0].Value > 0.8
		}
		if bad != faulty {
			t.Fatalf("%s %s at %s: faulty=%v but record looks faulty=%v: %+v", r.Service, r.Signal, r.Time, faulty, bad, r)
		}
		if faulty {
			inside[f.Kind]++
		}
	}
	if inside[KindException] != 12 || inside[KindErrorSpans] != 12 || inside[KindCPU] != 10 {
		t.Fatalf("records inside faults = %v", inside)
	}
	for _, f := range g.Faults() {
		if f.End.Sub(f.Start) != time.Duration(f.Steps)*time.Second || f.Start.Before(start.Add(300*time.Second)) {
			t.Fatalf("fault %+v: bad window", f)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"unknown service": {Steps: 100, Faults: []FaultSpec{{Service: "nope", Signal: replay.Logs, Kind: KindException, AtStep: 1, Steps: 1}}},
		"past the end":    {Steps: 100, Faults: []FaultSpec{{Service: "checkout", Signal: replay.Logs, Kind: KindException, AtStep: 95, Steps: 10}}},
		"unknown kind":    {Steps: 100, Faults: []FaultSpec{{Service: "checkout", Signal: replay.Logs, Kind: "meteor", AtStep: 1, Steps: 1}}},
		"negative steps":  {Steps: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
	g, err := New(Config{Steps: 50, Faults: []FaultSpec{}})
	if err != nil || len(g.Faults()) != 0 {
		t.Fatalf("explicit no faults: %v %v", g.Faults(), err)
	}
}
