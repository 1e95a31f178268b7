package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/orderd/orderd/internal/order"
)

// TestSeedScenario is the seed's worked example over HTTP: 150.00 INR is
// processed (free shipping, 10% discount) and cancelled (5% fee).
func TestSeedScenario(t *testing.T) {
	h := newHarness(t, baseOptions())

	r := expect(t, h.do("POST", "/api/v0/orders", orderJSON("12345", "INR", "2", "75.00", "150.00")), http.StatusCreated)
	if loc := r.header.Get("Location"); loc != "/api/v0/orders/12345" {
		t.Errorf("Location %q", loc)
	}
	for _, want := range []string{`"id":"12345"`, `"status":"new"`, `"total_amount":150.00`, `"unit_price":75.00`,
		`"shipping_cost":null`, `"final_total":null`, `"customer_name":"Asha"`, `"created_at":"2026-01-05T11:34:53.145Z"`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("created order lacks %s: %s", want, r.body)
		}
	}

	r = expect(t, h.do("POST", "/api/v0/orders/12345/process", nil), http.StatusOK)
	for _, want := range []string{`"shipping_cost":0.00`, `"discount_applied":15.00`, `"final_total":135.00`,
		`"status":"processing"`, `"success":true`, `"discount":15.00`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("process result lacks %s: %s", want, r.body)
		}
	}
	if msg := r.json(t)["message"]; msg != "Your order #12345 is now being processed. Total: 135.00 INR (includes 0.00 INR shipping)" {
		t.Errorf("message %q", msg)
	}

	r = expect(t, h.do("POST", "/api/v0/orders/12345/cancel", `{"reason":"changed my mind"}`), http.StatusOK)
	for _, want := range []string{`"refund_amount":128.25`, `"status":"cancelled"`, `"cancellation_reason":"changed my mind"`, `"success":true`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("cancel result lacks %s: %s", want, r.body)
		}
	}

	p := expectProblem(t, h.do("POST", "/api/v0/orders/12345/cancel", nil), http.StatusConflict, order.ReasonNotCancellable)
	if p["type"] != "urn:orderd:problem:not_cancellable" {
		t.Errorf("type %v", p["type"])
	}

	r = expect(t, h.do("GET", "/api/v0/orders/12345", nil), http.StatusOK)
	if !strings.Contains(string(r.body), `"status":"cancelled"`) || !strings.Contains(string(r.body), `"refund_amount":128.25`) {
		t.Errorf("stored order: %s", r.body)
	}
}

func TestCreateOrder(t *testing.T) {
	h := newHarness(t, baseOptions())
	body := orderJSON("o-1", "INR", "2", "75.00", "150.00")
	expect(t, h.do("POST", "/api/v0/orders", body), http.StatusCreated)

	t.Run("same content again is 200", func(t *testing.T) {
		r := expect(t, h.do("POST", "/api/v0/orders", body), http.StatusOK)
		if !strings.Contains(string(r.body), `"id":"o-1"`) {
			t.Errorf("body %s", r.body)
		}
	})
	t.Run("different content is 409", func(t *testing.T) {
		expectProblem(t, h.do("POST", "/api/v0/orders", orderJSON("o-1", "INR", "3", "75.00", "225.00")), http.StatusConflict, order.ReasonConflict)
	})
	t.Run("amounts keep the currency's digits", func(t *testing.T) {
		cases := []struct{ id, cur, qty, unit, total, want string }{
			{"jpy", "JPY", "3", "1500", "4500", `"total_amount":4500,`},
			{"kwd", "KWD", "2", "0.125", "0.250", `"total_amount":0.250,`},
			{"usd", "USD", "3", "0.10", "0.30", `"total_amount":0.30,`},
		}
		for _, c := range cases {
			r := expect(t, h.do("POST", "/api/v0/orders", orderJSON(c.id, c.cur, c.qty, c.unit, c.total)), http.StatusCreated)
			if !strings.Contains(string(r.body), c.want) {
				t.Errorf("%s: want %s in %s", c.cur, c.want, r.body)
			}
		}
	})
}

// euros342 is 342 characters of 3 bytes each: within 1,024 characters, over 1,024 bytes.
var euros342 = strings.Repeat("€", 342)

