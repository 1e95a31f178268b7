package httpapi

import (
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/cancel"
	"github.com/orderd/orderd/internal/order/fulfil"
	"github.com/orderd/orderd/internal/order/process"
)

// Amount is money in a response: a JSON number with exactly the currency's
// digits (150.00 INR, 150 JPY, 1.500 KWD), never float noise.
type Amount order.Money

// MarshalJSON writes the amount as order.Money does.
func (a Amount) MarshalJSON() ([]byte, error) { return order.Money(a).MarshalJSON() }

// Schema documents Amount as a number (it is a struct in Go).
func (Amount) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeNumber, Description: "An amount in major units with exactly the currency's minor-unit digits", Examples: []any{150.00}}
}

func amountPtr(o *order.Order, minor *int64) *Amount {
	if minor == nil {
		return nil
	}
	a := Amount(o.Money(*minor))
	return &a
}

func stringPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// OrderItem is one line of an order in a response.
type OrderItem struct {
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity" minimum:"1"`
	UnitPrice  Amount `json:"unit_price"`
	TotalPrice Amount `json:"total_price"`
}

// Order is an order as the HTTP API shows it (§8, snake_case). Amounts not
// yet computed, and optional texts not given, are null.
type Order struct {
	ID                 string      `json:"id"`
	CustomerID         string      `json:"customer_id"`
	CustomerName       *string     `json:"customer_name" nullable:"true"`
	Status             string      `json:"status" enum:"new,pending,processing,shipped,delivered,cancelled"`
	Currency           string      `json:"currency" doc:"ISO 4217 code" example:"INR"`
	TotalAmount        Amount      `json:"total_amount"`
	Items              []OrderItem `json:"items" nullable:"false"`
	ShippingRegion     *string     `json:"shipping_region" nullable:"true"`
	ShippingMethod     string      `json:"shipping_method" enum:"standard,express"`
	ShippingCost       *Amount     `json:"shipping_cost" nullable:"true" doc:"Set once processed"`
	Discount           *Amount     `json:"discount" nullable:"true" doc:"Set once processed"`
	FinalTotal         *Amount     `json:"final_total" nullable:"true" doc:"total_amount + shipping_cost - discount; set once processed"`
	RefundAmount       *Amount     `json:"refund_amount" nullable:"true" doc:"Set once cancelled"`
	CancellationReason *string     `json:"cancellation_reason" nullable:"true"`
	TrackingNumber     *string     `json:"tracking_number" nullable:"true"`
	CreatedAt          time.Time   `json:"created_at"`
	UpdatedAt          time.Time   `json:"updated_at"`
}

// newOrder maps the domain order to its response form.
func newOrder(o *order.Order) Order {
	out := Order{
		ID:                 o.ID,
		CustomerID:         o.CustomerID,
		CustomerName:       stringPtr(o.CustomerName),
		Status:             string(o.Status),
		Currency:           o.Currency.Code,
		TotalAmount:        Amount(o.Money(o.TotalAmount)),
		Items:              make([]OrderItem, len(o.Items)),
		ShippingRegion:     stringPtr(o.ShippingRegion),
		ShippingMethod:     string(o.ShippingMethod),
		ShippingCost:       amountPtr(o, o.ShippingCost),
		Discount:           amountPtr(o, o.Discount),
		FinalTotal:         amountPtr(o, o.FinalTotal),
		RefundAmount:       amountPtr(o, o.RefundAmount),
		CancellationReason: stringPtr(o.CancellationReason),
		TrackingNumber:     stringPtr(o.TrackingNumber),
		CreatedAt:          o.CreatedAt.UTC(),
		UpdatedAt:          o.UpdatedAt.UTC(),
	}
	if out.ShippingMethod == "" {
		out.ShippingMethod = string(order.ShippingStandard)
	}
	for i, it := range o.Items {
		out.Items[i] = OrderItem{
			ProductID:  it.ProductID,
			Quantity:   it.Quantity,
			UnitPrice:  Amount(o.Money(it.UnitPrice)),
			TotalPrice: Amount(o.Money(it.TotalPrice)),
		}
	}
	return out
}

// OrderList is a page of orders.
type OrderList struct {
	Orders     []Order `json:"orders" nullable:"false"`
	NextCursor *string `json:"next_cursor" nullable:"true" doc:"Pass as cursor to get the next page; null on the last page"`
}

// ProcessResult is the seed's OUTPUT_ProcessOrder.
type ProcessResult struct {
	Order           Order  `json:"order"`
	ShippingCost    Amount `json:"shipping_cost"`
	DiscountApplied Amount `json:"discount_applied"`
	FinalTotal      Amount `json:"final_total"`
	Message         string `json:"message"`
	Success         bool   `json:"success"`
}

