// Package create is the use case that records a new order from the data of an
// OrderCreated event or a POST /orders body: it checks the data (§2), turns
// amounts into exact minor units and stores the order unless an identical one
// exists.
package create

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/orderd/orderd/internal/order"
)

// Limits on the data of one order (§2).
const (
	MaxStringBytes = order.MaxTextBytes
	MaxItems       = 1000
)

// Data is the OrderCreated payload exactly as the seed's event schema spells it.
// Numbers stay raw so that amounts are parsed as exact decimals, never floats.
type Data struct {
	OrderID        string          `json:"orderId"`
	CustomerID     string          `json:"customerId"`
	CustomerName   string          `json:"customerName,omitempty"`
	TotalAmount    json.RawMessage `json:"totalAmount"`
	Currency       string          `json:"currency"`
	Status         string          `json:"status,omitempty"`
	Items          []ItemData      `json:"items"`
	CreatedAt      string          `json:"createdAt,omitempty"`
	ShippingRegion string          `json:"shippingRegion,omitempty"`
	ShippingMethod string          `json:"shippingMethod,omitempty"`
}

// ItemData is one line of Data.
type ItemData struct {
	ProductID  string          `json:"productId"`
	Quantity   json.RawMessage `json:"quantity"`
	UnitPrice  json.RawMessage `json:"unitPrice"`
	TotalPrice json.RawMessage `json:"totalPrice"`
}

// Input is a checked order ready to store. CreatedAtGiven is false when the
// data had no createdAt and the clock supplied it; then a re-send is compared
// without it.
type Input struct {
	Order          *order.Order
	CreatedAtGiven bool
}

// OrderID is the id of the order to create.
func (in Input) OrderID() string { return in.Order.ID }

// ProductIDs lists the products of the order's items, for a batch to
// preload their stock (order.Keys).
func (in Input) ProductIDs() []string {
	ids := make([]string, len(in.Order.Items))
	for i, it := range in.Order.Items {
		ids[i] = it.ProductID
	}
	return ids
}

// invalid builds the permanent error for data that breaks a §2 check.
func invalid(format string, args ...any) error {
	return order.Reject(order.ReasonInvalid, fmt.Sprintf(format, args...))
}

// Decode parses raw OrderCreated data (JSON) and checks it; see Parse.
func Decode(raw []byte, now time.Time) (Input, error) {
	if !utf8.Valid(raw) {
		return Input{}, invalid("data is not valid UTF-8")
	}
	var d Data
	if err := jsonv2.Unmarshal(raw, &d, DecodeOptions); err != nil {
		return Input{}, invalid("data: %v", DescribeJSONError(err))
	}
	return d.Parse(now)
}

// DecodeOptions make encoding/json/v2, which decodes the data of every
// OrderCreated event in 40% of encoding/json's time (BenchmarkCreateDecode),
// match names as encoding/json does: in any letter case, with "_" and "-"
// significant (v2 alone would read order_id as orderId). A name given
// twice, in any case, is refused (encoding/json kept the last): two readers
// of such data could read two different orders, as of the HTTP API's bodies.
var DecodeOptions = jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true), jsonv1.MatchCaseSensitiveDelimiter(true))

