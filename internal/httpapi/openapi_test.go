package httpapi_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/orderd/orderd/internal/httpapi"
)

// openAPIDoc is the part of the document the tests read.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		OperationID string   `json:"operationId"`
		Summary     string   `json:"summary"`
		Tags        []string `json:"tags"`
		RequestBody *struct {
			Content map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				} `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
		Responses map[string]struct {
			Content map[string]json.RawMessage `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]struct {
				Type        any    `json:"type"`
				Description string `json:"description"`
				Enum        []any  `json:"enum"`
			} `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func fetchDoc(t *testing.T, h *harness) openAPIDoc {
	t.Helper()
	r := expect(t, h.do("GET", "/apidocs", nil), http.StatusOK)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// undocumented are the routes that are deliberately not API operations.
var undocumented = []string{"GET /apidocs", "GET /docs", "GET /docs/assets/{file}", "GET /metrics"}

// TestOpenAPICompleteness walks every pattern registered on the mux and
// checks that the document has it with its method, and the reverse.
func TestOpenAPICompleteness(t *testing.T) {
	h := newHarness(t, baseOptions(), func(d *httpapi.Deps) { d.Metrics = http.NotFoundHandler() })
	doc := fetchDoc(t, h)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	patterns := h.server.Patterns()
	if len(patterns) < 17 {
		t.Fatalf("only %d patterns: %v", len(patterns), patterns)
	}
	seen := map[string]bool{}
	ids := map[string]bool{}
	for _, p := range patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			t.Errorf("pattern %q has no method", p)
			continue
		}
		seen[p] = true
		if slices.Contains(undocumented, p) {
			continue
		}
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("%s is served but not in the OpenAPI document", p)
			continue
		}
		if op.OperationID == "" || op.Summary == "" || len(op.Tags) == 0 {
			t.Errorf("%s: operationId %q, summary %q, tags %v", p, op.OperationID, op.Summary, op.Tags)
		}
		if ids[op.OperationID] {
			t.Errorf("duplicate operationId %s", op.OperationID)
		}
		ids[op.OperationID] = true
		success := false
		for status, resp := range op.Responses {
			if strings.HasPrefix(status, "2") {
				success = true
			}
			if p == "GET /readyz" && status == "503" {
				// Not ready is a readiness report, not a problem.
				if _, ok := resp.Content["application/json"]; !ok {
					t.Errorf("%s: 503 is not documented as the readiness report", p)
				}
				continue
			}
			if strings.HasPrefix(status, "4") || strings.HasPrefix(status, "5") {
				if _, ok := resp.Content[httpapi.ProblemContentType]; !ok {
					t.Errorf("%s: error %s is not documented as a problem", p, status)
				}
			}
		}
		if !success {
			t.Errorf("%s documents no success response", p)
		}
		if method == http.MethodPost || method == http.MethodPut {
			if _, ok := op.Responses["500"]; !ok {
				t.Errorf("%s: no 500 documented", p)
			}
		}
	}
	for path, item := range doc.Paths {
		for method := range item {
			if p := strings.ToUpper(method) + " " + path; !seen[p] {
				t.Errorf("%s is documented but not served", p)
			}
		}
	}
	for _, u := range undocumented {
		if !seen[u] {
			t.Errorf("expected route %s is not registered", u)
		}
	}
}

// TestOpenAPISchemas checks what the document says about the shapes that
// matter to clients: amounts are numbers, raw bodies are described.
func TestOpenAPISchemas(t *testing.T) {
	h := newHarness(t, baseOptions())
	doc := fetchDoc(t, h)
	isType := func(v any, want string) bool {
		switch v := v.(type) {
		case string:
			return v == want
		case []any:
			return slices.Contains(v, any(want))
		}
		return false
	}
	numbers := map[string][]string{
		"Order":            {"total_amount", "shipping_cost", "discount", "final_total", "refund_amount"},
		"OrderItem":        {"unit_price", "total_price"},
		"ProcessResult":    {"shipping_cost", "discount_applied", "final_total"},
		"CancelResult":     {"refund_amount"},
		"OrderCreatedData": {"totalAmount"},
		"OrderCreatedRow":  {"unitPrice", "totalPrice"},
	}
	for schema, props := range numbers {
		for _, p := range props {
			if typ := doc.Components.Schemas[schema].Properties[p].Type; !isType(typ, "number") {
				t.Errorf("%s.%s has type %v, want number", schema, p, typ)
			}
		}
	}
	for _, p := range []string{"shipping_cost", "final_total", "refund_amount", "cancellation_reason", "tracking_number"} {
		if typ := doc.Components.Schemas["Order"].Properties[p].Type; !isType(typ, "null") {
			t.Errorf("Order.%s is not nullable: %v", p, typ)
		}
	}
	bodies := map[string]string{
		"/api/v0/orders": "OrderCreatedData",
		"/api/v0/events": "EventEnvelope",
	}
	for path, schema := range bodies {
		op := doc.Paths[path]["post"]
		if op.RequestBody == nil || !strings.HasSuffix(op.RequestBody.Content["application/json"].Schema.Ref, "/"+schema) {
			t.Errorf("POST %s body is not documented as %s: %+v", path, schema, op.RequestBody)
		}
	}
	// Schema validation failures are 400 here; 422 is only documented where
	// a rule can refuse, or the broker can refuse an event for good.
	refusing := []string{"/api/v0/orders/{id}/process", "/api/v0/events"}
	for path, item := range doc.Paths {
		for method, op := range item {
			if _, ok := op.Responses["422"]; ok && !slices.Contains(refusing, path) {
				t.Errorf("%s %s documents 422", method, path)
			}
		}
	}
}

// TestOpenAPIEnumsSayCaseIsIgnored: the order body's enums list one
// spelling, the service takes any case; each such field says so, and takes
// a value in another case than the listed ones.
func TestOpenAPIEnumsSayCaseIsIgnored(t *testing.T) {
	h := newHarness(t, baseOptions())
	doc := fetchDoc(t, h)
	others := map[string]string{"status": `"pending"`, "shippingMethod": `"EXPRESS"`}
	for name, p := range doc.Components.Schemas["OrderCreatedData"].Properties {
		if len(p.Enum) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(strings.ToLower(p.Description), "case is ignored") {
				t.Errorf("description %q does not say the case is ignored", p.Description)
			}
			v, ok := others[name]
			if !ok {
				t.Fatalf("no value in another case for %s (enum %v)", name, p.Enum)
			}
			body := strings.Replace(orderJSON("enum-"+name, "INR", "2", "75.00", "150.00", `"`+name+`":`+v), `"status":"CREATED",`, "", 1)
			expect(t, h.do("POST", "/api/v0/orders", body), http.StatusCreated)
		})
	}
}

// TestOpenAPILengthsSayBytes: maxLength counts characters (JSON Schema),
// the service bytes (§2), so every text with a maxLength says so in its
// description.
func TestOpenAPILengthsSayBytes(t *testing.T) {
	h := newHarness(t, baseOptions())
	var doc any
	if err := json.Unmarshal(expect(t, h.do("GET", "/apidocs", nil), http.StatusOK).body, &doc); err != nil {
		t.Fatal(err)
	}
	found := 0
	// walk visits every object; a parameter's description sits beside its schema.
	var walk func(path string, v any, outer string)
	walk = func(path string, v any, outer string) {
		switch v := v.(type) {
		case map[string]any:
			desc, _ := v["description"].(string)
			if _, ok := v["maxLength"]; ok {
				found++
				if !strings.Contains(desc+" "+outer, "bytes of UTF-8") {
					t.Errorf("%s has a maxLength but its description %q does not say the limit is in bytes", path, desc+outer)
				}
			}
			for k, e := range v {
				inner := ""
				if k == "schema" {
					inner = desc
				}
				walk(path+"/"+k, e, inner)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s/%d", path, i), e, "")
			}
		}
	}
	walk("", doc, "")
	if found < 10 {
		t.Errorf("found only %d texts with a maxLength", found)
	}
}

func TestDocsAreServedOffline(t *testing.T) {
	h := newHarness(t, baseOptions())
	r := expect(t, h.do("GET", "/docs", nil), http.StatusOK)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	page := string(r.body)
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, "//unpkg") {
		t.Errorf("the page refers to another host:\n%s", page)
	}
	refs := regexp.MustCompile(`(?:src|href|data-openapi-url)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("found only %d references in:\n%s", len(refs), page)
	}
	sawSpec := false
	for _, m := range refs {
		ref := m[1]
		if !strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "//") {
			t.Errorf("reference %q is not a path on this server", ref)
			continue
		}
		r := h.do("GET", ref, nil)
		if r.status != http.StatusOK || len(r.body) == 0 {
			t.Errorf("%s: status %d, %d bytes", ref, r.status, len(r.body))
		}
		if ref == "/apidocs" {
			sawSpec = json.Valid(r.body)
		}
	}
	if !sawSpec {
		t.Error("the page does not point Swagger UI at the OpenAPI document")
	}
	expectProblem(t, h.do("GET", "/docs/assets/nothing.js", nil), http.StatusNotFound, httpapi.ReasonNoRoute)
}

