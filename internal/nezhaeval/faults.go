package nezhaeval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/driftlock/driftlock/internal/replay"
)

// Fault is one injected fault of a Nezha day (fault_list.json).
type Fault struct {
	At      time.Time // inject_time, on the telemetry's clock (UTC)
	Pod     string
	Service string // the pod's workload
	Type    string // return, exception, cpu_contention, network_delay, ...
}

// ReadFaults reads DIR/fault_list.json: an object of hour -> list of
// {inject_time, inject_pod, inject_type}, any number of faults of any type.
// The faults are returned in time order.
func ReadFaults(dir string) ([]Fault, error) {
	path := filepath.Join(dir, "fault_list.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var byHour map[string][]struct {
		InjectTime string `json:"inject_time"`
		Pod        string `json:"inject_pod"`
		Type       string `json:"inject_type"`
	}
	if err := json.Unmarshal(b, &byHour); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Fault
	for hour, fs := range byHour {
		for i, f := range fs {
			// inject_time is on the data's clock; inject_timestamp is not
			// (8 h off on the published days), so it is not used.
			at, err := time.ParseInLocation("2006-01-02 15:04:05", strings.TrimSpace(f.InjectTime), time.UTC)
			if err != nil {
				return nil, fmt.Errorf("%s: hour %q fault %d: inject_time %q: want \"2006-01-02 15:04:05\"", path, hour, i, f.InjectTime)
			}
			if f.Pod == "" {
				return nil, fmt.Errorf("%s: hour %q fault %d: empty inject_pod", path, hour, i)
			}
			out = append(out, Fault{At: at, Pod: f.Pod, Service: replay.ServiceOfPod(f.Pod), Type: f.Type})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no faults", path)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Service < out[j].Service
	})
	return out, nil
}
