package create_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/create"
	"github.com/orderd/orderd/internal/order/ordertest"
)

var now = time.Date(2026, 1, 5, 11, 34, 53, 0, time.UTC)

const valid = `{"orderId":"o-1","customerId":"c-1","totalAmount":150.0,"currency":"INR","items":[{"productId":"p","quantity":2,"unitPrice":75.0,"totalPrice":150.0}],"createdAt":"2026-01-05T11:34:53.145Z"}`

func TestDecodeChecks(t *testing.T) {
	tests := []struct {
		name, json, wantInError string
	}{
		{"missing orderId", `{"customerId":"c","totalAmount":1,"currency":"INR","items":[{"productId":"p","quantity":1,"unitPrice":1,"totalPrice":1}]}`, "orderId is required"},
		{"missing customerId", strings.Replace(valid, `"customerId":"c-1",`, "", 1), "customerId is required"},
		{"unknown currency", strings.Replace(valid, "INR", "ABC", 1), "currency"},
		{"missing currency", strings.Replace(valid, `"currency":"INR",`, "", 1), "currency is required"},
		{"empty currency", strings.Replace(valid, `"INR"`, `""`, 1), "currency is required"},
		{"null currency", strings.Replace(valid, `"INR"`, `null`, 1), "currency is required"},
		{"too many decimals", strings.Replace(valid, `"totalAmount":150.0`, `"totalAmount":150.001`, 1), "totalAmount"},
		{"JPY decimals", strings.NewReplacer("INR", "JPY", `"totalAmount":150.0`, `"totalAmount":150.5`).Replace(valid), "totalAmount"},
		{"amount as string", strings.Replace(valid, `"totalAmount":150.0`, `"totalAmount":"150.0"`, 1), "must be a number"},
		{"sum mismatch", strings.Replace(valid, `"totalAmount":150.0`, `"totalAmount":151`, 1), "sum of item totals"},
		{"line mismatch", strings.Replace(valid, `"totalPrice":150.0`, `"totalPrice":140.0`, 1), "quantity 2"},
		{"zero quantity", strings.Replace(valid, `"quantity":2`, `"quantity":0`, 1), "positive integer"},
		{"fractional quantity", strings.Replace(valid, `"quantity":2`, `"quantity":1.5`, 1), "positive integer"},
		{"negative price", strings.NewReplacer(`"unitPrice":75.0`, `"unitPrice":-75.0`, `"totalPrice":150.0`, `"totalPrice":-150.0`, `"totalAmount":150.0`, `"totalAmount":-150.0`).Replace(valid), "must not be negative"},
		{"no items", strings.Replace(valid, `[{"productId":"p","quantity":2,"unitPrice":75.0,"totalPrice":150.0}]`, `[]`, 1), "at least one item"},
		{"bad status", strings.Replace(valid, `"currency"`, `"status":"SHIPPED","currency"`, 1), "status"},
		{"bad method", strings.Replace(valid, `"currency"`, `"shippingMethod":"drone","currency"`, 1), "shippingMethod"},
		{"bad createdAt", strings.Replace(valid, "2026-01-05T11:34:53.145Z", "yesterday", 1), "createdAt"},
		{"createdAt in the year 10000 in UTC", strings.Replace(valid, "2026-01-05T11:34:53.145Z", "9999-12-31T23:30:00-01:00", 1), "createdAt"},
		{"createdAt in the year -1 in UTC", strings.Replace(valid, "2026-01-05T11:34:53.145Z", "0000-01-01T00:30:00+01:00", 1), "createdAt"},
		{"createdAt in the year 0", strings.Replace(valid, "2026-01-05T11:34:53.145Z", "0000-06-01T00:00:00Z", 1), "createdAt"},
		{"long string", strings.Replace(valid, `"c-1"`, `"`+strings.Repeat("c", 1025)+`"`, 1), "at most 1024"},
		{"wrong type", strings.Replace(valid, `"customerId":"c-1"`, `"customerId":5`, 1), "data: customerId must be a string, got number"},
		{"not UTF-8", strings.Replace(valid, "c-1", "c-\xff", 1), "UTF-8"},
		{"bad item price names its item", strings.Replace(valid, `"unitPrice":75.0`, `"unitPrice":"75"`, 1), "items[0].unitPrice must be a number"},
		{"trailing bytes", valid + ` {"orderId":"o-2"}`, "after top-level value"},
		// Type errors speak JSON, not Go (no "[]create.ItemData").
		{"wrong type in an item names its item", strings.Replace(valid, `"productId":"p"`, `"productId":7`, 1), "items[0].productId must be a string, got number"},
		{"items not a list", strings.Replace(valid, `[{"productId":"p","quantity":2,"unitPrice":75.0,"totalPrice":150.0}]`, `{}`, 1), "data: items must be an array, got object"},
		{"item not an object", strings.Replace(valid, `[{"productId":"p","quantity":2,"unitPrice":75.0,"totalPrice":150.0}]`, `[1]`, 1), "data: items[0] must be an object, got number"},
		{"status not a string", strings.Replace(valid, `"currency"`, `"status":true,"currency"`, 1), "data: status must be a string, got bool"},
		{"data not an object", `["o"]`, "data: value must be an object, got array"},
		{"malformed", `{"orderId":"o",`, "malformed JSON at byte 15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := create.Decode([]byte(tt.json), now)
			if order.ReasonOf(err) != order.ReasonInvalid || !strings.Contains(err.Error(), tt.wantInError) {
				t.Fatalf("err = %v, want invalid_data mentioning %q", err, tt.wantInError)
			}
		})
	}
}

