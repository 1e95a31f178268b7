package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/httpapi"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/cancel"
	"github.com/orderd/orderd/internal/order/create"
	"github.com/orderd/orderd/internal/order/fulfil"
	"github.com/orderd/orderd/internal/order/ordertest"
	"github.com/orderd/orderd/internal/order/process"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// fuzzRoutes are the routes that take a JSON body; the fuzzer picks one by
// its first argument.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/api/v0/orders"},
	{"POST", "/api/v0/events"},
	{"POST", "/api/v0/orders/o-1/cancel"},
	{"POST", "/api/v0/orders/o-1/ship"},
	{"PUT", "/api/v0/inventory/p-1"},
}

// FuzzHTTPBodies posts arbitrary bodies to the body-taking routes of the real
// server (over HTTP, on a SQLite store, publishing to a kfake broker): the
// answer is never a 5xx, and a 2xx from POST /orders means the body was an
// order by §2. The seed corpus is in testdata/fuzz/FuzzHTTPBodies.
func FuzzHTTPBodies(f *testing.F) {
	store := sqlstoretest.Open(f, sqlstore.DialectSQLite)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "order-events"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(cluster.Close)
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(producer.Close)
	rules := order.DefaultRules()
	notifier := &ordertest.Notifier{}
	opts := baseOptions()
	opts.EventsTopic = "order-events"
	srv := httptest.NewServer(httpapi.NewServer(opts, httpapi.Deps{
		Tx: store, Orders: storeReader{store},
		Process: process.New(rules, notifier), Cancel: cancel.New(rules, notifier), Fulfil: fulfil.New(),
		Events: kafkaPublisher{cl: producer, topic: "order-events"},
		Logger: slog.New(slog.DiscardHandler),
	}))
	f.Cleanup(srv.Close)
	client := srv.Client()
	client.Timeout = 30 * time.Second
	post := func(t testing.TB, method, path string, body []byte) (int, []byte) {
		req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if st, b := post(f, "POST", "/api/v0/orders", []byte(orderJSON("o-1", "USD", "2", "10.00", "20.00"))); st != http.StatusCreated {
		f.Fatalf("creating o-1: %d %s", st, b)
	}

	f.Add(byte(0), []byte(orderJSON("o-2", "INR", "2", "75.00", "150.00")))
	f.Fuzz(func(t *testing.T, route byte, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		status, answer := post(t, r.method, r.path, body)
		if status >= 500 || status < 200 {
			t.Fatalf("%s %s answered %d: %s", r.method, r.path, status, answer)
		}
		if status >= 300 {
			return
		}
		if !utf8.Valid(body) || (len(bytes.TrimSpace(body)) > 0 && !json.Valid(body)) {
			t.Fatalf("%s %s accepted (%d) a body that is not valid UTF-8 JSON", r.method, r.path, status)
		}
		if r.path == "/api/v0/orders" {
			if _, err := create.Decode(body, time.Now()); err != nil {
				t.Fatalf("POST /orders accepted (%d) a body the order checks refuse: %v", status, err)
			}
		}
	})
}
