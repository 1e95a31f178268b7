package events

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
)

// SampleOrderCreated returns the i-th generated valid OrderCreated envelope
// and its key (the order id): one to three items, INR amounts, totals that
// always add up, and an id derived from run and i so that a run can be
// reproduced. Used by `orderd produce --sample` and the benchmarks.
func SampleOrderCreated(run string, i int, rng *rand.Rand) (key, value []byte) {
	orderID := fmt.Sprintf("%s-%d", run, i)
	type item struct {
		ProductID  string      `json:"productId"`
		Quantity   int         `json:"quantity"`
		UnitPrice  json.Number `json:"unitPrice"`
		TotalPrice json.Number `json:"totalPrice"`
	}
	n := 1 + rng.IntN(3)
	items := make([]item, n)
	var total int64
	for j := range items {
		qty := 1 + rng.IntN(3)
		unit := int64(500 + rng.IntN(9500)) // 5.00 … 99.99
		line := int64(qty) * unit
		total += line
		items[j] = item{
			ProductID:  fmt.Sprintf("prod-%03d", rng.IntN(100)),
			Quantity:   qty,
			UnitPrice:  json.Number(fmt.Sprintf("%d.%02d", unit/100, unit%100)),
			TotalPrice: json.Number(fmt.Sprintf("%d.%02d", line/100, line%100)),
		}
	}
	env := struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Data any    `json:"data"`
	}{
		ID:   uuid.NewSHA1(uuid.NameSpaceOID, []byte(orderID)).String(),
		Name: "OrderCreated",
		Data: map[string]any{
			"orderId":     orderID,
			"customerId":  fmt.Sprintf("cust-%d", rng.IntN(1000)),
			"totalAmount": json.Number(fmt.Sprintf("%d.%02d", total/100, total%100)),
			"currency":    "INR",
			"status":      "CREATED",
			"items":       items,
			"createdAt":   time.Now().UTC().Format(time.RFC3339Nano),
		},
	}
	value, err := json.Marshal(env)
	if err != nil {
		panic(err) // only fixed, marshalable types above
	}
	return []byte(orderID), value
}
