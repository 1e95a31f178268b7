package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/httpapi"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/cancel"
	"github.com/orderd/orderd/internal/order/fulfil"
	"github.com/orderd/orderd/internal/order/ordertest"
	"github.com/orderd/orderd/internal/order/process"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
	"github.com/orderd/orderd/internal/testkit"
)

// storeReader adapts the SQL store to httpapi.OrderReader.
type storeReader struct{ *sqlstore.Store }

func (r storeReader) ListOrders(ctx context.Context, status order.Status, limit int, after string) ([]*order.Order, string, error) {
	return r.Store.ListOrders(ctx, sqlstore.ListQuery{Status: status, Limit: limit, After: after})
}

// harness is one server over a real, migrated SQLite store.
type harness struct {
	t      *testing.T
	srv    *httptest.Server
	server *httpapi.Server
	store  *sqlstore.Store
	logs   *testkit.LogBuffer
	client *http.Client
}

// baseOptions are the seed's defaults with the middleware off; tests switch
// on what they exercise.
func baseOptions() httpapi.Options {
	return httpapi.Options{
		AppName:    "Order Processing Service",
		Version:    "test",
		APIPrefix:  "/api/v0",
		OpenAPIURL: "/apidocs",
	}
}

// newHarness starts a server with opts; edit may change the deps first.
func newHarness(t *testing.T, opts httpapi.Options, edit ...func(*httpapi.Deps)) *harness {
	t.Helper()
	store := sqlstoretest.Open(t, sqlstore.DialectSQLite)
	logs := &testkit.LogBuffer{}
	rules := order.DefaultRules()
	notifier := &ordertest.Notifier{}
	deps := httpapi.Deps{
		Tx:      store,
		Orders:  storeReader{store},
		Process: process.New(rules, notifier),
		Cancel:  cancel.New(rules, notifier),
		Fulfil:  fulfil.New(),
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, e := range edit {
		e(&deps)
	}
	server := httpapi.NewServer(opts, deps)
	srv := httptest.NewServer(server)
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.Timeout = 30 * time.Second
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &harness{t: t, srv: srv, server: server, store: store, logs: logs, client: client}
}

// response is a finished request.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request; body may be nil, a string or []byte. Headers are
// name, value pairs.
func (h *harness) do(method, path string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		h.t.Fatalf("unsupported body type %T", body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// expect fails unless r has the status; it returns r for chaining.
func expect(t *testing.T, r response, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body: %s", r.status, status, r.body)
	}
	return r
}

// expectProblem checks an RFC 9457 answer with the status and reason.
func expectProblem(t *testing.T, r response, status int, reason string) map[string]any {
	t.Helper()
	expect(t, r, status)
	if ct := r.header.Get("Content-Type"); ct != httpapi.ProblemContentType {
		t.Fatalf("Content-Type %q, want %q; body: %s", ct, httpapi.ProblemContentType, r.body)
	}
	p := r.json(t)
	if p["status"] != float64(status) {
		t.Errorf("problem status %v, want %d", p["status"], status)
	}
	if s, _ := p["title"].(string); s == "" {
		t.Errorf("problem has no title: %s", r.body)
	}
	if s, _ := p["type"].(string); s == "" {
		t.Errorf("problem has no type: %s", r.body)
	}
	if reason != "" && p["reason"] != reason {
		t.Errorf("problem reason %v, want %q; body: %s", p["reason"], reason, r.body)
	}
	if cid := r.header.Get(httpapi.CorrelationHeader); cid == "" || p["correlation_id"] != cid {
		t.Errorf("problem correlation_id %v, response header %q", p["correlation_id"], cid)
	}
	return p
}

// orderJSON is an OrderCreated body with one item of qty × unit.
func orderJSON(id, currency, qty, unit, total string, extra ...string) string {
	fields := []string{
		`"orderId":"` + id + `"`,
		`"customerId":"cust-789"`,
		`"customerName":"Asha"`,
		`"totalAmount":` + total,
		`"currency":"` + currency + `"`,
		`"status":"CREATED"`,
		`"items":[{"productId":"p-1","quantity":` + qty + `,"unitPrice":` + unit + `,"totalPrice":` + total + `}]`,
		`"createdAt":"2026-01-05T11:34:53.145Z"`,
	}
	fields = append(fields, extra...)
	return "{" + strings.Join(fields, ",") + "}"
}
