package storetest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestNoticeNamesThePackageAndTheWayOut(t *testing.T) {
	if got := notice("postgres://x", "./internal/api"); got != "" {
		t.Fatalf("a notice although the DSN is set: %q", got)
	}
	got := notice("", "./internal/api")
	for _, want := range []string{"./internal/api: ", EnvDSN + " is not set", "skip", "make test", "scripts/pg start"} {
		if !strings.Contains(got, want) {
			t.Errorf("notice lacks %q: %s", want, got)
		}
	}
	if strings.Contains(got, "\n") {
		t.Errorf("notice is more than one line: %q", got)
	}
	if dir := packageDir(); dir != "./internal/store/storetest" {
		t.Errorf("packageDir() = %q", dir)
	}
}

// Every package whose tests use this one announces, once, that they skip
// without PostgreSQL: its TestMain calls Main or Announce. Otherwise
// `go test -short ./...` skips them silently.
func TestEveryStorePackageAnnouncesSkips(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	const self = "github.com/driftlock/driftlock/internal/store/storetest"
	uses := map[string]bool{}      // directories whose tests import storetest
	announces := map[string]bool{} // directories with a TestMain calling Main/Announce
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == self {
				uses[dir] = true
			}
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "TestMain" || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "storetest" && (sel.Sel.Name == "Main" || sel.Sel.Name == "Announce") {
						announces[dir] = true
					}
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) < 3 {
		t.Fatalf("found only %d packages using storetest; is the walk rooted right (%s)?", len(uses), root)
	}
	for dir := range uses {
		if !announces[dir] {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("./%s uses storetest but its TestMain does not call storetest.Main or storetest.Announce; add a main_test.go with `func TestMain(m *testing.M) { storetest.Main(m) }`", filepath.ToSlash(rel))
		}
	}
}
