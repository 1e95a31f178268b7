package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orderd/orderd/internal/httpapi"
)

func TestCORS(t *testing.T) {
	preflight := func(h *harness, origin, method, headers string) response {
		return h.do("OPTIONS", "/api/v0/orders", nil, "Origin", origin, "Access-Control-Request-Method", method, "Access-Control-Request-Headers", headers)
	}
	t.Run("off", func(t *testing.T) {
		h := newHarness(t, baseOptions())
		r := preflight(h, "https://app.example", "POST", "content-type")
		if v := r.header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("CORS off but Access-Control-Allow-Origin %q", v)
		}
		r = h.do("GET", "/api/v0/orders", nil, "Origin", "https://app.example")
		if v := r.header.Get("Access-Control-Allow-Origin"); v != "" || r.status != http.StatusOK {
			t.Errorf("CORS off: status %d, Access-Control-Allow-Origin %q", r.status, v)
		}
	})

	cases := []struct {
		name        string
		origins     []string
		methods     []string
		headers     []string
		credentials bool
		origin      string
		method      string
		reqHeaders  string
		wantOrigin  string // on the preflight; "" = refused
		wantCreds   bool
		wantActual  string // on a GET from origin
	}{
		{"seed defaults echo the origin with credentials", []string{"*"}, []string{"*"}, []string{"*"}, true,
			"https://app.example", "PUT", "content-type,x-custom", "https://app.example", true, "https://app.example"},
		{"any origin without credentials is a literal star", []string{"*"}, []string{"*"}, []string{"*"}, false,
			"https://app.example", "DELETE", "x-custom", "*", false, "*"},
		{"listed origin", []string{"https://app.example", "https://other.example"}, []string{"GET", "POST"}, []string{"Content-Type"}, true,
			"https://other.example", "POST", "content-type", "https://other.example", true, "https://other.example"},
		{"unlisted origin", []string{"https://app.example"}, []string{"*"}, []string{"*"}, true,
			"https://evil.example", "POST", "content-type", "", false, ""},
		{"method not allowed", []string{"*"}, []string{"get"}, []string{"*"}, false,
			"https://app.example", "PUT", "content-type", "", false, "*"},
		{"header not allowed", []string{"*"}, []string{"*"}, []string{"Content-Type"}, false,
			"https://app.example", "POST", "x-secret", "", false, "*"},
		{"no origins allow none", nil, []string{"*"}, []string{"*"}, false,
			"https://app.example", "POST", "content-type", "", false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := baseOptions()
			opts.CORS, opts.CORSOrigins, opts.CORSMethods, opts.CORSHeaders, opts.CORSCredentials = true, c.origins, c.methods, c.headers, c.credentials
			opts.AdminToken = "tok" // preflights carry no token and must still pass
			h := newHarness(t, opts)
			r := preflight(h, c.origin, c.method, c.reqHeaders)
			if r.status != http.StatusNoContent {
				t.Errorf("preflight status %d: %s", r.status, r.body)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != c.wantOrigin {
				t.Errorf("preflight Access-Control-Allow-Origin %q, want %q", got, c.wantOrigin)
			}
			if got := r.header.Get("Access-Control-Allow-Credentials") == "true"; got != c.wantCreds {
				t.Errorf("preflight credentials %v, want %v", got, c.wantCreds)
			}
			if c.wantOrigin != "" {
				if got := r.header.Get("Access-Control-Allow-Methods"); !strings.EqualFold(got, c.method) {
					t.Errorf("Access-Control-Allow-Methods %q", got)
				}
				if got := r.header.Get("Access-Control-Allow-Headers"); got != c.reqHeaders {
					t.Errorf("Access-Control-Allow-Headers %q", got)
				}
			}
			r = expect(t, h.do("GET", "/api/v0/orders", nil, "Origin", c.origin), http.StatusOK)
			if got := r.header.Get("Access-Control-Allow-Origin"); got != c.wantActual {
				t.Errorf("actual Access-Control-Allow-Origin %q, want %q", got, c.wantActual)
			}
			if c.wantActual != "" && !strings.Contains(strings.ToLower(r.header.Get("Access-Control-Expose-Headers")), strings.ToLower(httpapi.CorrelationHeader)) {
				t.Errorf("correlation id not exposed: %q", r.header.Get("Access-Control-Expose-Headers"))
			}
			if c.wantActual != "" && c.wantActual != "*" && !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Origin") {
				t.Errorf("an echoed origin needs Vary: Origin, got %q", r.header.Values("Vary"))
			}
		})
	}
}

