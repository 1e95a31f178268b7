package order

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"golang.org/x/text/currency"
)

// Currency is an ISO 4217 currency with the number of digits of its minor unit.
type Currency struct {
	Code   string
	Digits int
}

// ErrUnknownCurrency is returned for a code that is not an ISO 4217 currency.
var ErrUnknownCurrency = errors.New("unknown currency")

// LookupCurrency returns the currency for an ISO 4217 code such as "INR",
// with ISO 4217's minor unit (§5). The codes and most digits come from
// golang.org/x/text, whose digits are CLDR's: where those differ from ISO
// 4217's, or x/text lacks a current code, isoDigits says; codes that ISO
// 4217 gives no minor unit (gold, SDRs, the test and "no currency" codes)
// are refused.
func LookupCurrency(code string) (Currency, error) {
	if len(code) != 3 || strings.ToUpper(code) != code {
		return Currency{}, fmt.Errorf("%w %q: want a 3-letter upper-case ISO 4217 code", ErrUnknownCurrency, code)
	}
	if d, ok := isoDigits[code]; ok {
		if d < 0 {
			return Currency{}, fmt.Errorf("%w %q: ISO 4217 gives it no minor unit", ErrUnknownCurrency, code)
		}
		return Currency{Code: code, Digits: d}, nil
	}
	u, err := currency.ParseISO(code)
	if err != nil {
		return Currency{}, fmt.Errorf("%w %q", ErrUnknownCurrency, code)
	}
	digits, _ := currency.Standard.Rounding(u)
	return Currency{Code: code, Digits: digits}, nil
}

// isoDigits are ISO 4217 minor units where CLDR's (x/text's) differ, or
// for current codes x/text does not know; -1 is ISO's "N.A.", no minor
// unit. The digits are stored with no amount (an order keeps its currency
// code), so an entry here must never change for a code in use.
var isoDigits = map[string]int{
	// CLDR rounds these to whole units; ISO 4217 has minor units.
	"AFN": 2, "ALL": 2, "COP": 2, "IDR": 2, "IQD": 3, "IRR": 2, "KPW": 2, "LAK": 2,
	"LBP": 2, "MGA": 2, "MMK": 2, "RSD": 2, "SLL": 2, "SOS": 2, "SYP": 2, "YER": 2,
	// Current codes newer than x/text's table.
	"MRU": 2, "SLE": 2, "STN": 2, "UYW": 4, "VED": 2, "VES": 2, "XCG": 2, "ZWG": 2,
	// No minor unit in ISO 4217: precious metals, units of account, the
	// test code and "no currency".
	"XAG": -1, "XAU": -1, "XPD": -1, "XPT": -1, "XBA": -1, "XBB": -1, "XBC": -1, "XBD": -1,
	"XDR": -1, "XSU": -1, "XUA": -1, "XTS": -1, "XXX": -1,
}

// scale returns 10^Digits (0 to 4 digits for ISO 4217 currencies).
func (c Currency) scale() int64 { return pow10[min(max(c.Digits, 0), len(pow10)-1)] }

// pow10[i] is 10^i, for i up to 18.
var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// Format renders minor units as a decimal with exactly the currency's digits: 15000 → "150.00".
func (c Currency) Format(minor int64) string {
	var buf [32]byte
	return string(c.appendFormat(buf[:0], minor))
}

// appendFormat appends Format(minor) to b. It runs for every event's log
// line, so it uses strconv rather than fmt.
func (c Currency) appendFormat(b []byte, minor int64) []byte {
	if c.Digits <= 0 {
		return strconv.AppendInt(b, minor, 10)
	}
	u := uint64(minor)
	if minor < 0 {
		b = append(b, '-')
		u = uint64(-minor) // also right for math.MinInt64
	}
	s := uint64(c.scale())
	b = strconv.AppendUint(b, u/s, 10)
	b = append(b, '.')
	frac := u % s
	for p := s / 10; p > 1 && frac < p; p /= 10 { // leading zeros of the fraction
		b = append(b, '0')
	}
	return strconv.AppendUint(b, frac, 10)
}

// ErrPrecision is returned when an amount has more decimals than its currency allows.
var ErrPrecision = errors.New("more decimals than the currency allows")

// ParseAmount converts a decimal number text (as found in JSON) to exact minor
// units. Trailing zeros beyond the currency's digits are accepted ("150.000"
// INR); any other extra digit is ErrPrecision. Floats never take part.
func (c Currency) ParseAmount(text string) (int64, error) {
	if v, ok := c.parsePlain(text); ok {
		return v, nil
	}
	r, ok := parseRat(text)
	if !ok {
		return 0, fmt.Errorf("invalid number %q", text)
	}
	r.Mul(r, new(big.Rat).SetInt64(c.scale()))
	if !r.IsInt() {
		return 0, fmt.Errorf("%s: %w (%s has %d)", text, ErrPrecision, c.Code, c.Digits)
	}
	n := r.Num()
	if !n.IsInt64() || n.Int64() > math.MaxInt64/1000 || n.Int64() < -math.MaxInt64/1000 {
		return 0, fmt.Errorf("amount %s out of range", text)
	}
	return n.Int64(), nil
}

