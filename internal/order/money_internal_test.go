package order

import (
	"math"
	"math/big"
	"testing"
)

// exactMinor is ParseAmount's exact path alone (big.Rat), as it was before
// parsePlain: the reference parsePlain must agree with.
func exactMinor(c Currency, text string) (int64, bool) {
	r, ok := parseRat(text)
	if !ok {
		return 0, false
	}
	r.Mul(r, new(big.Rat).SetInt64(c.scale()))
	if !r.IsInt() {
		return 0, false
	}
	n := r.Num()
	if !n.IsInt64() || n.Int64() > math.MaxInt64/1000 || n.Int64() < -math.MaxInt64/1000 {
		return 0, false
	}
	return n.Int64(), true
}

// FuzzParsePlain: wherever the integer fast path gives an amount, the exact
// path gives the same one; where it declines, ParseAmount still answers as
// the exact path does.
func FuzzParsePlain(f *testing.F) {
	for _, s := range []string{"0", "-0", "150.00", "150.000", "150.001", "1.5", "0.05", "-12.34", "999999999999999",
		"9999999999999999", "1e3", "1.", ".5", "+1", "00012.10", "1/2", "١٢", "12.3a", "-", ""} {
		for _, d := range []int{0, 2, 3} {
			f.Add(s, d)
		}
	}
	f.Fuzz(func(t *testing.T, text string, digits int) {
		if digits < 0 || digits > 3 {
			return
		}
		c := Currency{Code: "TST", Digits: digits}
		want, wantOK := exactMinor(c, text)
		if got, ok := c.parsePlain(text); ok && (!wantOK || got != want) {
			t.Fatalf("parsePlain(%q, %d digits) = %d; the exact path gives %d, %v", text, digits, got, want, wantOK)
		}
		got, err := c.ParseAmount(text)
		if (err == nil) != wantOK || got != want {
			t.Fatalf("ParseAmount(%q, %d digits) = %d, %v; the exact path gives %d, %v", text, digits, got, err, want, wantOK)
		}
	})
}
