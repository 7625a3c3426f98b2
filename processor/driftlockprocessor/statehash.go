package driftlockprocessor

import (
	"encoding/json"
	"hash/fnv"
	"reflect"
	"strconv"
	"strings"
)

// fieldRole says what a configuration field does to the detector, and so
// which identities it enters:
//
//   - roleState shapes the learned state (baselines, calibration sets,
//     stream keys, canonical forms): it enters the checkpoint's state hash,
//     so a checkpoint is restored only under the same values, and the
//     effective configuration (driftlock.config, driftlock.config_hash);
//   - roleVerdict changes verdicts but not what was learned: it enters
//     the effective configuration only, so tuning it and restarting keeps
//     the learned state;
//   - roleOperational changes neither (which signals run, what is
//     written, where state and feedback come from).
type fieldRole int

const (
	roleState fieldRole = iota + 1
	roleVerdict
	roleOperational
)

// configRoles classifies every configuration field by its mapstructure
// path. A path names a leaf, or a whole subtree (feedback). Every field of
// Config, cbad.Config included, must be reachable here: TestConfigRoles
// walks the structs and fails on a field added without a role.
var configRoles = map[string]fieldRole{
	"detector.compressor":               roleState,
	"detector.baseline_size":            roleState,
	"detector.numeric_baseline_size":    roleState,
	"detector.numeric_calibration_size": roleState,
	"detector.hop":                      roleState,
	"detector.calibration_size":         roleState,
	"detector.max_record_bytes":         roleState,
	"detector.canonicalize":             roleState,
	"detector.rate_bucket":              roleState, // record counts per bucket of this width
	"detector.latency_baseline_size":    roleState,
	"detector.latency_window":           roleState, // the recent calls counted
	"detector.warmup":                   roleVerdict,
	"detector.p_value":                  roleVerdict,
	"detector.flag_budget":              roleVerdict,
	"detector.rate_p_value":             roleVerdict,
	"detector.min_effect":               roleVerdict,
	"detector.max_streams":              roleVerdict,
	"detector.idle_timeout":             roleVerdict,
	"detector.drift_windows":            roleVerdict,
	"detector.admit_after":              roleVerdict,
	"detector.permutations":             roleVerdict,
	"detector.seed":                     roleVerdict,
	"detector.use_severity":             roleVerdict,
	"detector.latency_quantile":         roleVerdict,
	"detector.latency_p_value":          roleVerdict,
	"detector.latency_min_ratio":        roleVerdict,

	"stream_by":           roleState,
	"include_scope_name":  roleState,
	"annotate":            roleOperational,
	"include_config_hash": roleOperational,

	"logs.enabled":                 roleOperational,
	"logs.attributes":              roleState,
	"traces.enabled":               roleOperational,
	"traces.attributes":            roleState,
	"traces.latency":               roleState,   // the canonical span has the duration letter or not
	"traces.edge_join_size":        roleVerdict, // 0 turns edge verdicts off
	"traces.edge_join_ttl":         roleVerdict, // which calls are joined
	"metrics.enabled":              roleOperational,
	"metrics.annotate_data_points": roleOperational,
	"metrics.histogram_quantile":   roleState,
	"metrics.max_series":           roleOperational,

	"storage":             roleOperational,
	"checkpoint_interval": roleOperational,
	"feedback":            roleOperational,
}

// configField is one classified field of a configuration value.
type configField struct {
	path  string
	role  fieldRole
	value reflect.Value
}

// walkConfig calls fn for every classified field under v (a struct), in
// field order, and returns the paths of the fields that have no role.
func walkConfig(v reflect.Value, prefix string, fn func(configField)) (unclassified []string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		path := prefix + name
		if role, ok := configRoles[path]; ok {
			fn(configField{path: path, role: role, value: v.Field(i)})
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			unclassified = append(unclassified, walkConfig(v.Field(i), path+".", fn)...)
			continue
		}
		unclassified = append(unclassified, path)
	}
	return unclassified
}

// section is the signal a field belongs to ("logs" for logs.attributes),
// or "" for the fields all signals share.
func section(path string) string {
	head, _, _ := strings.Cut(path, ".")
	for _, f := range forms {
		if f.name() == head {
			return head
		}
	}
	return ""
}

// stateHash identifies what a checkpoint's state is only valid with: the
// fields classified roleState that all signals share and those of this
// signal's own section, each as path=JSON value. A checkpoint is restored
// only under the same hash; tuning a roleVerdict field and restarting keeps
// what was learned.
func stateHash(cfg *Config, form signalForm) string {
	h := fnv.New64a()
	walkConfig(reflect.ValueOf(cfg).Elem(), "", func(f configField) {
		if f.role != roleState {
			return
		}
		if s := section(f.path); s != "" && s != form.name() {
			return
		}
		b, _ := json.Marshal(f.value.Interface()) // plain values: cannot fail
		h.Write([]byte(f.path))
		h.Write([]byte{'='})
		h.Write(b)
		h.Write([]byte{'\n'})
	})
	return strconv.FormatUint(h.Sum64(), 16)
}