// parsePlain is ParseAmount for the common form of an amount — an optional
// minus, at most 15 integer digits, optionally a point and more digits — done
// in integers, without big.Rat (which cost a third of decoding an event). ok
// is false for every other text, and for one parsePlain could get wrong or
// must refuse (a digit finer than the currency's, a value out of range):
// ParseAmount's exact path then decides, and gives the error.
func (c Currency) parsePlain(text string) (v int64, ok bool) {
	s := text
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	whole, frac, dot := strings.Cut(s, ".")
	if len(text) > 128 || len(whole) == 0 || len(whole) > 15 || (dot && frac == "") || c.Digits < 0 || c.Digits > 3 {
		return 0, false
	}
	for i := range len(whole) {
		d := whole[i] - '0' // a byte: anything but a digit wraps above 9
		if d > 9 {
			return 0, false
		}
		v = v*10 + int64(d)
	}
	for i := range c.Digits {
		var d byte
		if i < len(frac) {
			if d = frac[i] - '0'; d > 9 {
				return 0, false
			}
		}
		v = v*10 + int64(d)
	}
	for i := c.Digits; i < len(frac); i++ {
		if frac[i] != '0' {
			return 0, false
		}
	}
	if v > math.MaxInt64/1000 { // 15 + 3 digits cannot overflow before this check
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// FromMajor converts an amount in major units (a threshold or fee from the
// configuration) to this currency's minor units, rounding half away from zero.
func (c Currency) FromMajor(major Decimal) int64 {
	if major.fixed && c.Digits >= 0 && c.Digits <= maxFixedDigits {
		// |mant| ≤ maxFixedMant, so mant × 10^Digits fits in an int64.
		return divRoundHalfAway(major.mant*c.scale(), pow10[major.exp])
	}
	return c.fromMajorExact(major)
}

// fromMajorExact is FromMajor in exact rational arithmetic, for any Decimal.
func (c Currency) fromMajorExact(major Decimal) int64 { return roundHalfAway(c.minorRat(major)) }

// minorRat is major in this currency's minor units, exactly.
func (c Currency) minorRat(major Decimal) *big.Rat {
	return new(big.Rat).Mul(major.rat(), new(big.Rat).SetInt64(c.scale()))
}

// Limits of a comparison of an amount in minor units with a threshold in
// major units, made exact whatever the currency's digits: with 9999.99 as
// the threshold, a total of 10000 JPY is above it (FloorMinor 9999) and 49
// JPY is under 49.49 (CeilMinor 50), where rounding the threshold to 10000
// and 49 would have said otherwise.
//
//	minor > t  ⟺  minor > FloorMinor(t)
//	minor ≥ t  ⟺  minor ≥ CeilMinor(t)

// FloorMinor returns the largest whole number of minor units at most major.
func (c Currency) FloorMinor(major Decimal) int64 { return c.boundMinor(major, false) }

// CeilMinor returns the smallest whole number of minor units at least major.
func (c Currency) CeilMinor(major Decimal) int64 { return c.boundMinor(major, true) }

func (c Currency) boundMinor(major Decimal, ceil bool) int64 {
	if major.fixed && c.Digits >= 0 && c.Digits <= maxFixedDigits {
		n, p := major.mant*c.scale(), pow10[major.exp]
		q, rem := n/p, n%p // truncated toward zero
		switch {
		case rem > 0 && ceil:
			q++
		case rem < 0 && !ceil:
			q--
		}
		return q
	}
	r := c.minorRat(major)
	q := new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: the floor, Denom being positive
	if ceil && !r.IsInt() {
		q.Add(q, big.NewInt(1))
	}
	return saturate(q)
}

// saturate is q as an int64, or the nearest end of int64's range.
func saturate(q *big.Int) int64 {
	switch {
	case q.IsInt64():
		return q.Int64()
	case q.Sign() > 0:
		return math.MaxInt64
	default:
		return math.MinInt64
	}
}

// parseRat parses a decimal number text exactly. It refuses fractions ("1/3"),
// over-long texts and exponents beyond ±64, so that hostile input such as
// 1e999999999 cannot make big.Rat allocate without bound.
func parseRat(text string) (*big.Rat, bool) {
	if text == "" || len(text) > 128 || strings.ContainsAny(text, "/_xXpP") {
		return nil, false
	}
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		exp, err := strconv.Atoi(text[i+1:])
		if err != nil || exp > 64 || exp < -64 {
			return nil, false
		}
	}
	return new(big.Rat).SetString(text)
}

// Decimal is an exact decimal number such as a rate (0.10) or a threshold (100).
type Decimal struct {
	r *big.Rat
	// When fixed, the value is also exactly mant / 10^exp, with |mant| at
	// most maxFixedMant: FromMajor and ApplyRate then compute in integers.
	// They run for every event: with big.Rat, FromMajor alone took 0.33 s
	// of the 1.96 s the one SQLite writer spent in the use cases
	// (orderbench profile, BENCHMARKS.md item 16).
	fixed bool
	mant  int64
	exp   int
}

// Bounds of a Decimal's fixed-point form (see Decimal).
const (
	maxFixedMant   = 100_000_000_000_000 // 10^14: × 10^maxFixedDigits still fits an int64
	maxFixedExp    = 12
	maxFixedDigits = 4 // the most digits of an ISO 4217 minor unit
)

// ParseDecimal parses a plain decimal text such as "0.10" or "5.99".
func ParseDecimal(text string) (Decimal, error) {
	r, ok := parseRat(strings.TrimSpace(text))
	if !ok {
		return Decimal{}, fmt.Errorf("invalid decimal %q", text)
	}
	d := Decimal{r: r}
	d.mant, d.exp, d.fixed = fixedPoint(r)
	return d, nil
}

// fixedPoint returns r as mant / 10^exp with the smallest exp, if r has such
// a form within maxFixedExp and maxFixedMant.
func fixedPoint(r *big.Rat) (mant int64, exp int, ok bool) {
	num, den := r.Num(), r.Denom() // den > 0, and num/den is in lowest terms
	if !num.IsInt64() || !den.IsInt64() {
		return 0, 0, false
	}
	n, d := num.Int64(), den.Int64()
	for exp = 0; exp <= maxFixedExp; exp++ {
		if pow10[exp]%d != 0 {
			continue
		}
		f := pow10[exp] / d // n × f is the mantissa
		if n > maxFixedMant/f || n < -maxFixedMant/f {
			return 0, 0, false
		}
		return n * f, exp, true
	}
	return 0, 0, false
}

// divRoundHalfAway returns n / p rounded half away from zero, for p > 0.
func divRoundHalfAway(n, p int64) int64 {
	q, rem := n/p, n%p // both truncated toward zero: rem has n's sign
	if rem < 0 {
		rem = -rem
	}
	if rem >= p-rem { // 2 × rem ≥ p, without overflow
		if n < 0 {
			q--
		} else {
			q++
		}
	}
	return q
}

// MustDecimal is ParseDecimal for constants known to be valid.
func MustDecimal(text string) Decimal {
	d, err := ParseDecimal(text)
	if err != nil {
		panic(err)
	}
	return d
}

func (d Decimal) rat() *big.Rat {
	if d.r == nil {
		return new(big.Rat)
	}
	return d.r
}

// Sign returns -1, 0 or +1.
func (d Decimal) Sign() int { return d.rat().Sign() }

// Cmp compares d and e.
func (d Decimal) Cmp(e Decimal) int { return d.rat().Cmp(e.rat()) }

// String renders the decimal in its shortest exact form.
func (d Decimal) String() string {
	r := d.rat()
	if r.IsInt() {
		return r.Num().String()
	}
	s := r.FloatString(12)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// ApplyRate returns minor × rate rounded half away from zero at the minor unit.
func ApplyRate(minor int64, rate Decimal) int64 {
	if rate.fixed && minor != math.MinInt64 {
		// |minor| × |mant| in 128 bits, divided by 10^exp: exact unless the
		// quotient needs more than 63 bits, which the exact path then handles.
		a, b := uint64(minor), uint64(rate.mant)
		if minor < 0 {
			a = uint64(-minor)
		}
		if rate.mant < 0 {
			b = uint64(-rate.mant)
		}
		hi, lo := bits.Mul64(a, b)
		p := uint64(pow10[rate.exp])
		if hi < p {
			q, rem := bits.Div64(hi, lo, p)
			if rem >= p-rem {
				q++
			}
			if q <= math.MaxInt64 {
				if (minor < 0) != (rate.mant < 0) {
					return -int64(q)
				}
				return int64(q)
			}
		}
	}
	return applyRateExact(minor, rate)
}

// applyRateExact is ApplyRate in exact rational arithmetic, for any Decimal.
func applyRateExact(minor int64, rate Decimal) int64 {
	return roundHalfAway(new(big.Rat).Mul(new(big.Rat).SetInt64(minor), rate.rat()))
}

func roundHalfAway(r *big.Rat) int64 {
	num := new(big.Int).Abs(r.Num())
	q, rem := new(big.Int).QuoRem(num, r.Denom(), new(big.Int))
	if rem.Lsh(rem, 1).Cmp(r.Denom()) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if r.Sign() < 0 {
		q.Neg(q)
	}
	return saturate(q)
}

// Money is an amount in minor units together with its currency; it marshals to
// a JSON number with exactly the currency's digits (150.00, never 150.0000001).
type Money struct {
	Minor    int64
	Currency Currency
}

// String renders the amount with its currency code: "135.00 INR".
func (m Money) String() string {
	var buf [40]byte
	b := append(m.Currency.appendFormat(buf[:0], m.Minor), ' ')
	return string(append(b, m.Currency.Code...))
}

// MarshalJSON writes the amount as a JSON number with the currency's digits.
func (m Money) MarshalJSON() ([]byte, error) { return m.Currency.appendFormat(nil, m.Minor), nil }