func TestGZip(t *testing.T) {
	for _, on := range []bool{false, true} {
		opts := baseOptions()
		opts.GZip = on
		h := newHarness(t, opts)
		cases := []struct {
			path     string
			big      bool
			encoding string
		}{
			{"/apidocs", true, "gzip"},
			{"/api/v0/healthz", false, "gzip"},
			{"/apidocs", true, ""},
		}
		for _, c := range cases {
			var r response
			if c.encoding != "" {
				r = h.do("GET", c.path, nil, "Accept-Encoding", c.encoding)
			} else {
				// Go's client asks for gzip unless told not to; ask for nothing.
				r = h.do("GET", c.path, nil, "Accept-Encoding", "identity")
			}
			expect(t, r, http.StatusOK)
			want := on && c.big && c.encoding == "gzip"
			if got := r.header.Get("Content-Encoding") == "gzip"; got != want {
				t.Errorf("gzip %v, %s (accept %q): compressed %v, want %v", on, c.path, c.encoding, got, want)
			}
			body := r.body
			if want {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if c.big && len(body) < httpapi.GZipMinSize {
				t.Fatalf("%s is %d bytes, too small for this test", c.path, len(body))
			}
			if !c.big && len(body) >= httpapi.GZipMinSize {
				t.Fatalf("%s is %d bytes, too big for this test", c.path, len(body))
			}
			if !json.Valid(body) {
				t.Errorf("%s: body is not JSON after decoding", c.path)
			}
		}
	}
}

func TestTrustedHost(t *testing.T) {
	cases := []struct {
		name    string
		on      bool
		allowed []string
		host    string
		ok      bool
	}{
		{"off lets anything in", false, []string{"example.com"}, "evil.test", true},
		{"exact", true, []string{"example.com"}, "example.com", true},
		{"port ignored", true, []string{"example.com"}, "example.com:8000", true},
		{"case-insensitive", true, []string{"Example.COM"}, "example.com", true},
		{"other host", true, []string{"example.com"}, "evil.test", false},
		{"subdomain not exact", true, []string{"example.com"}, "api.example.com", false},
		{"wildcard subdomain", true, []string{"*.example.org"}, "api.example.org:443", true},
		{"wildcard deeper subdomain", true, []string{"*.example.org"}, "a.b.example.org", true},
		{"wildcard excludes the apex", true, []string{"*.example.org"}, "example.org", false},
		{"wildcard excludes look-alikes", true, []string{"*.example.org"}, "badexample.org", false},
		{"star allows all", true, []string{"*"}, "whatever.test", true},
		{"IPv6 literal", true, []string{"::1"}, "[::1]:8000", true},
		{"IPv6 literal in brackets, as a Host header writes it", true, []string{"[::1]"}, "[::1]:8000", true},
		{"IPv6 literal in brackets, no port", true, []string{"[::1]"}, "[::1]", true},
		{"empty list allows none", true, nil, "example.com", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := baseOptions()
			opts.TrustedHost, opts.AllowedHosts = c.on, c.allowed
			h := newHarness(t, opts)
			r := h.do("GET", "/api/v0/healthz", nil, "Host", c.host)
			if c.ok {
				expect(t, r, http.StatusOK)
			} else {
				expectProblem(t, r, http.StatusBadRequest, httpapi.ReasonBadHost)
			}
		})
	}
}

