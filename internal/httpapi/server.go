// Package httpapi is the HTTP surface of the service (§8): the order, inventory,
// message-broker and event routes under the API prefix, liveness and
// readiness, the OpenAPI document and the offline interactive docs, and the
// seed's configurable middleware (CORS, GZip, TrustedHost, HTTPS redirect) plus
// correlation ids, panic recovery, request logging and the admin token.
//
// Routes are huma operations, so the OpenAPI document is generated from the
// same code that serves the requests and the two cannot drift. Every error is
// an RFC 9457 problem (application/problem+json).
package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/cancel"
	"github.com/orderd/orderd/internal/order/fulfil"
	"github.com/orderd/orderd/internal/order/process"
)

// MaxBodyBytes is the largest request body accepted (§8); a larger one is
// answered 413.
const MaxBodyBytes = 1 << 20

// Options are the HTTP settings from the configuration (§7).
type Options struct {
	// AppName and Version describe the API in the OpenAPI document.
	AppName, Version string
	// APIPrefix is API_V1_STR, e.g. "/api/v0"; the business routes live under it.
	APIPrefix string
	// OpenAPIURL is OPENAPI_URL, e.g. "/apidocs"; empty serves no document.
	OpenAPIURL string
	// Production (PRODUCTION_ENV) hides the OpenAPI document and /docs.
	Production bool

	// CORS enables the CORS middleware with the BACKEND_CORS_* lists; "*"
	// means any origin, method or header, as in FastAPI.
	CORS            bool
	CORSOrigins     []string
	CORSMethods     []string
	CORSHeaders     []string
	CORSCredentials bool
	// GZip compresses responses of at least 1,000 bytes for clients that accept gzip.
	GZip bool
	// TrustedHost answers 400 unless the Host is in AllowedHosts: exact
	// names, "*" for any, or "*.example.com" for any subdomain of example.com.
	TrustedHost  bool
	AllowedHosts []string
	// HTTPSRedirect answers plain-HTTP requests with a 308 to the https URL,
	// unless X-Forwarded-Proto says the client already used https.
	HTTPSRedirect bool
	// AdminToken, when set, is required as "Authorization: Bearer <token>" on
	// every state-changing request (POST, PUT, PATCH, DELETE).
	AdminToken string
	// EventsTopic is the topic POST /events publishes to, reported back in
	// the response; empty leaves it out.
	EventsTopic string
	// EventNames are the registered events: POST /events refuses others
	// (400). Empty: any name is published.
	EventNames []string
}

// OrderReader is what the read-only routes and PUT /inventory need from the
// store, outside any use case.
type OrderReader interface {
	// GetOrder returns an order; a missing one is order.ErrNotFound.
	GetOrder(ctx context.Context, id string) (*order.Order, error)
	// ListOrders returns up to limit orders after the cursor (all when
	// status is empty) and the cursor of the next page, "" on the last page.
	ListOrders(ctx context.Context, status order.Status, limit int, after string) ([]*order.Order, string, error)
	// GetStock returns a product's stock; a product without a record is order.ErrNotFound.
	GetStock(ctx context.Context, productID string) (order.Stock, error)
	// SetStock sets a product's available quantity, creating its record if needed.
	SetStock(ctx context.Context, productID string, available int64) (order.Stock, error)
}

// ConsumerStatus is the consumer's state as the message-broker routes report it.
type ConsumerStatus struct {
	State       string     `json:"state" enum:"running,stopped,connecting,stopping" doc:"running, stopped, connecting (retrying the broker, or joining its consumer group again after the group session failed) or stopping"`
	GroupID     string     `json:"group_id,omitempty" doc:"Consumer group"`
	Topics      []string   `json:"topics" nullable:"false" doc:"Topics consumed"`
	Partitions  []int32    `json:"partitions" nullable:"false" doc:"Partitions currently assigned to this instance"`
	Handled     int64      `json:"handled" doc:"Records handled since start-up"`
	DLQd        int64      `json:"dead_lettered" doc:"Records sent to the dead-letter topic since start-up"`
	LastError   string     `json:"last_error,omitempty" doc:"Most recent error, if any"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty" doc:"When the most recent error happened"`
}

// BrokerControl starts, stops and reports the Kafka consumer. Start and Stop
// are idempotent and return the state after the call.
type BrokerControl interface {
	Start(ctx context.Context) (ConsumerStatus, error)
	Stop(ctx context.Context) (ConsumerStatus, error)
	Status(ctx context.Context) ConsumerStatus
}

// EventPublisher publishes one record to the input topic and reports where it landed.
type EventPublisher interface {
	Publish(ctx context.Context, key, value []byte, headers map[string]string) (partition int32, offset int64, err error)
}

// Component is the readiness of one part of the service.
type Component struct {
	Status   string `json:"status" enum:"ok,down,stopped,connecting,retrying,dlq_failing,open,half_open" doc:"ok, down, stopped, connecting, the consumer's retrying (partitions waiting in backoff for a dependency) or dlq_failing (a partition blocked on a failing dead-letter write), or a circuit breaker's open/half_open"`
	Detail   string `json:"detail,omitempty" doc:"Human-readable detail, e.g. the last error"`
	Required bool   `json:"required" doc:"Whether this component must be ok for the service to be ready"`
}

