package events_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/events"
	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order/create"
)

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name, value, reason string
	}{
		{"not JSON", `{"id": "1", "name": `, events.ReasonMalformedJSON},
		{"empty", ``, events.ReasonMalformedJSON},
		{"not UTF-8", "{\"id\":\"\xff\xfe\",\"name\":\"OrderCreated\",\"data\":{}}", events.ReasonInvalidUTF8},
		{"array", `[1,2]`, events.ReasonInvalidEnvelope},
		{"null", `null`, events.ReasonInvalidEnvelope},
		{"no id", `{"name":"OrderCreated","data":{}}`, events.ReasonInvalidEnvelope},
		{"empty id", `{"id":"","name":"OrderCreated","data":{}}`, events.ReasonInvalidEnvelope},
		{"numeric id", `{"id":7,"name":"OrderCreated","data":{}}`, events.ReasonInvalidEnvelope},
		{"long id", `{"id":"` + strings.Repeat("x", 201) + `","name":"OrderCreated","data":{}}`, events.ReasonInvalidEnvelope},
		{"no name", `{"id":"1","data":{}}`, events.ReasonInvalidEnvelope},
		{"no data", `{"id":"1","name":"OrderCreated"}`, events.ReasonInvalidEnvelope},
		{"data not object", `{"id":"1","name":"OrderCreated","data":[1]}`, events.ReasonInvalidEnvelope},
		{"data null", `{"id":"1","name":"OrderCreated","data":null}`, events.ReasonInvalidEnvelope},
		{"null id", `{"id":null,"name":"OrderCreated","data":{}}`, events.ReasonInvalidEnvelope},
		{"names match exactly", `{"ID":"1","name":"OrderCreated","data":{}}`, events.ReasonInvalidEnvelope},
		{"over 1 MiB", `{"id":"1","name":"x","data":{"pad":"` + strings.Repeat("a", 1<<20) + `"}}`, events.ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := events.Decode([]byte(tt.value))
			kind, reason := fault.Of(err)
			if kind != fault.Permanent || reason != tt.reason {
				t.Fatalf("Decode = %v (%v %q), want permanent %q", err, kind, reason, tt.reason)
			}
		})
	}
}

// TestDecodeSaysWhatItRead: a bad envelope's error says what is wrong with
// it, and the envelope returned with it holds the id and name that could be
// read, so that the logs and the DLQ headers still name the event (§6).
func TestDecodeSaysWhatItRead(t *testing.T) {
	tests := []struct {
		value, err, id, name string
	}{
		{`{"id":"p3","data":{}}`, `envelope field "name" is required`, "p3", ""},
		{`{"id":"p3","name":"OrderCreated"}`, `envelope field "data" is required`, "p3", "OrderCreated"},
		{`{"id":"p3","name":"OrderCreated","data":"hello"}`, `envelope field "data" must be an object`, "p3", "OrderCreated"},
		{`{"id":"p3","name":"OrderCreated","data":null}`, `envelope field "data" must be an object`, "p3", "OrderCreated"},
		{`{"id":"p3","name":7,"data":{}}`, `envelope field "name" must be a string`, "p3", ""},
		{`{"id":"p3","name":"","data":{}}`, `envelope field "name" must not be empty`, "p3", ""},
		{`{"name":"OrderCreated","data":{}}`, `envelope field "id" is required`, "", "OrderCreated"},
		{`{"id":7,"name":"OrderCreated","data":{}}`, `envelope field "id" must be a string`, "", "OrderCreated"},
		{`{"id":"` + strings.Repeat("x", 201) + `","name":"OrderCreated","data":{}}`, "envelope id is 201 bytes, at most 200 allowed", "", "OrderCreated"},
		{`null`, "envelope must be a JSON object", "", ""},
		{" null\n", "envelope must be a JSON object", "", ""},
		{`"p3"`, "envelope must be a JSON object", "", ""},
		{`{}`, `envelope field "id" is required`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			ev, err := events.Decode([]byte(tt.value))
			if kind, reason := fault.Of(err); kind != fault.Permanent || reason != events.ReasonInvalidEnvelope || err.Error() != tt.err {
				t.Errorf("Decode error = %v (%v %q), want permanent %s %q", err, kind, reason, events.ReasonInvalidEnvelope, tt.err)
			}
			if ev.ID != tt.id || ev.Name != tt.name {
				t.Errorf("Decode read id %q, name %q; want %q, %q", ev.ID, ev.Name, tt.id, tt.name)
			}
		})
	}
}

