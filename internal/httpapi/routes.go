package httpapi

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// Operation tags, one per group of routes in the docs.
const (
	tagHealth    = "health"
	tagOrders    = "orders"
	tagInventory = "inventory"
	tagBroker    = "message_broker"
	tagEvents    = "events"
)

// routes registers every route; this is the one place that lists them.
func (s *Server) routes() {
	p := strings.TrimRight(s.opts.APIPrefix, "/")
	d := s.deps
	if s.opts.AdminToken != "" {
		s.api.OpenAPI().Components.SecuritySchemes = map[string]*huma.SecurityScheme{
			"bearer": {Type: "http", Scheme: "bearer", Description: "ADMIN_TOKEN; required on every state-changing request"},
		}
	}

	// Health, at the root (and liveness also under the prefix).
	register(s, huma.Operation{OperationID: "liveness", Method: http.MethodGet, Path: HealthPath,
		Summary: "Liveness", Description: "200 while the process serves HTTP.", Tags: []string{tagHealth}}, liveness)
	if p != "" {
		register(s, huma.Operation{OperationID: "liveness-api", Method: http.MethodGet, Path: p + HealthPath,
			Summary: "Liveness (under the API prefix)", Tags: []string{tagHealth}}, liveness)
	}
	ready := register(s, huma.Operation{OperationID: "readiness", Method: http.MethodGet, Path: ReadyPath,
		Summary:     "Readiness",
		Description: "200 when every required component (database, Kafka, consumer, circuit breaker) is ok, 503 otherwise; the body details each component.",
		Tags:        []string{tagHealth}}, readiness(d.Ready))
	alsoResponds(ready, http.StatusServiceUnavailable, "Not ready", ready.Responses["200"])

	// Orders.
	register(s, huma.Operation{OperationID: "list-orders", Method: http.MethodGet, Path: p + "/orders",
		Summary: "List orders", Description: "Orders in id order, optionally of one status, a page at a time; pass next_cursor back as cursor.",
		Tags: []string{tagOrders}, Errors: []int{503}}, listOrders(d))
	created := register(s, huma.Operation{OperationID: "create-order", Method: http.MethodPost, Path: p + "/orders",
		Summary:     "Create an order",
		Description: "The body is the data of an OrderCreated event (camelCase, as in the seed's event schema) and is checked the same way (§2). 201 when created, 200 when an identical order already exists, 409 when the id exists with different content. The order is stored, not processed.",
		Tags:        []string{tagOrders}, DefaultStatus: http.StatusCreated, Errors: []int{409, 503}}, createOrder(d))
	documentBody(s, created, reflect.TypeFor[OrderCreatedData]())
	alsoResponds(created, http.StatusOK, "An identical order already existed", created.Responses["201"])
	register(s, huma.Operation{OperationID: "get-order", Method: http.MethodGet, Path: p + "/orders/{id}",
		Summary: "Get an order", Tags: []string{tagOrders}, Errors: []int{404, 503}}, getOrder(d))
	register(s, huma.Operation{OperationID: "process-order", Method: http.MethodPost, Path: p + "/orders/{id}/process",
		Summary:     "Process an order (ProcessOrder)",
		Description: "Validates the order, prices shipping and discount, reserves stock and moves it to processing, in one transaction (§3). 409 unless new or pending; 422 when a rule rejects it (invalid_amount, fraud_review, out_of_stock, unsupported_region).",
		Tags:        []string{tagOrders}, Errors: []int{404, 409, 422, 503}}, processOrder(d))
	register(s, huma.Operation{OperationID: "cancel-order", Method: http.MethodPost, Path: p + "/orders/{id}/cancel",
		Summary:     "Cancel an order (CancelOrder)",
		Description: "Refunds the charged amount less the cancellation fee, releases reserved stock and moves the order to cancelled (§4). 409 when shipped, delivered or already cancelled.",
		Tags:        []string{tagOrders}, Errors: []int{404, 409, 503}}, cancelOrder(d))
	register(s, huma.Operation{OperationID: "ship-order", Method: http.MethodPost, Path: p + "/orders/{id}/ship",
		Summary: "Mark an order shipped", Description: "processing → shipped, with an optional tracking number.",
		Tags: []string{tagOrders}, Errors: []int{404, 409, 503}}, shipOrder(d))
	register(s, huma.Operation{OperationID: "deliver-order", Method: http.MethodPost, Path: p + "/orders/{id}/deliver",
		Summary: "Mark an order delivered", Description: "shipped → delivered.",
		Tags: []string{tagOrders}, Errors: []int{404, 409, 503}}, deliverOrder(d))

	// Inventory.
	register(s, huma.Operation{OperationID: "get-stock", Method: http.MethodGet, Path: p + "/inventory/{productId}",
		Summary: "Get a product's stock", Tags: []string{tagInventory}, Errors: []int{404, 503}}, getStock(d))
	register(s, huma.Operation{OperationID: "set-stock", Method: http.MethodPut, Path: p + "/inventory/{productId}",
		Summary: "Set a product's available stock", Description: "Creates the stock record if the product has none; reserved units are kept. 409 (stock_limit) when available and the units reserved by orders would together exceed 10^15.",
		Tags: []string{tagInventory}, Errors: []int{409, 503}}, setStock(d))

	// Message broker (the seed's routes).
	register(s, huma.Operation{OperationID: "start-consuming", Method: http.MethodPost, Path: p + "/message_broker/start_consuming_message",
		Summary: "Start the Kafka consumer", Description: "Idempotent; returns the consumer state.",
		Tags: []string{tagBroker}, Errors: []int{503}}, startConsumer(d))
	register(s, huma.Operation{OperationID: "stop-consuming", Method: http.MethodPost, Path: p + "/message_broker/stop_consuming_message",
		Summary: "Stop the Kafka consumer", Description: "Idempotent; finishes in-flight records, commits, leaves the group, and returns the consumer state.",
		Tags: []string{tagBroker}, Errors: []int{503}}, stopConsumer(d))
	register(s, huma.Operation{OperationID: "consumer-status", Method: http.MethodGet, Path: p + "/message_broker/status",
		Summary: "Consumer state", Tags: []string{tagBroker}, Errors: []int{503}}, consumerStatus(d))

	// Events.
	events := register(s, huma.Operation{OperationID: "publish-event", Method: http.MethodPost, Path: p + "/events",
		Summary:     "Publish an event to the input topic",
		Description: "The body, an envelope {id, name, data}, is published byte for byte with key data.orderId and the request's correlation id as the correlation_id header. The consumer checks the data. 422 when the broker refuses the record for good (message_too_large, invalid_record).",
		Tags:        []string{tagEvents}, DefaultStatus: http.StatusAccepted, Errors: []int{422, 503}}, publishEvent(d, s.opts.EventsTopic, s.opts.EventNames))
	documentBody(s, events, reflect.TypeFor[EventEnvelope]())

	// Outside the OpenAPI document: the document itself, the docs, metrics.
	if !s.opts.Production && s.opts.OpenAPIURL != "" {
		s.rec.HandleFunc("GET "+s.opts.OpenAPIURL, s.serveOpenAPI)
		s.rec.HandleFunc("GET "+DocsPath, s.serveDocsPage)
		s.rec.HandleFunc("GET "+DocsPath+"/assets/{file}", serveDocsAsset)
	}
	if d.Metrics != nil {
		s.rec.Handle("GET "+MetricsPath, d.Metrics)
	}
}

