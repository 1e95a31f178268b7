package create_test

import (
	"encoding/json"
	"math/big"
	"testing"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/create"
)

// FuzzCreateDecode feeds arbitrary bytes to the OrderCreated data decoder
// (the body of POST /orders and the data of an OrderCreated event). It must
// not panic; every error must be permanent with reason invalid_data; an
// accepted order must satisfy §2 computed exactly (no overflow), decode the
// same way twice, and survive a round trip through its own JSON form. The
// seed corpus is in testdata/fuzz/FuzzCreateDecode.
func FuzzCreateDecode(f *testing.F) {
	f.Add([]byte(valid))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := create.Decode(data, now)
		if err != nil {
			if kind, reason := fault.Of(err); kind != fault.Permanent || reason != order.ReasonInvalid {
				t.Fatalf("error %q is %s/%q, want permanent %s", err, kind, reason, order.ReasonInvalid)
			}
			return
		}
		o := in.Order
		if o.ID == "" || o.CustomerID == "" || len(o.ID) > create.MaxStringBytes || len(o.CustomerID) > create.MaxStringBytes ||
			len(o.CustomerName) > create.MaxStringBytes || len(o.ShippingRegion) > create.MaxStringBytes {
			t.Fatalf("accepted strings: orderId %q, customerId %q", o.ID, o.CustomerID)
		}
		if o.Status != order.StatusNew && o.Status != order.StatusPending {
			t.Fatalf("accepted status %q", o.Status)
		}
		if n := len(o.Items); n == 0 || n > create.MaxItems {
			t.Fatalf("accepted %d items", n)
		}
		sum := new(big.Int)
		for i, it := range o.Items {
			if it.ProductID == "" || it.Quantity <= 0 || it.UnitPrice < 0 {
				t.Fatalf("item %d accepted: %+v", i, it)
			}
			want := new(big.Int).Mul(big.NewInt(it.Quantity), big.NewInt(it.UnitPrice))
			if want.Cmp(big.NewInt(it.TotalPrice)) != 0 {
				t.Fatalf("item %d accepted: totalPrice %d != quantity %d × unitPrice %d = %s", i, it.TotalPrice, it.Quantity, it.UnitPrice, want)
			}
			sum.Add(sum, big.NewInt(it.TotalPrice))
		}
		if sum.Cmp(big.NewInt(o.TotalAmount)) != 0 {
			t.Fatalf("accepted totalAmount %d != sum of item totals %s", o.TotalAmount, sum)
		}

		again, err := create.Decode(data, now)
		if err != nil || !order.SameContent(o, again.Order) {
			t.Fatalf("a second decode differs: %v", err)
		}
		round, err := create.Decode(encode(t, o, in.CreatedAtGiven), now)
		if err != nil {
			t.Fatalf("the order's own JSON form is refused: %v", err)
		}
		if !order.SameContent(o, round.Order) {
			t.Fatalf("round trip changed the order:\n%+v\n%+v", o, round.Order)
		}
	})
}

// encode writes o back as OrderCreated data, amounts with the currency's digits.
func encode(t *testing.T, o *order.Order, withCreatedAt bool) []byte {
	t.Helper()
	d := create.Data{
		OrderID: o.ID, CustomerID: o.CustomerID, CustomerName: o.CustomerName,
		TotalAmount: json.RawMessage(o.Currency.Format(o.TotalAmount)), Currency: o.Currency.Code,
		Status: string(o.Status), ShippingRegion: o.ShippingRegion, ShippingMethod: string(o.ShippingMethod),
	}
	if withCreatedAt {
		d.CreatedAt = o.CreatedAt.Format("2006-01-02T15:04:05.999999Z07:00")
	}
	for _, it := range o.Items {
		d.Items = append(d.Items, create.ItemData{
			ProductID:  it.ProductID,
			Quantity:   json.RawMessage(order.Currency{Code: "qty"}.Format(it.Quantity)),
			UnitPrice:  json.RawMessage(o.Currency.Format(it.UnitPrice)),
			TotalPrice: json.RawMessage(o.Currency.Format(it.TotalPrice)),
		})
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}
