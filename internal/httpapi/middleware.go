package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/klauspost/compress/gzhttp"
	"github.com/rs/cors"

	"github.com/orderd/orderd/internal/delivery"
)

// CorrelationHeader carries the correlation id in and out of every request.
const CorrelationHeader = "X-Correlation-ID"

// GZipMinSize is the smallest response the GZip middleware compresses.
const GZipMinSize = 1000

// requestInfo is what the outer middleware learns from the inner ones: the
// matched route, for the request log and error logs.
type requestInfo struct {
	route  string
	logger *slog.Logger
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	if ctx != nil {
		if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
			return ri
		}
	}
	return &requestInfo{}
}

func routeFrom(ctx context.Context) string { return infoFrom(ctx).route }

func logFrom(ctx context.Context) *slog.Logger {
	if l := infoFrom(ctx).logger; l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// correlationID returns the request's correlation id ("" outside a request).
func correlationID(ctx context.Context) string {
	if ctx == nil || !delivery.HasMeta(ctx) {
		return ""
	}
	return delivery.MetaFrom(ctx).CorrelationID
}

// middleware wraps h in the chain, outermost first: correlation id, request
// log, body size, trusted host, HTTPS redirect, CORS, GZip, admin token,
// panic recovery (innermost, so a panic is answered through the same
// headers, compression and log as any response).
func (s *Server) middleware(h http.Handler) http.Handler {
	h = s.recoverPanics(checkInput(h))
	if s.opts.AdminToken != "" {
		h = requireToken(s.opts.AdminToken, h)
	}
	if s.opts.GZip {
		gz, err := gzhttp.NewWrapper(gzhttp.MinSize(GZipMinSize), gzhttp.EnableZstd(false))
		if err != nil {
			panic(fmt.Sprintf("httpapi: gzip options: %v", err))
		}
		h = gz(h)
	}
	if s.opts.CORS {
		h = newCORS(s.opts).Handler(h)
	}
	if s.opts.HTTPSRedirect {
		h = redirectHTTPS(h)
	}
	if s.opts.TrustedHost {
		h = trustHosts(s.opts.AllowedHosts, h)
	}
	h = limitBody(h)
	h = s.logRequests(h)
	return withCorrelationID(s.log, h)
}

// withCorrelationID accepts a well-formed X-Correlation-ID or makes a UUID,
// echoes it on the response and puts it in the context (as delivery.Meta, so
// the use cases' logs carry it like a message's).
func withCorrelationID(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(CorrelationHeader)
		if !validCorrelationID(id) {
			id = uuid.NewString()
		}
		w.Header().Set(CorrelationHeader, id)
		ctx := delivery.WithMeta(r.Context(), &delivery.Meta{CorrelationID: id})
		ctx = context.WithValue(ctx, infoKey{}, &requestInfo{logger: log})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// validCorrelationID accepts 1–128 characters of letters, digits and
// "-_.:", so a client's id cannot inject anything into logs or headers.
func validCorrelationID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("-_.:", c):
		default:
			return false
		}
	}
	return true
}

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController (deadlines, flushing) reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests writes one debug line per request. It logs no headers, so the
// Authorization header (the admin token) never reaches the log.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		ctx := r.Context()
		s.log.DebugContext(ctx, "http request",
			slog.String("method", r.Method),
			slog.String("route", routeFrom(ctx)),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("correlation_id", correlationID(ctx)))
	})
}

// recoverPanics answers a panicking handler with a logged 500 problem (the
// seed's RouteErrorHandler) instead of dropping the connection.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			ctx := r.Context()
			s.log.ErrorContext(ctx, "handler panicked",
				slog.String("method", r.Method),
				slog.String("route", routeFrom(ctx)),
				slog.String("path", r.URL.Path),
				slog.String("correlation_id", correlationID(ctx)),
				slog.Any("panic", v),
				slog.String("stack", string(debug.Stack())))
			if sw.status != 0 {
				// The response has started; the best we can do is cut it short.
				panic(http.ErrAbortHandler)
			}
			writeProblem(sw, newProblem(ctx, http.StatusInternalServerError, ReasonInternal,
				"unexpected error; see the server log for this correlation_id"))
		}()
		next.ServeHTTP(sw, r)
	})
}

