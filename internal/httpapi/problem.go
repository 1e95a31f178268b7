package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/danielgtaylor/huma/v2"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
)

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = "application/problem+json"

// Reason codes of problems that do not come from an order rule.
const (
	ReasonUnauthorized = "unauthorized"
	ReasonTooLarge     = "too_large"
	ReasonUnavailable  = "unavailable"
	ReasonInternal     = "internal"
	ReasonBadHost      = "invalid_host"
	ReasonNoRoute      = "no_route"
	ReasonBadMethod    = "method_not_allowed"
	ReasonMediaType    = "unsupported_media_type"
	ReasonHTTP         = "http_error" // any other status huma answers itself
	ReasonTimeout      = "timeout"    // the request's body did not arrive in time
)

// RetryAfterSeconds is what a 503 asks the client to wait.
const RetryAfterSeconds = 5

// Problem is an RFC 9457 problem detail with two extensions: reason, the
// stable rule code (e.g. out_of_stock), and correlation_id, the request's id.
type Problem struct {
	Type          string              `json:"type" doc:"A URI reference identifying the problem type; about:blank for plain HTTP errors, urn:orderd:problem:<reason> for a rule"`
	Title         string              `json:"title" doc:"A short summary of the problem type"`
	Status        int                 `json:"status" doc:"The HTTP status code"`
	Detail        string              `json:"detail,omitempty" doc:"What went wrong in this occurrence"`
	Reason        string              `json:"reason,omitempty" doc:"Stable machine-readable reason, e.g. not_found, conflict, out_of_stock, fraud_review, invalid"`
	CorrelationID string              `json:"correlation_id,omitempty" doc:"The request's X-Correlation-ID"`
	Errors        []*huma.ErrorDetail `json:"errors,omitempty" doc:"Individual validation errors, when there are several"`
	headers       http.Header
}

// Error returns the problem's detail.
func (p *Problem) Error() string { return p.Detail }

// GetStatus returns the HTTP status (huma.StatusError).
func (p *Problem) GetStatus() int { return p.Status }

// GetHeaders returns extra response headers such as Retry-After (huma.HeadersError).
func (p *Problem) GetHeaders() http.Header { return p.headers }

// ContentType makes huma send problems as application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" {
		return ProblemContentType
	}
	return ct
}

// reasonStatus maps a rule's reason to its HTTP status (§8): 404 missing,
// 409 state conflicts, 422 rules that reject the order, 400 invalid input.
var reasonStatus = map[string]int{
	order.ReasonNotFound:          http.StatusNotFound,
	order.ReasonConflict:          http.StatusConflict,
	order.ReasonStockLimit:        http.StatusConflict,
	order.ReasonNotCancellable:    http.StatusConflict,
	order.ReasonInvalidStatus:     http.StatusConflict,
	order.ReasonInvalidTransition: http.StatusConflict,
	order.ReasonFraudReview:       http.StatusUnprocessableEntity,
	order.ReasonOutOfStock:        http.StatusUnprocessableEntity,
	order.ReasonUnsupportedRegion: http.StatusUnprocessableEntity,
	order.ReasonInvalidAmount:     http.StatusUnprocessableEntity,
	order.ReasonInvalid:           http.StatusBadRequest,
}

var reasonTitle = map[string]string{
	order.ReasonNotFound:          "Not found",
	order.ReasonConflict:          "Conflicts with an existing order",
	order.ReasonStockLimit:        "Stock would exceed the limit with the units reserved",
	order.ReasonNotCancellable:    "Order cannot be cancelled",
	order.ReasonInvalidStatus:     "Order is not in a processable status",
	order.ReasonInvalidTransition: "Status change not allowed",
	order.ReasonFraudReview:       "Flagged for fraud review",
	order.ReasonOutOfStock:        "Out of stock",
	order.ReasonUnsupportedRegion: "Shipping region not supported",
	order.ReasonInvalidAmount:     "Invalid amount",
	order.ReasonInvalid:           "Invalid input",
}

// newProblem builds a problem for ctx's request.
func newProblem(ctx context.Context, status int, reason, detail string) *Problem {
	p := &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Reason: reason}
	if ctx != nil {
		p.CorrelationID = correlationID(ctx)
	}
	if status == http.StatusServiceUnavailable {
		p.headers = http.Header{"Retry-After": {strconv.Itoa(RetryAfterSeconds)}}
	}
	return p
}

// ruleProblem builds the problem for a rule the domain refused.
func ruleProblem(ctx context.Context, status int, reason, detail string) *Problem {
	p := newProblem(ctx, status, reason, detail)
	p.Type = "urn:orderd:problem:" + reason
	if t, ok := reasonTitle[reason]; ok {
		p.Title = t
	}
	return p
}

