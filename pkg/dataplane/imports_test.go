package dataplane

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Only pkg/dataplane and the tools' wiring (cmd/) may import a storage
// backend package: anything under pkg/storage/ other than the SPI itself
// and the conformance suite. Test files are exempt (a backend's own tests,
// storagetest's self-tests). A backend may import its own subpackages.

const module = "github.com/artifactstore/artifact-store"

// backendImportViolations parses every non-test .go file under root (a
// module root) and reports each import of a backend package from a file
// that may not import one.
func backendImportViolations(root string) ([]string, error) {
	var bad []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			base := d.Name()
			if rel != "." && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") || base == "testdata" || base == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		if strings.HasPrefix(rel, "pkg/dataplane/") || strings.HasPrefix(rel, "cmd/") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := module + "/" + filepath.ToSlash(filepath.Dir(rel))
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			backend, ok := backendOf(path)
			if !ok {
				continue
			}
			if own, isBackend := backendOf(dir); isBackend && own == backend {
				continue // a backend's own subpackages
			}
			bad = append(bad, fmt.Sprintf("%s imports backend package %s", rel, path))
		}
		return nil
	})
	return bad, err
}

// backendOf returns the backend package root ("…/pkg/storage/local") that
// an import path belongs to, if it is one.
func backendOf(path string) (string, bool) {
	const spi = module + "/pkg/storage/"
	rest, ok := strings.CutPrefix(path, spi)
	if !ok || rest == "" {
		return "", false
	}
	first, _, _ := strings.Cut(rest, "/")
	if first == "storagetest" {
		return "", false
	}
	return spi + first, true
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

func TestOnlyDataPlaneImportsBackends(t *testing.T) {
	bad, err := backendImportViolations(moduleRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// TestImportRuleCanFail runs the rule on a small fake tree holding one
// violation of each kind and the allowed cases.
func TestImportRuleCanFail(t *testing.T) {
	root := t.TempDir()
	write := func(rel, imp string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		src := fmt.Sprintf("package x\n\nimport _ %q\n", imp)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("pkg/registry/r.go", module+"/pkg/storage/local")         // violation
	write("pkg/health/h.go", module+"/pkg/storage/s3/internal/x")   // violation
	write("internal/tool/t.go", module+"/pkg/storage/local")        // violation
	write("pkg/storage/s3/s3.go", module+"/pkg/storage/local")      // violation: one backend importing another
	write("pkg/registry/ok.go", module+"/pkg/storage")              // the SPI: fine
	write("pkg/registry/ok2.go", module+"/pkg/storage/storagetest") // the suite: fine
	write("pkg/registry/r_test.go", module+"/pkg/storage/local")    // tests: fine
	write("pkg/dataplane/d.go", module+"/pkg/storage/local")        // the data plane: fine
	write("cmd/as-put/main.go", module+"/pkg/storage/local")        // wiring: fine
	write("pkg/storage/s3/sub/x.go", module+"/pkg/storage/s3")      // own subpackage: fine
	bad, err := backendImportViolations(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"internal/tool/t.go", "pkg/health/h.go", "pkg/registry/r.go", "pkg/storage/s3/s3.go"}
	if len(bad) != len(want) {
		t.Fatalf("violations: %q, want those of %q", bad, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(bad[i], w+" ") {
			t.Errorf("violation %d: %q, want %s", i, bad[i], w)
		}
	}
}
