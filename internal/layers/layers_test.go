// Package layers holds the test that enforces the package layering of
// DESIGN.md: a package imports only from its own layer or the layers below,
// and never along an edge the design forbids.
package layers

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/magnetar/magnetar"

// layer maps a package path (relative to the module root; subpackages inherit
// their parent's entry by longest prefix) to its layer.
var layer = map[string]int{
	"internal":        0,
	"metastore":       1,
	"journal":         1,
	"ledgerstore":     1,
	"engine":          2,
	"ledger":          2,
	"managedledger":   3,
	"dispatcher":      4,
	"broker":          5,
	"proxy":           5,
	"client":          6,
	"loadgen":         6,
	"results":         6,
	"bench":           7,
	"cmd":             8,
	"e2e":             8,
	"internal/layers": 0,
}

// forbidden lists the "must not" edges of DESIGN.md: importer prefix -> import
// prefixes (module-relative, or standard library / third-party paths).
var forbidden = []struct {
	from   string
	to     []string
	reason string
}{
	{"internal/base", []string{"os", "net", "syscall", "golang.org/x/sys", "internal/vfs"}, "base does no I/O"},
	{"internal/vfs", []string{"journal", "ledgerstore", "ledger", "engine"}, "vfs must not know journals or ledgers"},
	{"internal/record", []string{"os", "internal/vfs"}, "record must not open files itself"},
	{"internal/bufs", []string{"net", "internal/wire"}, "bufs must not import net or protocol code"},
	{"internal/wire", []string{"net", "broker", "engine"}, "codecs must not import broker, engine, net"},
	{"metastore", []string{"broker", "engine"}, "metastore must not import broker or engine"},
	{"journal", []string{"ledgerstore"}, "journal must not import ledgerstore"},
	{"ledgerstore", []string{"journal"}, "ledgerstore must not import journal"},
	{"engine", []string{"net", "net/http"}, "the engine core must not depend on net (engine/server may)"},
	{"ledger", []string{"engine"}, "ledger talks to bookies over the wire, never to the engine"},
	{"managedledger", []string{"broker"}, "managedledger must not import broker"},
	{"dispatcher", []string{"broker", "net"}, "dispatcher must not import broker or net"},
	{"broker", []string{"engine", "journal", "ledgerstore"}, "broker must not import bookie internals"},
	{"proxy", []string{"managedledger", "dispatcher"}, "proxy must not hold topic state"},
	{"client", []string{"broker"}, "client must not import broker"},
	{"loadgen", []string{"broker", "engine"}, "loadgen measures through the socket"},
	{"results", []string{"bench", "loadgen"}, "results must not import bench or loadgen"},
}

// exempt: importer prefixes that a forbidden rule does not cover although
// they share its prefix (engine/server is the networked part of the engine).
var exempt = map[string][]string{
	"engine": {"engine/server"},
}

func longestPrefix[V any](m map[string]V, pkg string) (string, bool) {
	best := ""
	found := false
	for k := range m {
		if hasPathPrefix(pkg, k) && len(k) >= len(best) {
			best, found = k, true
		}
	}
	return best, found
}

func hasPathPrefix(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// imports returns, for every package directory of the module, its non-test
// imports.
func imports(t *testing.T, root string) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "data") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if out[rel] == nil {
			out[rel] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out[rel][p] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLayering(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	var problems []string
	for pkg, imps := range imports(t, root) {
		if pkg == "." {
			continue
		}
		key, ok := longestPrefix(layer, pkg)
		if !ok {
			problems = append(problems, pkg+": package has no layer in DESIGN.md; add it to internal/layers")
			continue
		}
		from := layer[key]
		for imp := range imps {
			if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
				if tk, ok := longestPrefix(layer, rel); ok && layer[tk] > from {
					problems = append(problems, pkg+" (layer "+strconv.Itoa(from)+") imports "+rel+" (layer "+strconv.Itoa(layer[tk])+"): upward import")
				}
				if rel == "bench" || hasPathPrefix(rel, "bench") {
					if !hasPathPrefix(pkg, "cmd") && !hasPathPrefix(pkg, "bench") {
						problems = append(problems, pkg+" imports "+rel+": bench must not be imported by anything but cmd")
					}
				}
				if hasPathPrefix(rel, "cmd") {
					problems = append(problems, pkg+" imports "+rel+": cmd must not be imported")
				}
				imp = rel
			}
			for _, rule := range forbidden {
				if !hasPathPrefix(pkg, rule.from) || isExempt(rule.from, pkg) {
					continue
				}
				for _, bad := range rule.to {
					if hasPathPrefix(imp, bad) {
						problems = append(problems, pkg+" imports "+imp+": "+rule.reason)
					}
				}
			}
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

func isExempt(rule, pkg string) bool {
	for _, e := range exempt[rule] {
		if hasPathPrefix(pkg, e) {
			return true
		}
	}
	return false
}

// TestRulesCatchViolations proves the checker is not vacuous: a synthetic
// violation of each kind is reported.
func TestRulesCatchViolations(t *testing.T) {
	cases := []struct {
		pkg, imp string
	}{
		{"journal", "ledgerstore"},
		{"broker", "engine"},
		{"dispatcher", "net"},
		{"internal/bufs", "net"},
		{"engine", "net"},
	}
	for _, c := range cases {
		hit := false
		for _, rule := range forbidden {
			if !hasPathPrefix(c.pkg, rule.from) || isExempt(rule.from, c.pkg) {
				continue
			}
			for _, bad := range rule.to {
				if hasPathPrefix(c.imp, bad) {
					hit = true
				}
			}
		}
		if !hit {
			t.Errorf("%s -> %s not caught", c.pkg, c.imp)
		}
	}
	if isExempt("engine", "engine") || !isExempt("engine", "engine/server") {
		t.Error("engine/server exemption wrong")
	}
	if k, _ := longestPrefix(layer, "internal/wire/pulsar"); layer[k] != 0 {
		t.Errorf("internal/wire/pulsar layer = %d", layer[k])
	}
}
