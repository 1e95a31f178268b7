package order

import "strings"

// Rules are the business parameters of the use cases. Thresholds and fees are
// in major units of the order's own currency; rates are fractions.
type Rules struct {
	FraudThreshold        Decimal
	FreeShippingThreshold Decimal
	StandardShipping      Decimal
	ExpressShipping       Decimal
	DiscountRate          Decimal
	CancellationFeeRate   Decimal
	UnsupportedRegions    []string
}

// DefaultRules returns the seed's values.
func DefaultRules() Rules {
	return Rules{
		FraudThreshold:        MustDecimal("10000"),
		FreeShippingThreshold: MustDecimal("100"),
		StandardShipping:      MustDecimal("5.99"),
		ExpressShipping:       MustDecimal("12.99"),
		DiscountRate:          MustDecimal("0.10"),
		CancellationFeeRate:   MustDecimal("0.05"),
		UnsupportedRegions:    []string{"Antarctica", "Mars Colony"},
	}
}

// RegionSupported reports whether orders can ship to region (case-insensitive).
func (r Rules) RegionSupported(region string) bool {
	for _, u := range r.UnsupportedRegions {
		if strings.EqualFold(strings.TrimSpace(u), strings.TrimSpace(region)) {
			return false
		}
	}
	return true
}