func TestHTTPSRedirect(t *testing.T) {
	cases := []struct {
		name, method, path, host, proto string
		on                              bool
		location                        string // "" = served
	}{
		{"off", "GET", "/api/v0/orders?limit=2", "shop.example:8000", "", false, ""},
		{"plain http", "GET", "/api/v0/orders?limit=2&status=new", "shop.example:8000", "", true, "https://shop.example:8000/api/v0/orders?limit=2&status=new"},
		{"default port dropped", "POST", "/api/v0/orders", "shop.example:80", "", true, "https://shop.example/api/v0/orders"},
		{"forwarded https", "GET", "/api/v0/orders", "shop.example", "https", true, ""},
		{"forwarded http", "GET", "/api/v0/healthz", "shop.example", "http", true, "https://shop.example/api/v0/healthz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := baseOptions()
			opts.HTTPSRedirect = c.on
			h := newHarness(t, opts)
			headers := []string{"Host", c.host}
			if c.proto != "" {
				headers = append(headers, "X-Forwarded-Proto", c.proto)
			}
			var body any
			if c.method == "POST" {
				body = orderJSON("r-1", "INR", "2", "75.00", "150.00")
			}
			r := h.do(c.method, c.path, body, headers...)
			if c.location == "" {
				if r.status >= 300 && r.status < 400 {
					t.Fatalf("redirected to %q", r.header.Get("Location"))
				}
				return
			}
			expect(t, r, http.StatusPermanentRedirect)
			if got := r.header.Get("Location"); got != c.location {
				t.Errorf("Location %q, want %q", got, c.location)
			}
		})
	}
	t.Run("TLS connection is not redirected", func(t *testing.T) {
		opts := baseOptions()
		opts.HTTPSRedirect = true
		h := newHarness(t, opts)
		srv := httptest.NewTLSServer(h.server)
		t.Cleanup(srv.Close)
		resp, err := srv.Client().Get(srv.URL + "/api/v0/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestCorrelationID(t *testing.T) {
	h := newHarness(t, baseOptions())
	cases := []struct {
		name, given string
		echoed      bool
	}{
		{"given is echoed", "req-42.a:b_c", true},
		{"missing is generated", "", false},
		{"unsafe is replaced", "bad id\r\nX-Evil: 1", false},
		{"too long is replaced", strings.Repeat("a", 129), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var headers []string
			if c.given != "" {
				headers = []string{httpapi.CorrelationHeader, c.given}
			}
			if strings.ContainsAny(c.given, "\r\n") {
				// net/http refuses to send such a header; send what a raw client could.
				headers = []string{httpapi.CorrelationHeader, "bad id"}
			}
			r := h.do("GET", "/api/v0/orders/none", nil, headers...)
			p := expectProblem(t, r, http.StatusNotFound, "")
			id := r.header.Get(httpapi.CorrelationHeader)
			if c.echoed {
				if id != c.given {
					t.Errorf("echoed %q, want %q", id, c.given)
				}
			} else if _, err := uuid.Parse(id); err != nil {
				t.Errorf("generated id %q is not a UUID", id)
			}
			if p["correlation_id"] != id {
				t.Errorf("problem correlation_id %v, header %q", p["correlation_id"], id)
			}
			if !strings.Contains(h.logs.String(), `"correlation_id":"`+id+`"`) {
				t.Errorf("request log lacks correlation_id %q", id)
			}
		})
	}
}

// TestRequestLog checks the one debug line per request.
func TestRequestLog(t *testing.T) {
	h := newHarness(t, baseOptions())
	expect(t, h.do("GET", "/api/v0/orders/o-7", nil, httpapi.CorrelationHeader, "log-1"), http.StatusNotFound)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "http request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d request lines:\n%s", len(lines), h.logs)
	}
	l := lines[0]
	if l["level"] != "DEBUG" || l["method"] != "GET" || l["route"] != "GET /api/v0/orders/{id}" || l["status"] != float64(404) ||
		l["correlation_id"] != "log-1" || l["duration"] == nil {
		t.Errorf("request line %v", l)
	}
}

