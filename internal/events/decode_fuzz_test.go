package events_test

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/orderd/orderd/internal/events"
	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/create"
)

// decodeReasons are the reasons events.Decode may give: invalid_data for a
// name given twice within data.
var decodeReasons = map[string]bool{
	events.ReasonTooLarge: true, events.ReasonInvalidUTF8: true, events.ReasonMalformedJSON: true,
	events.ReasonInvalidEnvelope: true, order.ReasonInvalid: true,
}

// FuzzDecode feeds arbitrary record values to the envelope decoder and the
// OrderCreated data decoder, as the consumer does: neither may panic, every
// error must be permanent with a reason (so the record goes to the DLQ at
// once, never retried), and what they accept must satisfy §2. The seed
// corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3 {
		_, v := events.SampleOrderCreated("fuzz", i, rng)
		f.Add(v)
	}
	now := time.Date(2026, 1, 5, 11, 34, 53, 0, time.UTC)
	f.Fuzz(func(t *testing.T, value []byte) {
		ev, err := events.Decode(value)
		if err != nil {
			kind, reason := fault.Of(err)
			if kind != fault.Permanent || !decodeReasons[reason] {
				t.Fatalf("events.Decode error %q is %s/%q, want permanent with a decoding reason", err, kind, reason)
			}
			return
		}
		if len(value) > events.MaxRecordBytes || !utf8.Valid(value) {
			t.Fatalf("accepted a value of %d bytes, valid UTF-8 %v", len(value), utf8.Valid(value))
		}
		if ev.ID == "" || len(ev.ID) > events.MaxIDBytes || ev.Name == "" {
			t.Fatalf("accepted id %q, name %q", ev.ID, ev.Name)
		}
		if d := bytes.TrimSpace(ev.Data); len(d) == 0 || d[0] != '{' {
			t.Fatalf("accepted data %q", ev.Data)
		}
		_ = ev.OrderID() // must not panic
		in, err := create.Decode(ev.Data, now)
		if err != nil {
			if kind, reason := fault.Of(err); kind != fault.Permanent || reason != order.ReasonInvalid {
				t.Fatalf("create.Decode error %q is %s/%q, want permanent %s", err, kind, reason, order.ReasonInvalid)
			}
			return
		}
		checkOrder(t, in.Order)
	})
}

// checkOrder fails t unless o satisfies §2's data checks, computed exactly.
func checkOrder(t *testing.T, o *order.Order) {
	t.Helper()
	if o.ID == "" || o.CustomerID == "" || len(o.ID) > create.MaxStringBytes || len(o.CustomerID) > create.MaxStringBytes {
		t.Fatalf("accepted orderId %q, customerId %q", o.ID, o.CustomerID)
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
}
