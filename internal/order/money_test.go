package order_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/orderd/orderd/internal/order"
)

func mustCurrency(t *testing.T, code string) order.Currency {
	t.Helper()
	c, err := order.LookupCurrency(code)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLookupCurrencyDigits(t *testing.T) {
	// ISO 4217's minor units (§5), also where CLDR's (x/text's) differ
	// (IQD, IDR, COP, RSD…) and for codes newer than x/text (VES, UYW…).
	for code, digits := range map[string]int{"JPY": 0, "INR": 2, "USD": 2, "KWD": 3, "BHD": 3,
		"IQD": 3, "IDR": 2, "COP": 2, "ALL": 2, "RSD": 2, "LBP": 2, "CLF": 4,
		"VES": 2, "MRU": 2, "SLE": 2, "UYW": 4} {
		if got := mustCurrency(t, code).Digits; got != digits {
			t.Errorf("%s digits = %d, want %d", code, got, digits)
		}
	}
	for _, bad := range []string{"", "usd", "ABC", "XXX", "XTS", "XAU", "XDR", "DOLLARS", "US"} {
		if _, err := order.LookupCurrency(bad); !errors.Is(err, order.ErrUnknownCurrency) {
			t.Errorf("LookupCurrency(%q) err = %v, want ErrUnknownCurrency", bad, err)
		}
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		code, text string
		want       int64
		wantErr    bool
	}{
		{"INR", "150", 15000, false},
		{"INR", "150.0", 15000, false},
		{"INR", "150.00", 15000, false},
		{"INR", "150.000", 15000, false}, // trailing zeros are exact
		{"INR", "99.99", 9999, false},
		{"INR", "0.1", 10, false},
		{"INR", "1.5e2", 15000, false},
		{"INR", "99.999", 0, true},
		{"JPY", "1000", 1000, false},
		{"JPY", "1000.5", 0, true},
		{"KWD", "10.005", 10005, false},
		{"KWD", "10.0005", 0, true},
		{"USD", "-5.25", -525, false},
		{"USD", "abc", 0, true},
		{"USD", "1/3", 0, true},
		{"USD", "1e999999999", 0, true},
		{"USD", "99999999999999999999999", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.code+" "+tt.text, func(t *testing.T) {
			got, err := mustCurrency(t, tt.code).ParseAmount(tt.text)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestFormatAndJSON(t *testing.T) {
	tests := []struct {
		code  string
		minor int64
		want  string
	}{
		{"INR", 15000, "150.00"},
		{"INR", 5, "0.05"},
		{"INR", -525, "-5.25"},
		{"JPY", 1234, "1234"},
		{"KWD", 10005, "10.005"},
	}
	for _, tt := range tests {
		m := order.Money{Minor: tt.minor, Currency: mustCurrency(t, tt.code)}
		b, err := json.Marshal(map[string]order.Money{"a": m})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(b), `{"a":`+tt.want+`}`; got != want {
			t.Errorf("JSON %s", got+" want "+want)
		}
	}
}

func TestApplyRateRoundsHalfAwayFromZero(t *testing.T) {
	tests := []struct {
		minor int64
		rate  string
		want  int64
	}{
		{15000, "0.10", 1500},
		{13500, "0.05", 675},
		{999, "0.10", 100},    // JPY 999 × 10% = 99.9 → 100
		{995, "0.10", 100},    // 99.5 → 100 (half away)
		{994, "0.10", 99},     // 99.4 → 99
		{10005, "0.10", 1001}, // KWD 10.005 × 10% = 1.0005 → 1.001
		{-995, "0.10", -100},  // away from zero for negatives too
		{5, "0.5", 3},
		{1, "0", 0},
	}
	for _, tt := range tests {
		if got := order.ApplyRate(tt.minor, order.MustDecimal(tt.rate)); got != tt.want {
			t.Errorf("ApplyRate(%d, %s) = %d, want %d", tt.minor, tt.rate, got, tt.want)
		}
	}
}

func TestFromMajorRoundsPerCurrency(t *testing.T) {
	tests := []struct {
		code, major string
		want        int64
	}{
		{"INR", "5.99", 599},
		{"JPY", "5.99", 6},
		{"JPY", "12.5", 13},
		{"KWD", "5.99", 5990},
		{"INR", "10000", 1000000},
	}
	for _, tt := range tests {
		if got := mustCurrency(t, tt.code).FromMajor(order.MustDecimal(tt.major)); got != tt.want {
			t.Errorf("%s FromMajor(%s) = %d, want %d", tt.code, tt.major, got, tt.want)
		}
	}
}

func TestStatusMachine(t *testing.T) {
	allowed := map[[2]order.Status]bool{
		{order.StatusNew, order.StatusProcessing}:       true,
		{order.StatusPending, order.StatusProcessing}:   true,
		{order.StatusProcessing, order.StatusShipped}:   true,
		{order.StatusShipped, order.StatusDelivered}:    true,
		{order.StatusNew, order.StatusCancelled}:        true,
		{order.StatusPending, order.StatusCancelled}:    true,
		{order.StatusProcessing, order.StatusCancelled}: true,
	}
	for _, from := range order.Statuses {
		for _, to := range order.Statuses {
			if got := order.CanMove(from, to); got != allowed[[2]order.Status{from, to}] {
				t.Errorf("CanMove(%s, %s) = %v", from, to, got)
			}
		}
	}
}

// TestThresholdLimits: FloorMinor and CeilMinor make a comparison with a
// threshold exact whatever the currency's digits, and saturate instead of
// wrapping.
func TestThresholdLimits(t *testing.T) {
	tests := []struct {
		code, major string
		floor, ceil int64
	}{
		{"JPY", "9999.99", 9999, 10000},
		{"JPY", "49.49", 49, 50},
		{"JPY", "100", 100, 100},
		{"USD", "100", 10000, 10000},
		{"USD", "0.005", 0, 1},
		{"KWD", "1.2345", 1234, 1235},
		{"USD", "0", 0, 0},
		{"USD", "1e20", math.MaxInt64, math.MaxInt64}, // exact path: saturated
		{"USD", "123456789012345.678", 12345678901234567, 12345678901234568},
	}
	for _, tt := range tests {
		cur := mustCurrency(t, tt.code)
		d := order.MustDecimal(tt.major)
		if got := cur.FloorMinor(d); got != tt.floor {
			t.Errorf("FloorMinor(%s %s) = %d, want %d", tt.major, tt.code, got, tt.floor)
		}
		if got := cur.CeilMinor(d); got != tt.ceil {
			t.Errorf("CeilMinor(%s %s) = %d, want %d", tt.major, tt.code, got, tt.ceil)
		}
	}
	if got := mustCurrency(t, "USD").FromMajor(order.MustDecimal("1e20")); got != math.MaxInt64 {
		t.Errorf("FromMajor(1e20 USD) = %d, want it saturated, not wrapped", got)
	}
}
