package order_test

import (
	"testing"

	"github.com/orderd/orderd/internal/order"
)

// TestCloneSharesNothing: a clone's items and amounts are its own, and a nil
// amount stays nil.
func TestCloneSharesNothing(t *testing.T) {
	ship, final := int64(599), int64(10599)
	o := &order.Order{ID: "o", ShippingCost: &ship, FinalTotal: &final,
		Items: []order.Item{{ProductID: "p", Quantity: 1}}}
	c := o.Clone()
	*c.ShippingCost, *c.FinalTotal, c.Items[0].Quantity = 0, 0, 9
	if ship != 599 || final != 10599 || o.Items[0].Quantity != 1 {
		t.Errorf("changing the clone changed the original: shipping %d, final %d, quantity %d", ship, final, o.Items[0].Quantity)
	}
	if c.Discount != nil || c.RefundAmount != nil {
		t.Errorf("nil amounts cloned as %v, %v", c.Discount, c.RefundAmount)
	}

	var into order.Order
	into.CopyAmounts(o)
	if into.ShippingCost == o.ShippingCost || *into.ShippingCost != 599 || *into.FinalTotal != 10599 || into.Discount != nil {
		t.Errorf("CopyAmounts = %v/%v/%v, want copies of 599/10599 and nil", into.ShippingCost, into.FinalTotal, into.Discount)
	}
}
