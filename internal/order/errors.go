package order

import (
	"errors"

	"github.com/orderd/orderd/internal/fault"
)

// Reasons a business rule rejects a request. They appear in logs, problem
// responses and DLQ headers, so they are stable identifiers.
const (
	ReasonNotFound          = "not_found"
	ReasonInvalidStatus     = "invalid_status"
	ReasonInvalidAmount     = "invalid_amount"
	ReasonFraudReview       = "fraud_review"
	ReasonOutOfStock        = "out_of_stock"
	ReasonUnsupportedRegion = "unsupported_region"
	ReasonNotCancellable    = "not_cancellable"
	ReasonInvalidTransition = "invalid_transition"
	ReasonConflict          = "conflict"
	ReasonStockLimit        = "stock_limit" // available and reserved units together would pass MaxUnits
	ReasonInvalid           = "invalid_data"
)

// ErrNotFound is returned when an order or stock record does not exist.
var ErrNotFound = &RuleError{Reason: ReasonNotFound, Detail: "not found"}

// RuleError is a request the domain refuses; it is permanent: trying again
// gives the same answer.
type RuleError struct {
	Reason string
	Detail string
}

func (e *RuleError) Error() string { return e.Reason + ": " + e.Detail }

// Is makes errors.Is match on the reason, so errors.Is(err, ErrNotFound) holds
// for any not-found error whatever its detail.
func (e *RuleError) Is(target error) bool {
	t, ok := target.(*RuleError)
	return ok && t.Reason == e.Reason
}

// FaultKind marks every rule error as permanent.
func (e *RuleError) FaultKind() fault.Kind { return fault.Permanent }

// FaultReason returns the rule's reason code.
func (e *RuleError) FaultReason() string { return e.Reason }

// Reject builds a RuleError.
func Reject(reason, detail string) error { return &RuleError{Reason: reason, Detail: detail} }

// NotFound builds a not-found error naming what is missing.
func NotFound(what string) error {
	return &RuleError{Reason: ReasonNotFound, Detail: what + " not found"}
}

// ReasonOf returns the rule reason of err, or "" when err is not a rule error.
func ReasonOf(err error) string {
	var re *RuleError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}