func TestProductionHidesDocs(t *testing.T) {
	for _, production := range []bool{false, true} {
		opts := baseOptions()
		opts.Production = production
		h := newHarness(t, opts)
		for _, path := range []string{"/apidocs", "/docs", "/docs/assets/swagger-ui.css"} {
			r := h.do("GET", path, nil)
			if production {
				expectProblem(t, r, http.StatusNotFound, httpapi.ReasonNoRoute)
			} else {
				expect(t, r, http.StatusOK)
			}
		}
		// The API itself is there either way.
		expect(t, h.do("GET", "/api/v0/orders", nil), http.StatusOK)
	}
}

// TestOpenAPIListsWhatRoutesAnswer walks every operation in the document and
// provokes the answers any route can give — input the input check refuses,
// an untrusted host, no admin token, a body over 1 MiB, a body in another
// media type, and an ordinary request for an order or product that does not
// exist — and requires each status it gets to be documented for that operation.
func TestOpenAPIListsWhatRoutesAnswer(t *testing.T) {
	opts := baseOptions()
	opts.TrustedHost, opts.AllowedHosts = true, []string{"127.0.0.1"}
	opts.AdminToken = "secret"
	h := newHarness(t, opts)
	doc := fetchDoc(t, h)
	auth := []string{"Authorization", "Bearer secret"}
	params := regexp.MustCompile(`\{[^}]*\}`)
	type provocation struct {
		name    string
		query   string
		body    any
		headers []string
		want    int // the status this provocation must get; 0 when any documented one will do
	}
	for path, item := range doc.Paths {
		for method, op := range item {
			method := strings.ToUpper(method)
			url := params.ReplaceAllString(path, "x")
			provocations := []provocation{
				{name: "ordinary", headers: auth},
				{name: "NUL in the query", query: "?q=%00", headers: auth, want: http.StatusBadRequest},
				{name: "untrusted host", headers: append([]string{"Host", "evil.example"}, auth...), want: http.StatusBadRequest},
			}
			if method == http.MethodPost || method == http.MethodPut {
				provocations = append(provocations,
					provocation{name: "ordinary JSON body", body: `{}`, headers: auth},
					provocation{name: "no token", body: `{}`, want: http.StatusUnauthorized},
					provocation{name: "body over 1 MiB", body: strings.Repeat(" ", httpapi.MaxBodyBytes+1), headers: auth, want: http.StatusRequestEntityTooLarge},
					provocation{name: "text body", body: `{}`, headers: append([]string{"Content-Type", "text/plain"}, auth...)},
				)
			}
			for _, p := range provocations {
				t.Run(method+" "+path+"/"+p.name, func(t *testing.T) {
					r := h.do(method, url+p.query, p.body, p.headers...)
					if p.want != 0 && r.status != p.want {
						t.Errorf("status %d, want %d; body: %s", r.status, p.want, r.body)
					}
					if _, ok := op.Responses[strconv.Itoa(r.status)]; !ok {
						t.Errorf("answered %d, which the document does not list (it lists %v); body: %s", r.status, slices.Sorted(maps.Keys(op.Responses)), r.body)
					}
				})
			}
		}
	}
}
