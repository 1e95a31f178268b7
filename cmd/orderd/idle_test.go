package main

import "testing"

func TestIdleTrimmer(t *testing.T) {
	const kb, mb = 1 << 10, 1 << 20
	tr := idleTrimmer{last: 100 * mb, lastTrim: 100 * mb}
	steps := []struct {
		name      string
		allocated uint64 // in this period
		want      bool
	}{
		{"busy: events flowing", 50 * mb, false},
		{"quiet after busy: the busy period's garbage goes", 2 * mb, true},
		{"quiet, little since the trim", 100 * kb, false},
		{"quiet, over 256 KiB since the trim", 200 * kb, true},
		{"just under the quiet bound", quietBytes - 1, true},
		{"at the quiet bound: busy", quietBytes, false},
	}
	total := uint64(100 * mb)
	for _, s := range steps {
		total += s.allocated
		if got := tr.observe(total); got != s.want {
			t.Errorf("%s: observe = %v, want %v", s.name, got, s.want)
		}
	}
}
