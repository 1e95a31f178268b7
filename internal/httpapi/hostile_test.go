package httpapi_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/httpapi"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// hostileCase is one request a hostile or broken client may send. raw, when
// set, is written to the socket as it is instead.
type hostileCase struct {
	name   string
	method string
	path   string // already escaped, sent as it is
	body   any    // nil, string or []byte
	raw    string
}

// orderWith is an otherwise valid OrderCreated body with field replaced by
// a raw JSON value.
func orderWith(field, raw string) string {
	fields := map[string]string{
		"orderId": `"h-1"`, "customerId": `"c-1"`, "totalAmount": `20.00`, "currency": `"USD"`,
		"items": `[{"productId":"p-1","quantity":2,"unitPrice":10.00,"totalPrice":20.00}]`,
	}
	fields[field] = raw
	var parts []string
	for _, k := range []string{"orderId", "customerId", "totalAmount", "currency", "items"} {
		parts = append(parts, fmt.Sprintf("%q:%s", k, fields[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func hostileCases() []hostileCase {
	deep := strings.Repeat("[", 100_000)
	deepObj := strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000)
	valid := orderWith("orderId", `"h-valid"`)
	envelope := func(data string) string { return `{"id":"ev-h","name":"OrderCreated","data":` + data + `}` }
	long := strings.Repeat("x", 100_000)
	return []hostileCase{
		// Oversized bodies.
		{name: "order body of 2 MiB", method: "POST", path: "/api/v0/orders", body: orderWith("customerId", `"`+strings.Repeat("a", 2<<20)+`"`)},
		{name: "order body of 1 MiB of spaces", method: "POST", path: "/api/v0/orders", body: strings.Repeat(" ", 1<<20) + valid},
		{name: "event body of 2 MiB", method: "POST", path: "/api/v0/events", body: envelope(orderWith("customerId", `"`+strings.Repeat("a", 2<<20)+`"`))},
		{name: "inventory body of 2 MiB", method: "PUT", path: "/api/v0/inventory/p-1", body: `{"available":1,"x":"` + strings.Repeat("a", 2<<20) + `"}`},

		// Wrong types.
		{name: "orderId a number", method: "POST", path: "/api/v0/orders", body: orderWith("orderId", `5`)},
		{name: "orderId an object", method: "POST", path: "/api/v0/orders", body: orderWith("orderId", `{"$ne":null}`)},
		{name: "items an object", method: "POST", path: "/api/v0/orders", body: orderWith("items", `{"productId":"p-1"}`)},
		{name: "quantity a string", method: "POST", path: "/api/v0/orders", body: orderWith("items", `[{"productId":"p-1","quantity":"2","unitPrice":10.00,"totalPrice":20.00}]`)},
		{name: "totalAmount a boolean", method: "POST", path: "/api/v0/orders", body: orderWith("totalAmount", `true`)},
		{name: "totalAmount a string", method: "POST", path: "/api/v0/orders", body: orderWith("totalAmount", `"20.00"`)},
		{name: "body an array", method: "POST", path: "/api/v0/orders", body: "[" + valid + "]"},
		{name: "body null", method: "POST", path: "/api/v0/orders", body: `null`},
		{name: "body empty", method: "POST", path: "/api/v0/orders", body: ``},
		{name: "body a string", method: "POST", path: "/api/v0/orders", body: `"order"`},
		{name: "envelope id a number", method: "POST", path: "/api/v0/events", body: `{"id":7,"name":"OrderCreated","data":{}}`},
		{name: "available a string", method: "PUT", path: "/api/v0/inventory/p-1", body: `{"available":"5"}`},
		{name: "available a fraction", method: "PUT", path: "/api/v0/inventory/p-1", body: `{"available":5.5}`},
		{name: "available negative", method: "PUT", path: "/api/v0/inventory/p-1", body: `{"available":-1}`},
		{name: "available null", method: "PUT", path: "/api/v0/inventory/p-1", body: `{"available":null}`},
		{name: "available over 10^15", method: "PUT", path: "/api/v0/inventory/p-1", body: `{"available":1000000000000001}`},
		{name: "available the largest int64", method: "PUT", path: "/api/v0/inventory/p-1", body: `{"available":9223372036854775807}`},
		{name: "cancel reason a number", method: "POST", path: "/api/v0/orders/o-1/cancel", body: `{"reason":5}`},
		{name: "cancel reason with NUL", method: "POST", path: "/api/v0/orders/o-1/cancel", body: `{"reason":"a\u0000b"}`},
		{name: "duplicate cancel reason", method: "POST", path: "/api/v0/orders/o-1/cancel", body: `{"reason":"a","reason":"b"}`},

		// Deep nesting.
		{name: "order body 100k [", method: "POST", path: "/api/v0/orders", body: deep},
		{name: "order items nested 100k deep", method: "POST", path: "/api/v0/orders", body: orderWith("items", deep+strings.Repeat("]", 100_000))},
		{name: "order body 100k nested objects", method: "POST", path: "/api/v0/orders", body: deepObj},
		{name: "event body 100k [", method: "POST", path: "/api/v0/events", body: deep},
		{name: "event data nested 100k deep", method: "POST", path: "/api/v0/events", body: envelope(`{"x":` + deep + strings.Repeat("]", 100_000) + `}`)},
		{name: "inventory body 100k [", method: "PUT", path: "/api/v0/inventory/p-1", body: deep},
		{name: "cancel body 100k nested objects", method: "POST", path: "/api/v0/orders/o-1/cancel", body: deepObj},

		// Invalid UTF-8, NUL and other bytes no id may hold.
		{name: "invalid UTF-8 in orderId", method: "POST", path: "/api/v0/orders", body: orderWith("orderId", "\"h-\xff\xfe\"")},
		{name: "invalid UTF-8 in productId", method: "POST", path: "/api/v0/orders", body: orderWith("items", "[{\"productId\":\"p-\xc3\x28\",\"quantity\":2,\"unitPrice\":10.00,\"totalPrice\":20.00}]")},
		{name: "invalid UTF-8 body", method: "POST", path: "/api/v0/orders", body: []byte{0xff, 0xfe, 0xfd, '{', '}'}},
		{name: "UTF-8 byte order mark", method: "POST", path: "/api/v0/orders", body: "\xef\xbb\xbf" + valid},
		{name: "NUL in orderId", method: "POST", path: "/api/v0/orders", body: orderWith("orderId", `"h-\u0000-1"`)},
		{name: "NUL in productId", method: "POST", path: "/api/v0/orders", body: orderWith("items", `[{"productId":"p-\u0000","quantity":2,"unitPrice":10.00,"totalPrice":20.00}]`)},
		{name: "invalid UTF-8 in an event", method: "POST", path: "/api/v0/events", body: envelope("{\"orderId\":\"e-\xff\"}")},
		{name: "invalid UTF-8 in a cancel reason", method: "POST", path: "/api/v0/orders/o-1/cancel", body: "{\"reason\":\"\xff\xfe\"}"},
		{name: "invalid UTF-8 in an order id path", method: "GET", path: "/api/v0/orders/%ff%fe"},
		{name: "invalid UTF-8 in a product id path", method: "GET", path: "/api/v0/inventory/%c3%28"},
		{name: "invalid UTF-8 product id to PUT", method: "PUT", path: "/api/v0/inventory/%ff", body: `{"available":1}`},
		{name: "invalid UTF-8 id to cancel", method: "POST", path: "/api/v0/orders/%ff/cancel"},
		{name: "NUL order id", method: "GET", path: "/api/v0/orders/%00"},
		{name: "NUL inside an order id", method: "GET", path: "/api/v0/orders/a%00b"},
		{name: "NUL product id to PUT", method: "PUT", path: "/api/v0/inventory/a%00b", body: `{"available":1}`},
		{name: "NUL id to process", method: "POST", path: "/api/v0/orders/%00/process"},
		{name: "invalid UTF-8 cursor", method: "GET", path: "/api/v0/orders?cursor=%ff%fe"},
		{name: "NUL cursor", method: "GET", path: "/api/v0/orders?cursor=a%00"},
		{name: "raw invalid UTF-8 in the request line", raw: "GET /api/v0/orders/\xff\xfe HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"},
		{name: "raw space in the path", raw: "GET /api/v0/orders/a b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"},
		{name: "raw header of 2 MiB", raw: "GET /api/v0/orders HTTP/1.1\r\nHost: localhost\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\nConnection: close\r\n\r\n"},

		// Path tricks.
		{name: "encoded dot-dot-slash", method: "GET", path: "/api/v0/orders/..%2f..%2fetc"},
		{name: "fully encoded traversal", method: "GET", path: "/api/v0/orders/%2e%2e%2f%2e%2e%2fetc%2fpasswd"},
		{name: "double-encoded traversal", method: "GET", path: "/api/v0/orders/..%252f..%252fetc"},
		{name: "encoded slashes", method: "GET", path: "/api/v0/orders/a%2fb%2fc"},
		{name: "encoded slash to cancel", method: "POST", path: "/api/v0/orders/o-1%2f..%2fo-2/cancel"},
		{name: "traversal product id", method: "GET", path: "/api/v0/inventory/..%2f..%2fetc"},
		{name: "order id of 2 KiB", method: "GET", path: "/api/v0/orders/" + long[:2048]},
		{name: "order id of 100 KiB", method: "GET", path: "/api/v0/orders/" + long},
		{name: "product id of 2 KiB to PUT", method: "PUT", path: "/api/v0/inventory/" + long[:2048], body: `{"available":1}`},
		{name: "empty order id", method: "GET", path: "/api/v0/orders/"},
		{name: "unknown method", method: "DELETE", path: "/api/v0/orders/o-1"},

		// Huge and malformed query parameters.
		{name: "limit 99999999999999999999", method: "GET", path: "/api/v0/orders?limit=99999999999999999999"},
		{name: "limit of 10k digits", method: "GET", path: "/api/v0/orders?limit=" + strings.Repeat("9", 10_000)},
		{name: "limit negative", method: "GET", path: "/api/v0/orders?limit=-1"},
		{name: "limit zero", method: "GET", path: "/api/v0/orders?limit=0"},
		{name: "limit 501", method: "GET", path: "/api/v0/orders?limit=501"},
		{name: "limit not a number", method: "GET", path: "/api/v0/orders?limit=abc"},
		{name: "limit an exponent", method: "GET", path: "/api/v0/orders?limit=1e3"},
		{name: "unknown status", method: "GET", path: "/api/v0/orders?status=bogus"},
		{name: "cursor of 100 KiB", method: "GET", path: "/api/v0/orders?cursor=" + long},

		// Duplicate keys: two parsers could read two different orders.
		{name: "duplicate orderId", method: "POST", path: "/api/v0/orders", body: `{"orderId":"dup-1","orderId":"dup-2","customerId":"c-1","totalAmount":20.00,"currency":"USD","items":[{"productId":"p-1","quantity":2,"unitPrice":10.00,"totalPrice":20.00}]}`},
		{name: "duplicate totalAmount", method: "POST", path: "/api/v0/orders", body: `{"orderId":"dup-3","customerId":"c-1","totalAmount":99.00,"totalAmount":20.00,"currency":"USD","items":[{"productId":"p-1","quantity":2,"unitPrice":10.00,"totalPrice":20.00}]}`},
		{name: "duplicate envelope id", method: "POST", path: "/api/v0/events", body: `{"id":"ev-a","id":"ev-b","name":"OrderCreated","data":{"orderId":"dup-4"}}`},
		{name: "duplicate available", method: "PUT", path: "/api/v0/inventory/p-1", body: `{"available":1,"available":7}`},
		// The same, in another case: encoding/json matches names whatever their case.
		{name: "orderId and ORDERID", method: "POST", path: "/api/v0/orders", body: `{"orderId":"dk-a","customerId":"c-1","totalAmount":20.00,"currency":"USD","items":[{"productId":"p-1","quantity":2,"unitPrice":10.00,"totalPrice":20.00}],"ORDERID":"dk-b"}`},
		{name: "orderId and OrderId in an event's data", method: "POST", path: "/api/v0/events", body: `{"id":"ev-c","name":"OrderCancelled","data":{"orderId":"dk-a","OrderId":"dk-b"}}`},
		{name: "trackingNumber and one with the Kelvin sign", method: "POST", path: "/api/v0/events", body: `{"id":"ev-d","name":"OrderShipped","data":{"orderId":"dk-a","trackingNumber":"t-1","trac\u212aingNumber":"t-2"}}`},
		{name: "reason and Reason", method: "POST", path: "/api/v0/orders/o-1/cancel", body: `{"reason":"a","Reason":"b"}`},

		// Numbers no int64 or decimal holds.
		{name: "totalAmount 1e999999", method: "POST", path: "/api/v0/orders", body: orderWith("totalAmount", `1e999999`)},
		{name: "totalAmount -1e999999", method: "POST", path: "/api/v0/orders", body: orderWith("totalAmount", `-1e999999`)},
		{name: "quantity 1e999999", method: "POST", path: "/api/v0/orders", body: orderWith("items", `[{"productId":"p-1","quantity":1e999999,"unitPrice":10.00,"totalPrice":20.00}]`)},
		{name: "quantity 99999999999999999999", method: "POST", path: "/api/v0/orders", body: orderWith("items", `[{"productId":"p-1","quantity":99999999999999999999,"unitPrice":10.00,"totalPrice":20.00}]`)},
		{name: "totalAmount NaN", method: "POST", path: "/api/v0/orders", body: orderWith("totalAmount", `NaN`)},
		{name: "available 1e999999", method: "PUT", path: "/api/v0/inventory/p-1", body: `{"available":1e999999}`},
		{name: "available 99999999999999999999", method: "PUT", path: "/api/v0/inventory/p-1", body: `{"available":99999999999999999999}`},
		{name: "two JSON values", method: "POST", path: "/api/v0/orders", body: valid + valid},
	}
}

// storeFingerprint reads everything the routes could change.
type storeFingerprint struct {
	Orders    []string
	Items     int
	Stock     []string
	Processed int
	Published int64
}

func fingerprint(t *testing.T, db *sql.DB, adm *kadm.Client) storeFingerprint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var fp storeFingerprint
	rows := func(q string, each func(*sql.Rows) error) {
		t.Helper()
		rs, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rs.Close()
		for rs.Next() {
			if err := each(rs); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := rs.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows(`SELECT id, status, CAST(updated_at AS TEXT) FROM orders ORDER BY id`, func(r *sql.Rows) error {
		var id, status, at string
		err := r.Scan(&id, &status, &at)
		fp.Orders = append(fp.Orders, id+" "+status+" "+at)
		return err
	})
	rows(`SELECT COUNT(*) FROM order_items`, func(r *sql.Rows) error { return r.Scan(&fp.Items) })
	rows(`SELECT product_id, available, reserved FROM stock ORDER BY product_id`, func(r *sql.Rows) error {
		var p string
		var a, res int64
		err := r.Scan(&p, &a, &res)
		fp.Stock = append(fp.Stock, fmt.Sprintf("%q %d %d", p, a, res))
		return err
	})
	rows(`SELECT COUNT(*) FROM processed_events`, func(r *sql.Rows) error { return r.Scan(&fp.Processed) })
	ends, err := adm.ListEndOffsets(ctx, "order-events")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) { fp.Published += o.Offset })
	return fp
}

// sendRaw writes a raw request and returns the status code of the answer.
func sendRaw(t *testing.T, addr, raw string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestHostileRequests sends oversized, mistyped, deeply nested, invalid
// UTF-8, NUL-laden, path-tricking and duplicate-key requests to the real
// server on each database: every answer is a 4xx, never a 5xx, and neither
// the store nor the input topic changes.
func TestHostileRequests(t *testing.T) {
	for _, dialect := range sqlstoretest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			dbURL := sqlstoretest.URL(t, dialect)
			store := sqlstoretest.OpenURL(t, dbURL)
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "order-events"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(producer.Close)
			opts := baseOptions()
			opts.EventsTopic = "order-events"
			h := newHarness(t, opts, func(d *httpapi.Deps) {
				d.Tx, d.Orders = store, storeReader{store}
				d.Events = kafkaPublisher{cl: producer, topic: "order-events"}
			})
			db := rawDB(t, dbURL)
			adm := kadm.NewClient(producer)

			// A known state the hostile requests must leave alone.
			expect(t, h.do("POST", "/api/v0/orders", orderJSON("o-1", "USD", "2", "10.00", "20.00")), http.StatusCreated)
			expect(t, h.do("PUT", "/api/v0/inventory/p-1", `{"available":5}`), http.StatusOK)
			expect(t, h.do("POST", "/api/v0/events", `{"id":"ev-0","name":"OrderCreated","data":{"orderId":"o-0"}}`), http.StatusAccepted)

			for _, c := range hostileCases() {
				t.Run(c.name, func(t *testing.T) {
					before := fingerprint(t, db, adm)
					var status int
					var body string
					if c.raw != "" {
						status = sendRaw(t, h.srv.Listener.Addr().String(), c.raw)
					} else {
						r := h.do(c.method, c.path, c.body)
						status, body = r.status, string(r.body)
					}
					if status < 400 || status > 499 {
						if len(body) > 300 {
							body = body[:300] + "…"
						}
						t.Errorf("status %d, want 4xx; body: %s", status, body)
					}
					if diff := cmp.Diff(before, fingerprint(t, db, adm)); diff != "" {
						t.Errorf("the request changed the store or the topic (-before +after):\n%s", diff)
					}
				})
			}
			if logs := h.logs.String(); strings.Contains(logs, "panic") {
				t.Errorf("a handler panicked:\n%s", logs)
			}
		})
	}
}

// rawDB opens the database behind a store URL for reading.
func rawDB(t *testing.T, dbURL string) *sql.DB {
	t.Helper()
	db, err := sqlstore.OpenSQL(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestInputCheckPassesOrdinaryRequests guards the input check against false
// alarms: keys repeated in sibling or nested objects, arrays of objects,
// escaped text that merely looks like a NUL, non-ASCII text and query values.
func TestInputCheckPassesOrdinaryRequests(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "order-events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	h := newHarness(t, baseOptions(), func(d *httpapi.Deps) { d.Events = kafkaPublisher{cl: producer, topic: "order-events"} })
	bodies := []string{
		`{"id":"e-1","name":"OrderCreated","data":{"orderId":"o","items":[{"productId":"a","quantity":1},{"productId":"b","quantity":2}],"x":{"productId":"c","items":[]}}}`,
		`{"id":"e-2","name":"OrderCreated","data":{"a":{"a":{"a":{"id":"x","name":"y","data":{}}}},"b":[[],[{}],[{"a":1,"b":[1,2,{"a":null}]}]]}}`,
		`{"id":"e-3","name":"OrderCreated","data":{"note":"a literal \\u0000 is six characters","unicode":"Grüße, 注文 ✓ \ud83d\ude00"}}`,
		`{"id":"e-4","name":"OrderCreated","data":{"n":1e999999,"big":99999999999999999999,"neg":-0.0}}`,
	}
	for _, b := range bodies {
		expect(t, h.do("POST", "/api/v0/events", b), http.StatusAccepted)
	}
	expect(t, h.do("GET", "/api/v0/orders?status=new&limit=5&cursor=Gr%C3%BC%C3%9Fe", nil), http.StatusOK)
	expect(t, h.do("GET", "/api/v0/orders/%E6%B3%A8%E6%96%87", nil), http.StatusNotFound)
}
