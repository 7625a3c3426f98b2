package driftlockprocessor

import (
	"bytes"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/driftlock/driftlock/internal/cbad"
)

// TestConfigRoles: every configuration field, the detector's included,
// has a role (statehash.go), and every role names a field that exists. A
// field added to Config or cbad.Config fails here until it is classified
// as shaping the learned state, changing verdicts only, or neither.
func TestConfigRoles(t *testing.T) {
	seen := map[string]bool{}
	unclassified := walkConfig(reflect.ValueOf(testConfig()).Elem(), "", func(f configField) { seen[f.path] = true })
	sort.Strings(unclassified)
	assert.Empty(t, unclassified, "fields without a role in configRoles (statehash.go): classify each as roleState, roleVerdict or roleOperational")
	for path := range configRoles {
		assert.True(t, seen[path], "configRoles names %q, which is no configuration field", path)
	}
}

// mutate changes v (a settable leaf value) to another value of its type
// that cbad.Config.Validate still accepts where it can: bools flip,
// numbers grow a little, strings and lists grow, nil IDs get one.
func mutate(v reflect.Value) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int32:
		v.SetInt(v.Int() + 1)
	case reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() {
			v.SetInt(v.Int() + int64(time.Second))
		} else {
			v.SetInt(v.Int() + 1)
		}
	case reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Float64:
		v.SetFloat(v.Float() + v.Float()/4 + 0.001)
	case reflect.String:
		if v.String() == cbad.CompressorNgram {
			v.SetString(cbad.CompressorZstd)
		} else {
			v.SetString(v.String() + "x")
		}
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.ValueOf("x.added")))
	case reflect.Pointer:
		id := component.MustNewID("other")
		v.Set(reflect.ValueOf(&id))
	default:
		panic("mutate: no rule for " + v.Type().String())
	}
}

// leafFields lists the classified leaf fields of the default
// configuration (subtrees such as feedback are skipped: they are
// operational as a whole).
func leafFields(t *testing.T) []string {
	var paths []string
	walkConfig(reflect.ValueOf(testConfig()).Elem(), "", func(f configField) {
		if f.value.Kind() != reflect.Struct {
			paths = append(paths, f.path)
		}
	})
	require.NotEmpty(t, paths)
	return paths
}

// withMutated returns the default configuration with the field at path
// mutated.
func withMutated(path string) *Config {
	cfg := testConfig()
	walkConfig(reflect.ValueOf(cfg).Elem(), "", func(f configField) {
		if f.path == path {
			mutate(f.value)
		}
	})
	return cfg
}

// TestRolesDecideHashes: the identities follow the roles, field by field:
// a roleState field changes the state hash of the signals it belongs to
// (all of them, or its own section's) and the effective configuration; a
// roleVerdict field changes only the effective configuration; a
// roleOperational field changes neither.
func TestRolesDecideHashes(t *testing.T) {
	base := testConfig()
	_, baseConfigHash := configJSON(base)
	for _, path := range leafFields(t) {
		cfg := withMutated(path)
		role := configRoles[path]
		_, configHash := configJSON(cfg)
		assert.Equal(t, role != roleOperational, configHash != baseConfigHash,
			"%s (role %d): driftlock.config_hash changes", path, role)
		for _, form := range forms {
			mine := section(path) == "" || section(path) == form.name()
			assert.Equal(t, role == roleState && mine, stateHash(cfg, form) != stateHash(base, form),
				"%s (role %d): the %s state hash changes", path, role, form.name())
		}
	}
}

// TestVerdictSettingsKeepSnapshots: the detector restores a snapshot
// taken under the defaults after any roleVerdict detector field changed
// (its own compatibility check lists no more than the state-shaping
// settings).
func TestVerdictSettingsKeepSnapshots(t *testing.T) {
	det, err := cbad.New(cbad.DefaultConfig())
	require.NoError(t, err)
	for i := range 200 {
		det.Score("logs/checkout", cbad.Record{Data: []byte("GET /cart 200 in " + strings.Repeat("x", i%7))})
	}
	var snap bytes.Buffer
	require.NoError(t, det.Snapshot(&snap))
	checked := 0
	for _, path := range leafFields(t) {
		if configRoles[path] != roleVerdict || !strings.HasPrefix(path, "detector.") {
			continue
		}
		cfg := withMutated(path).Detector
		if err := cfg.Check(); err != nil {
			t.Errorf("%s: the mutated value is out of range (%v): give mutate a rule", path, err)
			continue
		}
		checked++
		d2, err := cbad.New(cfg)
		require.NoError(t, err, path)
		err = d2.Restore(bytes.NewReader(snap.Bytes()))
		assert.False(t, errors.Is(err, cbad.ErrSnapshotConfig), "%s: a verdict setting makes the snapshot incompatible: %v", path, err)
		assert.NoError(t, err, path)
	}
	assert.GreaterOrEqual(t, checked, 10, "verdict settings checked")
}
