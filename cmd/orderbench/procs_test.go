package main

import (
	"context"
	"debug/buildinfo"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBuildOrderd checks the builds orderbench measures: the release build
// has no dynamic loader, so no C library is mapped into the process whose
// RSS it reports; on a machine with a C compiler, -build cgo links the C
// library as go run does, and -build cgo-static has SQLite's C library in an
// executable that again has no loader.
func TestBuildOrderd(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the executable as ELF")
	}
	ctx := context.Background()
	root, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// static reports whether the build has no loader, and its CGO_ENABLED.
	static := func(build string) (bool, string) {
		t.Helper()
		bin, err := buildOrderd(ctx, root, t.TempDir(), build)
		if err != nil {
			t.Fatal(err)
		}
		linked, err := staticallyLinked(bin)
		if err != nil {
			t.Fatal(err)
		}
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range info.Settings {
			if s.Key == "CGO_ENABLED" {
				return linked, s.Value
			}
		}
		return linked, ""
	}
	if linked, _ := static(buildStatic); !linked {
		t.Fatal("the release build has a dynamic loader (PT_INTERP): it links the C library")
	}
	if enabled, err := output(ctx, "go", "env", "CGO_ENABLED"); err != nil {
		t.Fatal(err)
	} else if enabled != "1" {
		t.Skip("no C compiler: the cgo builds cannot be made here")
	}
	if linked, _ := static(buildCgo); linked {
		t.Error("-build cgo has no dynamic loader; the test could not tell the builds apart")
	}
	if linked, cgo := static(buildCgoStatic); !linked || cgo != "1" {
		t.Errorf("-build cgo-static: static %v, CGO_ENABLED=%s; want a static executable built with cgo", linked, cgo)
	}
}

// TestReadmeBuildCommands checks that the README's release builds are the
// ones orderbench measures.
func TestReadmeBuildCommands(t *testing.T) {
	root, err := moduleRoot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, build := range []string{buildStatic, buildCgoStatic} {
		b := builds[build]
		line := strings.Join(append(append(append(b.env, "go", "build"), b.args...), "-o", "orderd", "./cmd/orderd"), " ")
		if !strings.Contains(string(readme), line) {
			t.Errorf("README.md does not give the %s build as orderbench makes it:\n%s", build, line)
		}
	}
}
