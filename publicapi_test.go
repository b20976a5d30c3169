package ingest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// exportData lists the module's packages and the compiled export data of
// each of them and their dependencies, by import path.
func exportData(t *testing.T) (pkgs []string, export map[string]string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Name,Export,GoFiles,Module", module+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -export: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list -export: %v", err)
	}
	export = map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath, Name, Export string
			GoFiles                  []string
			Module                   *struct{ Path string }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		export[p.ImportPath] = p.Export
		if p.Module == nil || p.Module.Path != module || p.Name == "main" || len(p.GoFiles) == 0 || isInternal(p.ImportPath) {
			continue
		}
		pkgs = append(pkgs, p.ImportPath)
	}
	return pkgs, export
}

func isInternal(path string) bool {
	return strings.HasPrefix(path, "internal/") || strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal")
}

func gcImporter(fset *token.FileSet, export map[string]string) types.Importer {
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := export[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
}

// TestPublicAPIStandsAlone keeps the public API usable from outside the
// module: no exported identifier of a public package may mention, in its
// type, signature, exported fields or exported methods, a type of a package
// under internal/, which no other module can name.
func TestPublicAPIStandsAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the module's export data")
	}
	pkgs, export := exportData(t)
	if len(pkgs) < 10 {
		t.Fatalf("only %d public packages listed", len(pkgs))
	}
	fset := token.NewFileSet()
	imp := gcImporter(fset, export)
	for _, path := range pkgs {
		p, err := imp.Import(path)
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		for _, f := range internalMentions(p) {
			t.Errorf("%s", f)
		}
	}
}

// TestPublicAPICheckFails proves the check above can fail: a package whose
// exported names use an internal type in each way is reported once per way.
func TestPublicAPICheckFails(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the module's export data")
	}
	_, export := exportData(t)
	const src = `package fake
import "github.com/restless-stream/ingest/client/internal/stream"
type Config struct { Policy stream.Policy; hidden stream.Policy }
type Alias = stream.Event
func Open() (stream.Conn, error) { return nil, nil }
type T struct{}
func (T) Runner() *stream.Runner { return nil }
func (T) runner() *stream.Runner { return nil }
var Dialers []map[string]stream.Dialer
type Fine struct{ N int }
func Ok(f Fine) error { return nil }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "fake.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	conf := types.Config{Importer: gcImporter(fset, export)}
	p, err := conf.Check("example.com/fake", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := internalMentions(p)
	want := []string{"fake.Alias", "fake.Config.Policy", "fake.Dialers", "fake.Open", "fake.T.Runner"}
	if len(got) != len(want) {
		t.Fatalf("findings %q, want one for each of %v", got, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w+" ") {
			t.Fatalf("finding %q, want one about %s", got[i], w)
		}
	}
}

// internalMentions returns one line per exported identifier of p (or
// exported field or method of one) whose type mentions an internal package.
func internalMentions(p *types.Package) []string {
	var out []string
	report := func(name string, typ types.Type) {
		if bad := internalIn(typ, map[types.Type]bool{}); bad != "" {
			out = append(out, fmt.Sprintf("%s.%s mentions %s", p.Name(), name, bad))
		}
	}
	scope := p.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		tn, ok := obj.(*types.TypeName)
		if !ok {
			report(name, obj.Type())
			continue
		}
		if tn.IsAlias() {
			report(name, types.Unalias(tn.Type()))
			continue
		}
		named, ok := tn.Type().(*types.Named)
		if !ok {
			continue
		}
		switch u := named.Underlying().(type) {
		case *types.Struct:
			for i := range u.NumFields() {
				if f := u.Field(i); f.Exported() {
					report(name+"."+f.Name(), f.Type())
				}
			}
		case *types.Interface:
			for i := range u.NumMethods() {
				if m := u.Method(i); m.Exported() {
					report(name+"."+m.Name(), m.Type())
				}
			}
		default:
			report(name, u)
		}
		for i := range named.NumMethods() {
			if m := named.Method(i); m.Exported() {
				report(name+"."+m.Name(), m.Type())
			}
		}
	}
	sort.Strings(out)
	return out
}

// internalIn returns the first named type under an internal package that
// typ refers to, without looking inside other named types (their own
// package is checked on its own).
func internalIn(typ types.Type, seen map[types.Type]bool) string {
	if typ == nil || seen[typ] {
		return ""
	}
	seen[typ] = true
	switch t := typ.(type) {
	case *types.Alias:
		return internalIn(types.Unalias(t), seen)
	case *types.Named:
		if pkg := t.Obj().Pkg(); pkg != nil && isInternal(pkg.Path()) {
			return pkg.Path() + "." + t.Obj().Name()
		}
		for i := range t.TypeArgs().Len() {
			if bad := internalIn(t.TypeArgs().At(i), seen); bad != "" {
				return bad
			}
		}
	case *types.Pointer:
		return internalIn(t.Elem(), seen)
	case *types.Slice:
		return internalIn(t.Elem(), seen)
	case *types.Array:
		return internalIn(t.Elem(), seen)
	case *types.Chan:
		return internalIn(t.Elem(), seen)
	case *types.Map:
		if bad := internalIn(t.Key(), seen); bad != "" {
			return bad
		}
		return internalIn(t.Elem(), seen)
	case *types.Signature:
		if bad := internalIn(t.Params(), seen); bad != "" {
			return bad
		}
		return internalIn(t.Results(), seen)
	case *types.Tuple:
		for i := range t.Len() {
			if bad := internalIn(t.At(i).Type(), seen); bad != "" {
				return bad
			}
		}
	case *types.Struct:
		for i := range t.NumFields() {
			if f := t.Field(i); f.Exported() || f.Embedded() {
				if bad := internalIn(f.Type(), seen); bad != "" {
					return bad
				}
			}
		}
	case *types.Interface:
		for i := range t.NumMethods() {
			if bad := internalIn(t.Method(i).Type(), seen); bad != "" {
				return bad
			}
		}
		for i := range t.NumEmbeddeds() {
			if bad := internalIn(t.EmbeddedType(i), seen); bad != "" {
				return bad
			}
		}
	case *types.TypeParam:
		return internalIn(t.Constraint(), seen)
	case *types.Union:
		for i := range t.Len() {
			if bad := internalIn(t.Term(i).Type(), seen); bad != "" {
				return bad
			}
		}
	}
	return ""
}

// TestExternalModuleCompiles builds client/internal/extmodtest, a program of
// another module that sets every public option type of the SDK and of the
// daemon's libraries, against this module: a public API that needed a type
// from internal/ would not compile there.
func TestExternalModuleCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds another module")
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"main.go", "go.mod"} {
		b, err := os.ReadFile(filepath.Join(root, "client", "internal", "extmodtest", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The module's own checksums cover every dependency of the program.
	sums, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("mod", "edit", "-replace", module+"="+root)
	run("vet", ".")
}