func newProcessResult(out process.Output) ProcessResult {
	return ProcessResult{
		Order:           newOrder(out.Order),
		ShippingCost:    Amount(out.ShippingCost),
		DiscountApplied: Amount(out.DiscountApplied),
		FinalTotal:      Amount(out.FinalTotal),
		Message:         out.Message,
		Success:         out.Success,
	}
}

// CancelResult is the seed's OUTPUT_CancelOrder.
type CancelResult struct {
	Order        Order  `json:"order"`
	RefundAmount Amount `json:"refund_amount"`
	Message      string `json:"message"`
	Success      bool   `json:"success"`
}

func newCancelResult(out cancel.Output) CancelResult {
	return CancelResult{Order: newOrder(out.Order), RefundAmount: Amount(out.RefundAmount), Message: out.Message, Success: out.Success}
}

// FulfilResult is an order after shipping or delivery.
type FulfilResult struct {
	Order   Order  `json:"order"`
	Message string `json:"message"`
	Success bool   `json:"success"`
}

func newFulfilResult(out fulfil.Output) FulfilResult {
	return FulfilResult{Order: newOrder(out.Order), Message: out.Message, Success: out.Success}
}

// Stock is a product's inventory.
type Stock struct {
	ProductID string `json:"product_id"`
	Available int64  `json:"available" doc:"Units that can still be reserved"`
	Reserved  int64  `json:"reserved" doc:"Units reserved by orders processed and not cancelled: shipped and delivered orders keep theirs; only a cancellation releases them"`
}

func newStock(s order.Stock) Stock {
	return Stock{ProductID: s.ProductID, Available: s.Available, Reserved: s.Reserved}
}

// Published says where POST /events put the envelope.
type Published struct {
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Health is the liveness answer.
type Health struct {
	Status string `json:"status" enum:"ok"`
}

// ReadyReport is the readiness answer.
type ReadyReport struct {
	Status     string               `json:"status" enum:"ready,not_ready"`
	Ready      bool                 `json:"ready"`
	Components map[string]Component `json:"components"`
}

// OrderCreatedData documents the body of POST /orders: the data of an
// OrderCreated event, camelCase as in the seed's event schema. The handler
// reads the raw bytes with create.Decode so amounts stay exact; this type is
// only the documentation of that format.
type OrderCreatedData struct {
	_              struct{}          `additionalProperties:"true"`
	OrderID        string            `json:"orderId" maxLength:"1024" doc:"At most 1,024 bytes of UTF-8" example:"12345"`
	CustomerID     string            `json:"customerId" maxLength:"1024" doc:"At most 1,024 bytes of UTF-8" example:"cust-789"`
	CustomerName   string            `json:"customerName,omitempty" required:"false" maxLength:"1024" doc:"At most 1,024 bytes of UTF-8"`
	TotalAmount    Amount            `json:"totalAmount" doc:"Sum of the items' totalPrice, with no more decimals than the currency allows"`
	Currency       string            `json:"currency" doc:"ISO 4217 code" example:"INR"`
	Status         string            `json:"status,omitempty" required:"false" enum:"CREATED,NEW,PENDING" doc:"CREATED or NEW become new, PENDING pending; default new. Case is ignored (pending is PENDING)"`
	Items          []OrderCreatedRow `json:"items" minItems:"1" maxItems:"1000" nullable:"false"`
	CreatedAt      *time.Time        `json:"createdAt,omitempty" required:"false" doc:"RFC 3339; defaults to the time of the request"`
	ShippingRegion string            `json:"shippingRegion,omitempty" required:"false" maxLength:"1024" doc:"At most 1,024 bytes of UTF-8"`
	ShippingMethod string            `json:"shippingMethod,omitempty" required:"false" enum:"standard,express" doc:"Default standard. Case is ignored (EXPRESS is express)"`
}

// OrderCreatedRow documents one item of OrderCreatedData.
type OrderCreatedRow struct {
	_          struct{} `additionalProperties:"true"`
	ProductID  string   `json:"productId" maxLength:"1024" doc:"At most 1,024 bytes of UTF-8" example:"prod-001"`
	Quantity   int64    `json:"quantity" minimum:"1" example:"2"`
	UnitPrice  Amount   `json:"unitPrice" doc:"Not negative"`
	TotalPrice Amount   `json:"totalPrice" doc:"quantity × unitPrice"`
}

// EventEnvelope documents the body of POST /events, the seed's envelope.
type EventEnvelope struct {
	_    struct{}       `additionalProperties:"true"`
	ID   string         `json:"id" minLength:"1" maxLength:"200" doc:"Unique event id, the idempotency key; at most 200 bytes of UTF-8" example:"550e8400-e29b-41d4-a716-446655440000"`
	Name string         `json:"name" minLength:"1" doc:"Registered event name" example:"OrderCreated"`
	Data map[string]any `json:"data" doc:"Event-specific payload; its orderId becomes the record key"`
}