// limitBody refuses a declared body over MaxBodyBytes before reading it and
// caps the reading of undeclared (chunked) ones; the routes also limit what
// they read, answering 413 either way.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			w.Header().Set("Connection", "close")
			writeProblem(w, newProblem(r.Context(), http.StatusRequestEntityTooLarge, ReasonTooLarge,
				fmt.Sprintf("request body is %d bytes, at most %d allowed", r.ContentLength, MaxBodyBytes)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// trustHosts answers 400 unless the Host header (port ignored) is allowed:
// "*" allows any, "*.example.com" any subdomain of example.com, anything
// else is an exact, case-insensitive name (Starlette's TrustedHostMiddleware).
func trustHosts(allowed []string, next http.Handler) http.Handler {
	var exact []string
	var suffixes []string
	anyHost := false
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case a == "*":
			anyHost = true
		case strings.HasPrefix(a, "*."):
			suffixes = append(suffixes, a[1:])
		case a != "":
			// An IPv6 address as a Host header writes it, [::1], and
			// hostOnly takes the brackets off.
			exact = append(exact, strings.Trim(a, "[]"))
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if anyHost || hostAllowed(hostOnly(r.Host), exact, suffixes) {
			next.ServeHTTP(w, r)
			return
		}
		writeProblem(w, newProblem(r.Context(), http.StatusBadRequest, ReasonBadHost, "invalid host header"))
	})
}

func hostOnly(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.Trim(host, "[]"))
}

func hostAllowed(host string, exact, suffixes []string) bool {
	if host == "" {
		return false
	}
	for _, e := range exact {
		if host == e {
			return true
		}
	}
	for _, s := range suffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return true
		}
	}
	return false
}

// redirectHTTPS answers a plain-HTTP request with a 308 to the same URL over
// https; a request that arrived over TLS, or through a proxy that says so
// with X-Forwarded-Proto: https, passes.
func redirectHTTPS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")[0]))
		if r.TLS != nil || proto == "https" {
			next.ServeHTTP(w, r)
			return
		}
		if r.Host == "" {
			writeProblem(w, newProblem(r.Context(), http.StatusBadRequest, ReasonBadHost, "missing host header"))
			return
		}
		host := r.Host
		if h, port, err := net.SplitHostPort(host); err == nil && (port == "80" || port == "443") {
			host = h
			if strings.Contains(h, ":") {
				host = "[" + h + "]"
			}
		}
		target := "https://" + host + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusPermanentRedirect)
	})
}

// allMethods is what "*" in BACKEND_CORS_METHODS stands for.
var allMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

// newCORS configures rs/cors the way FastAPI's CORSMiddleware reads the
// same settings: "*" means any origin, method or header; with credentials
// allowed, "*" echoes the request's origin, since browsers refuse a literal
// "*" on credentialed responses; an empty origin list allows none.
func newCORS(o Options) *cors.Cors {
	c := cors.Options{
		AllowedHeaders:   o.CORSHeaders,
		AllowCredentials: o.CORSCredentials,
		ExposedHeaders:   []string{CorrelationHeader, "Retry-After", "Location"},
		MaxAge:           600,
	}
	if len(c.AllowedHeaders) == 0 {
		// rs/cors treats an empty list as its defaults; FastAPI as none beyond the safelisted.
		c.AllowedHeaders = []string{"Accept", "Accept-Language", "Content-Language", "Content-Type"}
	}
	for _, m := range o.CORSMethods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "*" {
			c.AllowedMethods = allMethods
			break
		}
		c.AllowedMethods = append(c.AllowedMethods, m)
	}
	anyOrigin := false
	for _, origin := range o.CORSOrigins {
		if strings.TrimSpace(origin) == "*" {
			anyOrigin = true
		}
	}
	switch {
	case anyOrigin && o.CORSCredentials:
		c.AllowOriginFunc = func(string) bool { return true }
	case anyOrigin:
		c.AllowedOrigins = []string{"*"}
	case len(o.CORSOrigins) == 0:
		c.AllowOriginFunc = func(string) bool { return false }
	default:
		c.AllowedOrigins = o.CORSOrigins
	}
	return cors.New(c)
}

// requireToken demands "Authorization: Bearer <token>" on state-changing
// requests. Both sides are hashed before the constant-time comparison, so
// neither the token's content nor its length shows in the timing.
func requireToken(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			next.ServeHTTP(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		scheme, given, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orderd"`)
			writeProblem(w, newProblem(r.Context(), http.StatusUnauthorized, ReasonUnauthorized,
				"this request changes state and needs an Authorization: Bearer token"))
			return
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(given)))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orderd", error="invalid_token"`)
			writeProblem(w, newProblem(r.Context(), http.StatusUnauthorized, ReasonUnauthorized, "the bearer token is not valid"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
