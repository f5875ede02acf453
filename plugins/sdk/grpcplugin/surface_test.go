package grpcplugin_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// Package sdk is the plugin author's API: no exported name of it may
// mention the transport (the generated pb types, gRPC, go-plugin). Those
// belong to this package.
func TestSDKSurfaceNamesNoTransport(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("../*.go")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*ast.File{}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name.Name != "sdk" {
			t.Fatalf("%s is package %s", n, f.Name.Name)
		}
		files[n] = f
	}
	transport := map[string]bool{"pb": true, "grpc": true, "plugin": true, "codes": true, "status": true, "wire": true}
	mentions := func(n ast.Node) (found string) {
		ast.Inspect(n, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && transport[id.Name] {
					found = id.Name + "." + sel.Sel.Name
				}
			}
			return found == ""
		})
		return found
	}
	checked := 0
	for name, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() || (d.Recv != nil && !exportedRecv(d.Recv)) {
					continue
				}
				checked++
				if m := mentions(d.Type); m != "" {
					t.Errorf("%s: sdk.%s mentions %s", name, d.Name.Name, m)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							checked++
							if m := mentions(s.Type); m != "" {
								t.Errorf("%s: sdk.%s mentions %s", name, s.Name.Name, m)
							}
						}
					case *ast.ValueSpec:
						for _, id := range s.Names {
							if !id.IsExported() {
								continue
							}
							checked++
							if s.Type != nil {
								if m := mentions(s.Type); m != "" {
									t.Errorf("%s: sdk.%s mentions %s", name, id.Name, m)
								}
							}
							for _, v := range s.Values {
								if m := mentions(v); m != "" {
									t.Errorf("%s: sdk.%s mentions %s", name, id.Name, m)
								}
							}
						}
					}
				}
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d exported names checked: is the parse right?", checked)
	}
}

func exportedRecv(fl *ast.FieldList) bool {
	t := fl.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}