// fail turns any error from a use case or adapter into the problem the
// client sees. Errors it cannot explain are logged with the route and
// answered with a bare 500, so internals never leak.
func fail(ctx context.Context, err error) error {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var re *order.RuleError
	if errors.As(err, &re) {
		status, ok := reasonStatus[re.Reason]
		if !ok {
			status = http.StatusUnprocessableEntity
		}
		return ruleProblem(ctx, status, re.Reason, re.Detail)
	}
	kind, reason := fault.Of(err)
	switch {
	case kind == fault.Transient, errors.Is(err, context.DeadlineExceeded):
		logFrom(ctx).WarnContext(ctx, "request failed: dependency unavailable",
			slog.String("route", routeFrom(ctx)), slog.String("correlation_id", correlationID(ctx)), slog.Any("error", err))
		return newProblem(ctx, http.StatusServiceUnavailable, ReasonUnavailable, "a dependency is temporarily unavailable; try again later")
	case kind == fault.Permanent:
		return ruleProblem(ctx, http.StatusUnprocessableEntity, reason, err.Error())
	}
	logFrom(ctx).ErrorContext(ctx, "request failed: unexpected error",
		slog.String("route", routeFrom(ctx)), slog.String("correlation_id", correlationID(ctx)), slog.Any("error", err))
	return newProblem(ctx, http.StatusInternalServerError, ReasonInternal, "unexpected error; see the server log for this correlation_id")
}

var problemsOnce sync.Once

// installProblemErrors makes huma build every error it raises itself (body
// too large, unparsable or invalid input, …) as a Problem. Huma's schema
// validation answers 422; here malformed input is 400 and 422 is kept for
// the rules (§8). huma.NewError is a package variable, so this is done once
// per process; it only changes the shape of huma's errors.
func installProblemErrors() {
	problemsOnce.Do(func() {
		huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
			return humaProblem(context.Background(), status, msg, errs)
		}
		huma.NewErrorWithContext = func(hctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
			ctx := context.Background()
			if hctx != nil {
				ctx = hctx.Context()
			}
			return humaProblem(ctx, status, msg, errs)
		}
	})
}

// maxEchoedValue bounds the input huma echoes back in an error detail.
const maxEchoedValue = 200

func humaProblem(ctx context.Context, status int, msg string, errs []error) *Problem {
	if status == http.StatusUnprocessableEntity {
		status = http.StatusBadRequest
	}
	reason := ""
	switch {
	case status == http.StatusBadRequest:
		reason = order.ReasonInvalid
	case status == http.StatusRequestEntityTooLarge:
		reason = ReasonTooLarge
	case status == http.StatusUnsupportedMediaType:
		reason = ReasonMediaType
	case status >= 500:
		reason = ReasonInternal
	case status != 0:
		reason = ReasonHTTP
	}
	if status >= 500 {
		// Huma's own 5xx (e.g. a body that could not be read): log the cause,
		// do not send it.
		logFrom(ctx).ErrorContext(ctx, "request failed in the HTTP layer",
			slog.String("route", routeFrom(ctx)), slog.String("correlation_id", correlationID(ctx)),
			slog.String("message", msg), slog.Any("errors", errs))
		errs = nil
	}
	p := newProblem(ctx, status, reason, msg)
	if reason == order.ReasonInvalid {
		p = ruleProblem(ctx, status, reason, msg)
	}
	if status == 0 {
		// The example huma uses to document the error schema.
		p.Title = ""
	}
	for _, err := range errs {
		if err == nil {
			continue
		}
		var d *huma.ErrorDetail
		if dd, ok := err.(huma.ErrorDetailer); ok {
			c := *dd.ErrorDetail()
			d = &c
		} else {
			d = &huma.ErrorDetail{Message: err.Error()}
		}
		if s, ok := d.Value.(string); ok && len(s) > maxEchoedValue {
			d.Value = nil
		}
		p.Errors = append(p.Errors, d)
	}
	if len(p.Errors) == 1 && (p.Detail == "validation failed" || p.Detail == "") {
		// One error: say what it is in the detail, where people look first.
		d := p.Errors[0]
		p.Detail = d.Message
		if d.Location != "" {
			p.Detail = d.Location + ": " + d.Message
		}
	}
	return p
}

// writeProblem sends p outside huma (middleware, unknown routes, panics).
func writeProblem(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	for k, v := range p.headers {
		h[k] = v
	}
	h.Set("Content-Type", ProblemContentType)
	h.Del("Content-Length")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	b, _ := json.Marshal(p)
	_, _ = w.Write(append(b, '\n'))
}
