package order

import (
	"fmt"
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

// FuzzFixedPointMoney: wherever a Decimal has a fixed-point form, FromMajor
// and ApplyRate give what the exact rational paths give.
func FuzzFixedPointMoney(f *testing.F) {
	for _, s := range []string{"0", "0.10", "0.05", "5.99", "12.99", "100", "10000", "0.5", "0.125", "1.5e3",
		"99999999999999", "100000000000000", "0.000000000001", "0.0000000000001", "-0.10", "1/4", "3"} {
		for _, minor := range []int64{0, 1, -1, 5, 995, -995, 10005, 7950, math.MaxInt64 / 1000, math.MaxInt64, math.MinInt64} {
			f.Add(s, minor, 2)
		}
	}
	f.Fuzz(func(t *testing.T, text string, minor int64, digits int) {
		d, err := ParseDecimal(text)
		if err != nil || digits < 0 || digits > 4 {
			return
		}
		if d.fixed && new(big.Rat).SetFrac64(d.mant, pow10[d.exp]).Cmp(d.r) != 0 {
			t.Fatalf("fixedPoint(%s) = %d / 10^%d", text, d.mant, d.exp)
		}
		if want := applyRateExact(minor, d); ApplyRate(minor, d) != want {
			t.Fatalf("ApplyRate(%d, %s) = %d, exact %d", minor, text, ApplyRate(minor, d), want)
		}
		c := Currency{Code: "TST", Digits: digits}
		if want := c.fromMajorExact(d); c.FromMajor(d) != want {
			t.Fatalf("%d digits FromMajor(%s) = %d, exact %d", digits, text, c.FromMajor(d), want)
		}
	})
}

// TestFixedPointForms: the rules' usual values take the integer path.
func TestFixedPointForms(t *testing.T) {
	for _, tt := range []struct {
		text  string
		mant  int64
		exp   int
		fixed bool
	}{
		{"0.10", 1, 1, true},
		{"5.99", 599, 2, true},
		{"10000", 10000, 0, true},
		{"0.125", 125, 3, true},
		{"1/3", 0, 0, false},                 // no power of ten divides by 3
		{"0.0000000000001", 0, 0, false},     // 10^-13: beyond maxFixedExp
		{"100000000000001", 0, 0, false},     // beyond maxFixedMant
		{"-100000000000000", -1e14, 0, true}, // at it
	} {
		r, ok := new(big.Rat).SetString(tt.text)
		if !ok {
			t.Fatalf("bad test value %q", tt.text)
		}
		mant, exp, fixed := fixedPoint(r)
		if mant != tt.mant || exp != tt.exp || fixed != tt.fixed {
			t.Errorf("fixedPoint(%s) = %d, %d, %v; want %d, %d, %v", tt.text, mant, exp, fixed, tt.mant, tt.exp, tt.fixed)
		}
	}
}

// TestFormatMatchesPrintf: appendFormat renders what the fmt formula it
// replaced rendered, for every digit count and across magnitudes.
func TestFormatMatchesPrintf(t *testing.T) {
	values := []int64{0, 1, -1, 5, 9, 10, 99, 100, 101, 1005, -1005, 15000, 123456789, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	for p := int64(1); p < math.MaxInt64/10; p *= 10 {
		values = append(values, p-1, p, p+1, -p, 7*p+3)
	}
	for digits := 0; digits <= 4; digits++ {
		c := Currency{Code: "TST", Digits: digits}
		for _, v := range values {
			var want string
			if digits == 0 {
				want = fmt.Sprintf("%d", v)
			} else {
				sign, u := "", uint64(v)
				if v < 0 {
					sign, u = "-", uint64(-v)
				}
				s := uint64(c.scale())
				want = fmt.Sprintf("%s%d.%0*d", sign, u/s, digits, u%s)
			}
			if got := c.Format(v); got != want {
				t.Errorf("%d digits: Format(%d) = %q, want %q", digits, v, got, want)
			}
			if got := (Money{Minor: v, Currency: c}).String(); got != want+" TST" {
				t.Errorf("%d digits: Money(%d).String() = %q, want %q", digits, v, got, want+" TST")
			}
		}
	}
}