// Readiness is the service's readiness with per-component detail.
type Readiness struct {
	Ready      bool                 `json:"ready"`
	Components map[string]Component `json:"components"`
}

// Deps are the collaborators the routes use. Broker, Events, Ready and
// Metrics may be nil: the broker and event routes then answer 503, readiness
// equals liveness, and /metrics is not served.
type Deps struct {
	Tx      order.Transactor
	Orders  OrderReader
	Process *process.UseCase
	Cancel  *cancel.UseCase
	Fulfil  *fulfil.UseCase
	Broker  BrokerControl
	Events  EventPublisher
	Ready   func(ctx context.Context) Readiness
	Metrics http.Handler
	Logger  *slog.Logger
	Now     func() time.Time
}

func (d Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Server is the service's HTTP handler: the routes with the middleware the
// options switch on.
type Server struct {
	opts    Options
	deps    Deps
	log     *slog.Logger
	mux     *http.ServeMux
	rec     *recordingMux
	api     huma.API
	handler http.Handler
}

// NewServer builds the routes and wraps them in the middleware the options
// enable. It panics on a programming error: a required dependency (Tx,
// Orders, Process, Cancel, Fulfil) missing, or two routes with one pattern.
func NewServer(opts Options, deps Deps) *Server {
	for name, missing := range map[string]bool{
		"Tx": deps.Tx == nil, "Orders": deps.Orders == nil, "Process": deps.Process == nil,
		"Cancel": deps.Cancel == nil, "Fulfil": deps.Fulfil == nil,
	} {
		if missing {
			panic("httpapi: NewServer needs Deps." + name)
		}
	}
	if opts.OpenAPIURL != "" && !strings.HasPrefix(opts.OpenAPIURL, "/") {
		opts.OpenAPIURL = "/" + opts.OpenAPIURL
	}
	installProblemErrors()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{opts: opts, deps: deps, log: deps.Logger, mux: http.NewServeMux()}
	s.rec = &recordingMux{ServeMux: s.mux}

	cfg := huma.DefaultConfig(opts.AppName, opts.Version)
	// No CDN docs, no $schema links, no schema routes: the document and docs
	// are served by this package (docs.go) from the binary.
	cfg.OpenAPIPath, cfg.DocsPath, cfg.SchemasPath = "", "", ""
	cfg.CreateHooks = nil
	cfg.Info.Description = "Order processing service: orders, inventory, the Kafka consumer and event publishing. " +
		"Errors are RFC 9457 problems (application/problem+json) with a `reason` code and the request's `correlation_id`."
	s.api = humago.New(s.rec, cfg)

	s.routes()
	s.handler = s.middleware(http.HandlerFunc(s.dispatch))
	return s
}

// ServeHTTP serves one request through the middleware and the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// API returns the huma API the operations are registered on, so callers (and
// tests) can read the OpenAPI document or register more operations; those
// are served with the same middleware.
func (s *Server) API() huma.API { return s.api }

// OpenAPI returns the generated OpenAPI document.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.api.OpenAPI() }

// Patterns returns every ServeMux pattern registered so far, e.g.
// "GET /api/v0/orders/{id}", in registration order.
func (s *Server) Patterns() []string {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return slices.Clone(s.rec.patterns)
}

// recordingMux is the ServeMux huma registers on; it remembers the patterns
// so that tests can check that every route is documented.
type recordingMux struct {
	*http.ServeMux
	mu       sync.Mutex
	patterns []string
}

func (m *recordingMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.mu.Lock()
	m.patterns = append(m.patterns, pattern)
	m.mu.Unlock()
	m.ServeMux.HandleFunc(pattern, h)
}

func (m *recordingMux) Handle(pattern string, h http.Handler) {
	m.HandleFunc(pattern, h.ServeHTTP)
}

// dispatch serves a request from the mux. It records the matched pattern
// for the logs, and turns the mux's plain-text 404 and 405 into problems.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		infoFrom(r.Context()).route = pattern
		s.mux.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(&noRouteWriter{ResponseWriter: w, r: r}, r)
}

// noRouteWriter replaces the mux's own 404/405 text with a problem; other
// answers (e.g. the mux's redirect to a cleaned path) pass through.
type noRouteWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (w *noRouteWriter) WriteHeader(code int) {
	switch code {
	case http.StatusNotFound:
		w.replaced = true
		writeProblem(w.ResponseWriter, newProblem(w.r.Context(), code, ReasonNoRoute, "no route for "+w.r.URL.Path))
	case http.StatusMethodNotAllowed:
		w.replaced = true
		writeProblem(w.ResponseWriter, newProblem(w.r.Context(), code, ReasonBadMethod,
			w.r.Method+" is not allowed on "+w.r.URL.Path+"; allowed: "+w.Header().Get("Allow")))
	default:
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *noRouteWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *noRouteWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