// register adds one huma operation with the service's conventions: the
// body limit, problem responses as declared, the bearer requirement on
// state-changing routes. It returns the operation as stored in the document.
//
// op.Errors lists what the handler answers; register adds what the
// middleware and huma answer before it, so that the document lists every
// status the route can give: 400 on every route (a path or query the input
// check refuses, an untrusted Host), 413 on those that take a body, 415 on
// those huma decodes a JSON body for, 401 with ADMIN_TOKEN.
func register[I, O any](s *Server, op huma.Operation, h func(context.Context, *I) (*O, error)) *huma.Operation {
	declared := slices.Clone(op.Errors)
	op.Errors = append(op.Errors, http.StatusBadRequest)
	if isStateChanging(op.Method) {
		// The methods that carry a body here; a GET with one over 1 MiB is
		// refused too, but a GET takes none.
		op.Errors = append(op.Errors, http.StatusRequestEntityTooLarge)
	}
	if _, ok := reflect.TypeFor[I]().FieldByName("Body"); ok {
		op.Errors = append(op.Errors, http.StatusUnsupportedMediaType)
	}
	if isStateChanging(op.Method) && s.opts.AdminToken != "" {
		op.Errors = append(op.Errors, http.StatusUnauthorized)
		op.Security = []map[string][]string{{"bearer": {}}}
	}
	slices.Sort(op.Errors)
	op.Errors = slices.Compact(op.Errors)
	// Huma answers 413 when it reads MaxBodyBytes; +1 accepts exactly 1 MiB.
	op.MaxBodyBytes = MaxBodyBytes + 1
	huma.Register(s.api, op, h)
	stored := operation(s.api.OpenAPI(), op.Method, op.Path)
	// Huma documents 422 for every route with parameters or a body; here
	// malformed input is 400 and 422 is only a rule's refusal.
	if !slices.Contains(declared, http.StatusUnprocessableEntity) {
		delete(stored.Responses, "422")
	}
	return stored
}

func isStateChanging(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// documentBody describes a body the handler reads raw (to keep amounts
// exact, or to publish it byte for byte) as the JSON type t.
func documentBody(s *Server, op *huma.Operation, t reflect.Type) {
	schema := s.api.OpenAPI().Components.Schemas.Schema(t, true, t.Name())
	op.RequestBody = &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{"application/json": {Schema: schema}}}
}

// alsoResponds documents another success status with the same body as like.
func alsoResponds(op *huma.Operation, status int, description string, like *huma.Response) {
	r := &huma.Response{Description: description}
	if like != nil {
		r.Content, r.Headers = like.Content, like.Headers
	}
	op.Responses[strconv.Itoa(status)] = r
}

// operation finds a registered operation in the document.
func operation(doc *huma.OpenAPI, method, path string) *huma.Operation {
	item := doc.Paths[path]
	if item == nil {
		return nil
	}
	switch method {
	case http.MethodGet:
		return item.Get
	case http.MethodPost:
		return item.Post
	case http.MethodPut:
		return item.Put
	case http.MethodPatch:
		return item.Patch
	case http.MethodDelete:
		return item.Delete
	}
	return nil
}
