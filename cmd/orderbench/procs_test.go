package main

import (
	"context"
	"debug/elf"
	"runtime"
	"testing"
)

// TestBuildOrderdIsStatic checks that orderbench measures the release build:
// an executable without a dynamic loader, so no C library is mapped into the
// process whose RSS it reports. With -cgo on a machine that has a C
// compiler, the same build links the C library, as go run does.
func TestBuildOrderdIsStatic(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the executable as ELF")
	}
	ctx := context.Background()
	root, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	interp := func(cgo bool) bool {
		t.Helper()
		bin, err := buildOrderd(ctx, root, t.TempDir(), cgo)
		if err != nil {
			t.Fatal(err)
		}
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return true
			}
		}
		return false
	}
	if interp(false) {
		t.Fatal("the release build has a dynamic loader (PT_INTERP): it links the C library")
	}
	if enabled, err := output(ctx, "go", "env", "CGO_ENABLED"); err != nil {
		t.Fatal(err)
	} else if enabled == "1" && !interp(true) {
		t.Fatal("with -cgo and CGO_ENABLED=1 the build has no dynamic loader; the test could not tell the builds apart")
	}
}
