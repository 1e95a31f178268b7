package create_test

import (
	"testing"
	"time"

	"github.com/orderd/orderd/internal/order/create"
)

// benchData is a typical OrderCreated payload: three items, INR amounts.
const benchData = `{"orderId":"ord-20260105-000123","customerId":"cust-42","customerName":"Asha Rao",` +
	`"totalAmount":1249.50,"currency":"INR","status":"CREATED","items":[` +
	`{"productId":"prod-007","quantity":2,"unitPrice":199.75,"totalPrice":399.50},` +
	`{"productId":"prod-031","quantity":1,"unitPrice":650.00,"totalPrice":650.00},` +
	`{"productId":"prod-088","quantity":4,"unitPrice":50.00,"totalPrice":200.00}],` +
	`"createdAt":"2026-01-05T11:34:53.145Z","shippingRegion":"Karnataka","shippingMethod":"standard"}`

// BenchmarkCreateDecode measures create.Decode of a typical payload: JSON
// decoding, the §2 checks and the exact decimal parsing of its amounts.
func BenchmarkCreateDecode(b *testing.B) {
	raw := []byte(benchData)
	at := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := create.Decode(raw, at); err != nil {
			b.Fatal(err)
		}
	}
}