// TestDecodeRepeatedName: a record that gives a name twice in one object is
// refused, naming it: two readers of it could read two different events (a
// producer checking the first id or orderId, the service acting on the last).
// In the envelope it is invalid_envelope; in the data, invalid_data.
func TestDecodeRepeatedName(t *testing.T) {
	for value, want := range map[string]string{
		`{"id":"1","name":"OrderCreated","id":"2","data":{"a":1}}`:                "invalid_envelope: id is given twice",
		`{"id":"1","name":"OrderCreated","data":{"a":1},"data":{"b":2}}`:          "invalid_envelope: data is given twice",
		`{"id":"1","name":"OrderCancelled","data":{"orderId":"A","orderId":"B"}}`: "invalid_data: data.orderId is given twice",
		`{"id":"1","name":"OrderCreated","data":{"items":[{"p":1,"p":2}]}}`:       "invalid_data: data.items[0].p is given twice",
	} {
		_, err := events.Decode([]byte(value))
		kind, reason := fault.Of(err)
		if got := reason + ": " + fmt.Sprint(err); kind != fault.Permanent || got != want {
			t.Errorf("Decode(%s) = %s (%v); want permanent %q", value, got, kind, want)
		}
	}
	// Refused, it is still named by its id and name for the DLQ headers.
	ev, err := events.Decode([]byte(`{"id":"1","name":"OrderShipped","data":{"orderId":"o","extra":{"k":1,"k":2}}}`))
	if err == nil || ev.ID != "1" || ev.Name != "OrderShipped" {
		t.Errorf("Decode of a repeat within data = %+v, %v; want it refused, named 1 and OrderShipped", ev, err)
	}
}

func TestDecodeSeedSample(t *testing.T) {
	const seed = `{"id":"550e8400-e29b-41d4-a716-446655440000","name":"OrderCreated","data":{"orderId":"12345","customerId":"cust-789","totalAmount":150.0,"currency":"INR","status":"CREATED","items":[{"productId":"prod-001","quantity":2,"unitPrice":75.0,"totalPrice":150.0}],"createdAt":"2026-01-05T11:34:53.145Z"}}`
	ev, err := events.Decode([]byte(seed))
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "550e8400-e29b-41d4-a716-446655440000" || ev.Name != "OrderCreated" || ev.OrderID() != "12345" {
		t.Fatalf("envelope = %+v", ev)
	}
	in, err := create.Decode(ev.Data, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if in.Order.TotalAmount != 15000 || in.Order.Items[0].Quantity != 2 || !in.CreatedAtGiven {
		t.Errorf("order = %+v", in.Order)
	}
}

func TestSampleEventsAreValid(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		key, value := events.SampleOrderCreated("run", i, rng)
		ev, err := events.Decode(value)
		if err != nil {
			t.Fatal(err)
		}
		if ev.OrderID() != string(key) {
			t.Fatalf("key %s, order %s", key, ev.OrderID())
		}
		if _, err := create.Decode(ev.Data, time.Now()); err != nil {
			t.Fatalf("sample %d invalid: %v\n%s", i, err, value)
		}
	}
}

// TestEnvelopeOrderID: the order id a producer keys an event by is the one
// the events' decoders read (any case, given once; none when given twice,
// which the decoders refuse).
func TestEnvelopeOrderID(t *testing.T) {
	for data, want := range map[string]string{
		`{"orderId":"o-1"}`:              "o-1",
		`{"OrderId":"o-1"}`:              "o-1",
		`{"ORDERID":"o-1","reason":"r"}`: "o-1",
		`{"orderId":"A","OrderId":"B"}`:  "",
		`{"orderId":"A","orderId":"B"}`:  "",
		`{"orderId":5}`:                  "",
		`{"order_id":"o-1"}`:             "", // as encoding/json: "_" counts
		`{"customerId":"c"}`:             "",
		`{"items":[{"orderId":"x"}]}`:    "",
	} {
		if got := (events.Envelope{Data: json.RawMessage(data)}).OrderID(); got != want {
			t.Errorf("OrderID of %s = %q, want %q", data, got, want)
		}
	}
}
