package store_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/driftlock/driftlock/internal/store"
)

// The store is the only way to the database: *Store exposes operations,
// never its pgx pool or another pgx type, so callers (the API, the
// exporter, the feedback source) cannot bypass it. Tests reach the pool
// through storetest.Pool.
func TestStoreExposesNoPgxTypes(t *testing.T) {
	typ := reflect.TypeOf(&store.Store{})
	pgx := func(rt reflect.Type) bool {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map || rt.Kind() == reflect.Chan {
			rt = rt.Elem()
		}
		return strings.HasPrefix(rt.PkgPath(), "github.com/jackc/pgx")
	}
	for i := 0; i < typ.Elem().NumField(); i++ {
		if f := typ.Elem().Field(i); f.IsExported() {
			t.Errorf("Store has an exported field %s (%s)", f.Name, f.Type)
		}
	}
	if typ.NumMethod() < 10 {
		t.Fatalf("only %d exported methods on *Store; is reflection looking at the right type?", typ.NumMethod())
	}
	for i := 0; i < typ.NumMethod(); i++ {
		m := typ.Method(i)
		for j := 0; j < m.Type.NumOut(); j++ {
			if pgx(m.Type.Out(j)) {
				t.Errorf("(*Store).%s returns %s", m.Name, m.Type.Out(j))
			}
		}
		for j := 1; j < m.Type.NumIn(); j++ {
			if pgx(m.Type.In(j)) {
				t.Errorf("(*Store).%s takes %s", m.Name, m.Type.In(j))
			}
		}
	}
}
