// Package fault classifies errors by what the caller should do about them:
// give up at once (permanent), wait and try again (transient), or try a bounded
// number of times (unclassified). The class is decided where an error is made
// and read where it is routed, so the two never have to agree on strings.
package fault

import "fmt"

// Kind says how an error should be handled by a retrying caller.
type Kind int

const (
	// Unclassified errors are retried a bounded number of times, then given up.
	Unclassified Kind = iota
	// Permanent errors will fail the same way on every attempt.
	Permanent
	// Transient errors come from an outage that is expected to end.
	Transient
)

// String returns the kind's name as it appears in logs and DLQ headers.
func (k Kind) String() string {
	switch k {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	default:
		return "unclassified"
	}
}

type classified struct {
	kind   Kind
	reason string // short machine-readable reason, e.g. "malformed_json"
	err    error
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

// AsPermanent marks err as permanent with a short reason code.
func AsPermanent(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &classified{kind: Permanent, reason: reason, err: err}
}

// AsTransient marks err as transient.
func AsTransient(err error) error {
	if err == nil {
		return nil
	}
	return &classified{kind: Transient, reason: "transient", err: err}
}

// Permanentf builds a permanent error with a reason code and a formatted message.
func Permanentf(reason, format string, args ...any) error {
	return AsPermanent(reason, fmt.Errorf(format, args...))
}

// Classifier is implemented by errors that know their own kind (domain errors).
type Classifier interface {
	FaultKind() Kind
	FaultReason() string
}

// KindOf reports the kind of the outermost classified error in err's chain.
func KindOf(err error) Kind {
	k, _ := Of(err)
	return k
}

// Of reports the kind and reason code of err; unclassified errors have reason "error".
func Of(err error) (Kind, string) {
	for e := err; e != nil; {
		switch c := e.(type) {
		case *classified:
			return c.kind, c.reason
		case Classifier:
			return c.FaultKind(), c.FaultReason()
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			e = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if k, r := Of(inner); k != Unclassified {
					return k, r
				}
			}
			return Unclassified, "error"
		default:
			e = nil
		}
	}
	return Unclassified, "error"
}