// Parse checks the data against §2 and builds the order. Every violation is
// an *order.RuleError with reason "invalid" and a message naming the field.
func (d *Data) Parse(now time.Time) (Input, error) {
	if err := requireString(field("orderId"), d.OrderID); err != nil {
		return Input{}, err
	}
	if err := requireString(field("customerId"), d.CustomerID); err != nil {
		return Input{}, err
	}
	for _, f := range []struct{ name, v string }{{"customerName", d.CustomerName}, {"shippingRegion", d.ShippingRegion}} {
		if err := checkString(field(f.name), f.v); err != nil {
			return Input{}, err
		}
	}
	// Checked here, or a missing currency reads as unknown currency "".
	if err := requireString(field("currency"), d.Currency); err != nil {
		return Input{}, err
	}
	cur, err := order.LookupCurrency(d.Currency)
	if err != nil {
		return Input{}, invalid("currency: %v", err)
	}
	total, err := amount(field("totalAmount"), d.TotalAmount, cur)
	if err != nil {
		return Input{}, err
	}
	status, err := parseStatus(d.Status)
	if err != nil {
		return Input{}, err
	}
	method := order.ShippingStandard
	switch strings.ToLower(d.ShippingMethod) {
	case "", "standard":
	case "express":
		method = order.ShippingExpress
	default:
		return Input{}, invalid("shippingMethod %q: want standard or express", d.ShippingMethod)
	}
	if len(d.Items) == 0 {
		return Input{}, invalid("items: an order needs at least one item")
	}
	if len(d.Items) > MaxItems {
		return Input{}, invalid("items: %d items, at most %d allowed", len(d.Items), MaxItems)
	}
	items := make([]order.Item, len(d.Items))
	var sum int64
	for i, it := range d.Items {
		if err := requireString(itemField(i, "productId"), it.ProductID); err != nil {
			return Input{}, err
		}
		qty, err := quantity(itemField(i, "quantity"), it.Quantity)
		if err != nil {
			return Input{}, err
		}
		unit, err := amount(itemField(i, "unitPrice"), it.UnitPrice, cur)
		if err != nil {
			return Input{}, err
		}
		if unit < 0 {
			return Input{}, invalid("%s must not be negative", itemField(i, "unitPrice"))
		}
		line, err := amount(itemField(i, "totalPrice"), it.TotalPrice, cur)
		if err != nil {
			return Input{}, err
		}
		// qty and unit are non-negative here; the product is computed in
		// 128 bits so that it cannot wrap around to a plausible total.
		if hi, lo := bits.Mul64(uint64(qty), uint64(unit)); hi != 0 || lo != uint64(line) || line < 0 {
			return Input{}, invalid("%s %s != quantity %d × unitPrice %s", itemField(i, "totalPrice"), cur.Format(line), qty, cur.Format(unit))
		}
		sum += line
		items[i] = order.Item{ProductID: it.ProductID, Quantity: qty, UnitPrice: unit, TotalPrice: line}
	}
	if sum != total {
		return Input{}, invalid("totalAmount %s != sum of item totals %s", cur.Format(total), cur.Format(sum))
	}
	in := Input{CreatedAtGiven: d.CreatedAt != ""}
	created := now.UTC().Truncate(time.Microsecond)
	if in.CreatedAtGiven {
		t, err := time.Parse(time.RFC3339Nano, d.CreatedAt)
		if err != nil {
			return Input{}, invalid("createdAt %q: want an RFC 3339 time", d.CreatedAt)
		}
		// Stores keep microseconds (PostgreSQL's precision); cutting here
		// keeps a re-sent event equal to what was stored.
		created = t.UTC().Truncate(time.Microsecond)
		// An offset can take a time at either end of the four-digit years
		// past them in UTC (9999-12-31T23:30:00-01:00), where neither
		// SQLite's text, nor JSON, nor RFC 3339 can hold it.
		if y := created.Year(); y < 1 || y > 9999 {
			return Input{}, invalid("createdAt %q: want a time in the years 0001 to 9999 in UTC", d.CreatedAt)
		}
	}
	in.Order = &order.Order{
		ID:             d.OrderID,
		CustomerID:     d.CustomerID,
		CustomerName:   d.CustomerName,
		Status:         status,
		InitialStatus:  status,
		Currency:       cur,
		TotalAmount:    total,
		Items:          items,
		ShippingRegion: d.ShippingRegion,
		ShippingMethod: method,
		CreatedAt:      created,
		UpdatedAt:      created,
	}
	return in, nil
}

func parseStatus(s string) (order.Status, error) {
	switch strings.ToUpper(s) {
	case "", "CREATED", "NEW":
		return order.StatusNew, nil
	case "PENDING":
		return order.StatusPending, nil
	}
	return "", invalid("status %q: want CREATED, NEW or PENDING", s)
}

// fieldName names a field of the data in messages. It is formatted only
// when a message is: building "items[3].unitPrice" for every field of every
// item was a third of decoding's allocations.
type fieldName struct {
	item int // index in items, or -1 for a top-level field
	name string
}

func field(name string) fieldName { return fieldName{item: -1, name: name} }

func itemField(i int, name string) fieldName { return fieldName{item: i, name: name} }

func (f fieldName) String() string {
	if f.item < 0 {
		return f.name
	}
	return fmt.Sprintf("items[%d].%s", f.item, f.name)
}

func requireString(field fieldName, v string) error {
	if strings.TrimSpace(v) == "" {
		return invalid("%s is required", field)
	}
	return checkString(field, v)
}

func checkString(field fieldName, v string) error {
	if len(v) > MaxStringBytes {
		return invalid("%s is %d bytes, at most %d allowed", field, len(v), MaxStringBytes)
	}
	return nil
}