// TestBadInputIs400 checks that nothing a client sends makes a 500.
func TestBadInputIs400(t *testing.T) {
	h := newHarness(t, baseOptions())
	expect(t, h.do("POST", "/api/v0/orders", orderJSON("x-1", "INR", "2", "75.00", "150.00")), http.StatusCreated)
	cases := []struct {
		name, method, path, body string
	}{
		{"malformed JSON", "POST", "/api/v0/orders", `{"orderId": "a",`},
		{"trailing garbage", "POST", "/api/v0/orders", orderJSON("t-1", "INR", "2", "75.00", "150.00") + " {}"},
		{"not an object", "POST", "/api/v0/orders", `[1,2]`},
		{"empty body", "POST", "/api/v0/orders", ``},
		{"amount as string", "POST", "/api/v0/orders", orderJSON("s-1", "INR", "2", "75.00", `"150.00"`)},
		{"customerId as number", "POST", "/api/v0/orders", strings.Replace(orderJSON("s-2", "INR", "2", "75.00", "150.00"), `"cust-789"`, `42`, 1)},
		{"quantity fractional", "POST", "/api/v0/orders", orderJSON("s-3", "INR", "1.5", "100.00", "150.00")},
		{"too many decimals", "POST", "/api/v0/orders", orderJSON("s-4", "INR", "1", "150.001", "150.001")},
		{"unknown currency", "POST", "/api/v0/orders", orderJSON("s-5", "ZZZ", "2", "75.00", "150.00")},
		{"total mismatch", "POST", "/api/v0/orders", orderJSON("s-6", "INR", "2", "75.00", "151.00")},
		{"huge exponent", "POST", "/api/v0/orders", orderJSON("s-7", "INR", "1", "1e999999999", "1e999999999")},
		{"invalid UTF-8", "POST", "/api/v0/orders", "{\"orderId\":\"\xff\"}"},
		{"cancel reason wrong type", "POST", "/api/v0/orders/x-1/cancel", `{"reason": 5}`},
		{"cancel body malformed", "POST", "/api/v0/orders/x-1/cancel", `{"reason": `},
		{"cancel unknown field", "POST", "/api/v0/orders/x-1/cancel", `{"why": "x"}`},
		{"ship tracking wrong type", "POST", "/api/v0/orders/x-1/ship", `{"tracking_number": []}`},
		{"stock negative", "PUT", "/api/v0/inventory/p-1", `{"available": -1}`},
		{"stock fractional", "PUT", "/api/v0/inventory/p-1", `{"available": 1.5}`},
		{"stock string", "PUT", "/api/v0/inventory/p-1", `{"available": "3"}`},
		{"stock missing", "PUT", "/api/v0/inventory/p-1", `{}`},
		{"stock no body", "PUT", "/api/v0/inventory/p-1", ``},
		{"stock too big", "PUT", "/api/v0/inventory/p-1", `{"available": 1e30}`},
		{"list bad status", "GET", "/api/v0/orders?status=lost", ``},
		{"list limit too big", "GET", "/api/v0/orders?limit=501", ``},
		{"list limit zero", "GET", "/api/v0/orders?limit=0", ``},
		{"list limit not a number", "GET", "/api/v0/orders?limit=ten", ``},
		{"id too long", "GET", "/api/v0/orders/" + strings.Repeat("x", 1025), ``},
		// §2's 1 KiB is bytes: 342 "€" are 342 characters but 1,026 bytes.
		{"id over 1 KiB of UTF-8", "GET", "/api/v0/orders/" + url.PathEscape(euros342), ``},
		{"product id over 1 KiB of UTF-8", "PUT", "/api/v0/inventory/" + url.PathEscape(euros342), `{"available": 1}`},
		{"cursor over 1 KiB of UTF-8", "GET", "/api/v0/orders?cursor=" + url.QueryEscape(euros342), ``},
		{"cancel reason over 1 KiB of UTF-8", "POST", "/api/v0/orders/x-1/cancel", `{"reason":"` + euros342 + `"}`},
		{"ship tracking over 1 KiB of UTF-8", "POST", "/api/v0/orders/x-1/ship", `{"tracking_number":"` + euros342 + `"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.body != "" || c.method != "GET" {
				body = c.body
			}
			p := expectProblem(t, h.do(c.method, c.path, body), http.StatusBadRequest, order.ReasonInvalid)
			if d, _ := p["detail"].(string); d == "" {
				t.Errorf("no detail: %v", p)
			}
		})
	}
	t.Run("1 KiB of UTF-8 is allowed", func(t *testing.T) {
		reason := strings.Repeat("€", 341) + "x" // 1,024 bytes
		r := expect(t, h.do("POST", "/api/v0/orders/x-1/cancel", `{"reason":"`+reason+`"}`), http.StatusOK)
		if !strings.Contains(string(r.body), `"cancellation_reason":"`+reason+`"`) {
			t.Errorf("cancel: %s", r.body)
		}
	})
	t.Run("bad status lists the valid ones", func(t *testing.T) {
		p := expectProblem(t, h.do("GET", "/api/v0/orders?status=lost", nil), http.StatusBadRequest, order.ReasonInvalid)
		for _, s := range order.Statuses {
			if !strings.Contains(fmt.Sprint(p), string(s)) {
				t.Errorf("problem does not list %q: %v", s, p)
			}
		}
	})
}