func TestDecodeStatusesAndDefaults(t *testing.T) {
	for in, want := range map[string]order.Status{"": order.StatusNew, "CREATED": order.StatusNew, "NEW": order.StatusNew, "PENDING": order.StatusPending, "pending": order.StatusPending} {
		j := valid
		if in != "" {
			j = strings.Replace(valid, `"currency"`, `"status":"`+in+`","currency"`, 1)
		}
		got, err := create.Decode([]byte(j), now)
		if err != nil {
			t.Fatal(err)
		}
		if got.Order.Status != want || got.Order.ShippingMethod != order.ShippingStandard {
			t.Errorf("status %q → %s", in, got.Order.Status)
		}
	}
}

func TestRunIdempotentByContent(t *testing.T) {
	st := ordertest.NewStore()
	runOnce := func(j string) (create.Output, error) {
		in, err := create.Decode([]byte(j), now)
		if err != nil {
			t.Fatal(err)
		}
		var out create.Output
		err = st.InTx(context.Background(), func(tx order.Tx) error {
			out, err = create.Run(context.Background(), tx, in)
			return err
		})
		return out, err
	}
	if out, err := runOnce(valid); err != nil || !out.Created {
		t.Fatalf("first: %+v %v", out, err)
	}
	if out, err := runOnce(valid); err != nil || out.Created {
		t.Fatalf("same again: %+v %v", out, err)
	}
	diff := strings.Replace(valid, `"customerId":"c-1"`, `"customerId":"c-2"`, 1)
	if _, err := runOnce(diff); order.ReasonOf(err) != order.ReasonConflict {
		t.Fatalf("different content: %v", err)
	}
}

// TestDecodeAcceptsWhatEncodingJSONDid: the data decoder (encoding/json/v2)
// matches names in any case, as encoding/json did. A name given twice (in
// any case), of which encoding/json kept the last, is refused: two readers
// could read two different orders.
func TestDecodeAcceptsWhatEncodingJSONDid(t *testing.T) {
	got, err := create.Decode([]byte(strings.Replace(valid, `"customerId":"c-1"`, `"CUSTOMERID":"c-1"`, 1)), now)
	if err != nil || got.Order.CustomerID != "c-1" {
		t.Fatalf("upper-case name: %+v, %v", got.Order, err)
	}
	if _, err := create.Decode([]byte(strings.Replace(valid, `"customerId":"c-1"`, `"customer_id":"c-1"`, 1)), now); order.ReasonOf(err) != order.ReasonInvalid {
		t.Errorf("customer_id for customerId: %v; want invalid_data, as encoding/json (\"_\" counts)", err)
	}
	for _, repeated := range []string{`"customerId":"c-0","customerId":"c-1"`, `"customerId":"c-0","CustomerId":"c-1"`} {
		_, err = create.Decode([]byte(strings.Replace(valid, `"customerId":"c-1"`, repeated, 1)), now)
		if order.ReasonOf(err) != order.ReasonInvalid || !strings.Contains(err.Error(), "Id is given twice") {
			t.Errorf("%s: %v; want invalid_data, given twice", repeated, err)
		}
	}
}

// TestDecodeCreatedAtAtTheEndsOfTheYears: the first and last instants of the
// four-digit years in UTC are kept as given.
func TestDecodeCreatedAtAtTheEndsOfTheYears(t *testing.T) {
	for _, at := range []string{"0001-01-01T00:00:00Z", "0001-01-01T01:00:00+01:00", "9999-12-31T23:59:59.999999Z", "9999-12-31T22:59:59-01:00"} {
		in, err := create.Decode([]byte(strings.Replace(valid, "2026-01-05T11:34:53.145Z", at, 1)), now)
		if err != nil {
			t.Errorf("createdAt %s: %v", at, err)
			continue
		}
		if want, _ := time.Parse(time.RFC3339Nano, at); !in.Order.CreatedAt.Equal(want) {
			t.Errorf("createdAt %s: got %v", at, in.Order.CreatedAt)
		}
	}
}