// number returns the raw JSON number text, refusing strings, null and the rest.
func number(field fieldName, raw json.RawMessage) (string, error) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || s == "null" {
		return "", invalid("%s is required", field)
	}
	if c := s[0]; c != '-' && (c < '0' || c > '9') {
		return "", invalid("%s must be a number, got %s", field, truncate(s))
	}
	return s, nil
}

func amount(field fieldName, raw json.RawMessage, cur order.Currency) (int64, error) {
	s, err := number(field, raw)
	if err != nil {
		return 0, err
	}
	v, err := cur.ParseAmount(s)
	if err != nil {
		return 0, invalid("%s: %v", field, err)
	}
	return v, nil
}

func quantity(field fieldName, raw json.RawMessage) (int64, error) {
	s, err := number(field, raw)
	if err != nil {
		return 0, err
	}
	// A quantity is an amount with no decimals: reuse the exact parser.
	q, err := order.Currency{Code: "qty"}.ParseAmount(s)
	if err != nil || q <= 0 || q > 1_000_000_000 {
		return 0, invalid("%s must be a positive integer, got %s", field, truncate(s))
	}
	return q, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// DescribeJSONError turns the errors of encoding/json and encoding/json/v2
// into messages in JSON's terms that name the field — "items must be an
// array, got object", "orderId must be a string, got number", never a Go
// type — without echoing large inputs. The events' decoders share it.
func DescribeJSONError(err error) string {
	if name, ok := DuplicateName(err); ok {
		return name + " is given twice (names match in any letter case)"
	}
	var se *jsonv2.SemanticError
	if errors.As(err, &se) && se.GoType != nil {
		return fmt.Sprintf("%s must be %s, got %s", pointerField(se.JSONPointer), jsonKindOf(se.GoType), kindName(se.JSONKind))
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Type != nil {
		field := te.Field
		if field == "" {
			field = "value"
		}
		got, _, _ := strings.Cut(te.Value, " ") // "number 1.5": the kind, not the input
		return fmt.Sprintf("%s must be %s, got %s", field, jsonKindOf(te.Type), got)
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		return fmt.Sprintf("malformed JSON at byte %d: %v", syn.ByteOffset, syn.Err)
	}
	var syn1 *json.SyntaxError
	if errors.As(err, &syn1) {
		return fmt.Sprintf("malformed JSON at byte %d: %v", syn1.Offset, syn1)
	}
	return err.Error()
}

// DuplicateName reports the field that err, of encoding/json/v2, found given
// twice in an object, as items[0].productId.
func DuplicateName(err error) (string, bool) {
	var syn *jsontext.SyntacticError
	if !errors.Is(err, jsontext.ErrDuplicateName) || !errors.As(err, &syn) {
		return "", false
	}
	return pointerField(syn.JSONPointer), true
}

// jsonKindOf names the JSON value a Go type is decoded from.
func jsonKindOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another kind of value"
}

// pointerField renders a JSON pointer as a field path: /items/0/quantity →
// items[0].quantity; the empty pointer (the whole data) → value.
func pointerField(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if tok == "" {
			tok = `""` // the empty name
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "value"
	}
	return b.String()
}

// kindName names a JSON value's kind as encoding/json's errors did.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "a value"
}

// Output says what happened to the order.
type Output struct {
	Order   *order.Order
	Created bool // false when an identical order already existed
}

// Store is what creating needs from the transaction.
type Store interface {
	Order(ctx context.Context, id string) (*order.Order, error)
	CreateOrder(ctx context.Context, o *order.Order) error
}

// Run stores in.Order unless an order with the same id exists: the same
// content again is fine (Created false), different content is a conflict.
// The insert comes first: a new order, the common case, costs no lookup.
func Run(ctx context.Context, tx Store, in Input) (Output, error) {
	err := tx.CreateOrder(ctx, in.Order)
	if err == nil {
		return Output{Order: in.Order, Created: true}, nil
	}
	if order.ReasonOf(err) != order.ReasonConflict {
		return Output{}, err
	}
	existing, err := tx.Order(ctx, in.Order.ID)
	if err != nil {
		return Output{}, err
	}
	probe := *in.Order
	if !in.CreatedAtGiven {
		probe.CreatedAt = existing.CreatedAt
	}
	if !order.SameContent(existing, &probe) {
		return Output{}, order.Reject(order.ReasonConflict, "order "+in.Order.ID+" exists with different content")
	}
	return Output{Order: existing, Created: false}, nil
}