func TestPanicIsA500Problem(t *testing.T) {
	h := newHarness(t, baseOptions())
	huma.Register(h.server.API(), huma.Operation{OperationID: "boom", Method: http.MethodGet, Path: "/api/v0/boom"},
		func(context.Context, *struct{}) (*struct{}, error) { panic("kaboom: internal state") })
	p := expectProblem(t, h.do("GET", "/api/v0/boom", nil, httpapi.CorrelationHeader, "panic-1"), http.StatusInternalServerError, httpapi.ReasonInternal)
	if strings.Contains(p["detail"].(string), "kaboom") {
		t.Errorf("the panic value leaks: %v", p)
	}
	logs := h.logs.String()
	for _, want := range []string{`"msg":"handler panicked"`, `"route":"GET /api/v0/boom"`, "kaboom: internal state", `"correlation_id":"panic-1"`, `"status":500`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	// The server goes on serving.
	expect(t, h.do("GET", "/api/v0/healthz", nil), http.StatusOK)
}

func TestAdminToken(t *testing.T) {
	const token = "s3cret-admin-token-value"
	opts := baseOptions()
	opts.AdminToken = token
	h := newHarness(t, opts)
	body := orderJSON("a-1", "INR", "2", "75.00", "150.00")
	cases := []struct {
		name, method, path, auth string
		status                   int
	}{
		{"missing", "POST", "/api/v0/orders", "", http.StatusUnauthorized},
		{"wrong", "POST", "/api/v0/orders", "Bearer wrong", http.StatusUnauthorized},
		{"prefix of the token", "POST", "/api/v0/orders", "Bearer " + token[:5], http.StatusUnauthorized},
		{"not bearer", "POST", "/api/v0/orders", "Basic " + token, http.StatusUnauthorized},
		{"right", "POST", "/api/v0/orders", "Bearer " + token, http.StatusCreated},
		{"scheme is case-insensitive", "POST", "/api/v0/orders", "bearer " + token, http.StatusOK},
		{"PUT needs it", "PUT", "/api/v0/inventory/p-1", "", http.StatusUnauthorized},
		{"PUT with it", "PUT", "/api/v0/inventory/p-1", "Bearer " + token, http.StatusOK},
		{"broker start needs it", "POST", "/api/v0/message_broker/start_consuming_message", "Bearer nope", http.StatusUnauthorized},
		{"reads do not", "GET", "/api/v0/orders/a-1", "", http.StatusOK},
		{"reads ignore a wrong one", "GET", "/api/v0/orders", "Bearer wrong", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b any
			switch c.method {
			case "POST":
				b = body
			case "PUT":
				b = `{"available": 3}`
			}
			var headers []string
			if c.auth != "" {
				headers = []string{"Authorization", c.auth}
			}
			r := h.do(c.method, c.path, b, headers...)
			if c.status == http.StatusUnauthorized {
				expectProblem(t, r, c.status, httpapi.ReasonUnauthorized)
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
				return
			}
			expect(t, r, c.status)
		})
	}
	// A panic and an error log must not carry the token either.
	huma.Register(h.server.API(), huma.Operation{OperationID: "boom", Method: http.MethodPost, Path: "/api/v0/boom"},
		func(context.Context, *struct{}) (*struct{}, error) { panic("kaboom") })
	expect(t, h.do("POST", "/api/v0/boom", nil, "Authorization", "Bearer "+token), http.StatusInternalServerError)
	if logs := h.logs.String(); strings.Contains(logs, token) || strings.Contains(logs, token[:8]) {
		t.Errorf("the admin token is in the log:\n%s", logs)
	}
	if !strings.Contains(h.logs.String(), `"status":401`) {
		t.Errorf("log capture saw no requests:\n%s", h.logs)
	}
	r := expect(t, h.do("GET", "/apidocs", nil), http.StatusOK)
	if bytes.Contains(r.body, []byte(token)) {
		t.Error("the admin token is in the OpenAPI document")
	}
	var doc struct {
		Components struct {
			SecuritySchemes map[string]struct {
				Type, Scheme string
			} `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || doc.Components.SecuritySchemes["bearer"].Scheme != "bearer" {
		t.Errorf("bearer scheme not documented: %v %+v", err, doc.Components)
	}
}

func TestMetricsRoute(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "orders_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	h := newHarness(t, baseOptions(), func(d *httpapi.Deps) { d.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{}) })
	r := expect(t, h.do("GET", "/metrics", nil), http.StatusOK)
	if !strings.Contains(string(r.body), "orders_test_total 1") {
		t.Errorf("metrics: %s", r.body)
	}
	expectProblem(t, newHarness(t, baseOptions()).do("GET", "/metrics", nil), http.StatusNotFound, httpapi.ReasonNoRoute)
}
