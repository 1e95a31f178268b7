// Package events turns Kafka record values into order effects: it decodes and
// checks the envelope (§2), finds the processor registered for the event's
// name and applies its effect in one transaction together with the event id
// in the processed-events inbox, so a redelivered event has no second effect.
package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/create"
)

// Limits on a record (§2).
const (
	MaxRecordBytes = 1 << 20
	MaxIDBytes     = 200
)

// Reason codes of permanent decoding errors; they become the DLQ's error_kind.
const (
	ReasonTooLarge        = "record_too_large"
	ReasonInvalidUTF8     = "invalid_utf8"
	ReasonMalformedJSON   = "malformed_json"
	ReasonInvalidEnvelope = "invalid_envelope"
	ReasonUnknownEvent    = "unknown_event"
)

// Envelope is the seed's event: {"id": "<uuid>", "name": "<EventName>", "data": {...}}.
type Envelope struct {
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Data json.RawMessage `json:"data"`
	// Decoded is what the event's Decoder made of Data, if it has one.
	Decoded any `json:"-"`
}

// Decode checks a record value and returns its envelope. Every failure is a
// permanent error whose reason says which check failed; the envelope then
// still holds what could be read of it — the id and name when they are
// valid strings, the data when it is an object — for the logs and the DLQ
// headers.
func Decode(value []byte) (Envelope, error) {
	if len(value) > MaxRecordBytes {
		return Envelope{}, fault.Permanentf(ReasonTooLarge, "record is %d bytes, at most %d allowed", len(value), MaxRecordBytes)
	}
	if !utf8.Valid(value) {
		return Envelope{}, fault.Permanentf(ReasonInvalidUTF8, "record value is not valid UTF-8")
	}
	var raw rawEnvelope
	if err := jsonv2.Unmarshal(value, &raw); err != nil {
		if name, ok := create.DuplicateName(err); ok {
			// Two readers of it could read two different events. Still
			// named, for the logs and DLQ headers, by what it holds once
			// (read again, keeping the last of each name).
			reason := ReasonInvalidEnvelope
			if strings.HasPrefix(name, "data.") {
				reason = order.ReasonInvalid
			}
			var ev Envelope
			if name != "id" && name != "name" && jsonv2.Unmarshal(value, &raw, jsontext.AllowDuplicateNames(true)) == nil {
				_ = envelopeString("id", raw.ID, &ev.ID)
				_ = envelopeString("name", raw.Name, &ev.Name)
				if len(ev.ID) > MaxIDBytes {
					ev.ID = ""
				}
				if raw.Data.Kind() == '{' && name != "data" {
					ev.Data = json.RawMessage(raw.Data)
				}
			}
			return ev, fault.Permanentf(reason, "%s is given twice", name)
		}
		if len(bytes.TrimSpace(value)) > 0 && json.Valid(value) {
			return Envelope{}, errNotObject
		}
		return Envelope{}, fault.AsPermanent(ReasonMalformedJSON, fmt.Errorf("malformed JSON: %w", err))
	}
	if raw.ID == nil && raw.Name == nil && raw.Data == nil && bytes.Equal(bytes.TrimSpace(value), []byte("null")) {
		// null decodes into a struct without an error, as nothing.
		return Envelope{}, errNotObject
	}
	var ev Envelope
	idErr := envelopeString("id", raw.ID, &ev.ID)
	if idErr == nil && len(ev.ID) > MaxIDBytes {
		idErr = fault.Permanentf(ReasonInvalidEnvelope, "envelope id is %d bytes, at most %d allowed", len(ev.ID), MaxIDBytes)
		ev.ID = ""
	}
	nameErr := envelopeString("name", raw.Name, &ev.Name)
	if raw.Data.Kind() == '{' {
		ev.Data = json.RawMessage(raw.Data)
	}
	switch {
	case idErr != nil:
		return ev, idErr
	case nameErr != nil:
		return ev, nameErr
	case raw.Data == nil:
		return ev, fault.Permanentf(ReasonInvalidEnvelope, "envelope field \"data\" is required")
	case ev.Data == nil:
		return ev, fault.Permanentf(ReasonInvalidEnvelope, "envelope field \"data\" must be an object")
	}
	return ev, nil
}

// errNotObject is Decode's error for a JSON value other than an object.
var errNotObject = fault.Permanentf(ReasonInvalidEnvelope, "envelope must be a JSON object")

// envelopeString reads the envelope field name, raw, into dst: a required,
// non-empty string. dst is left empty when it is not one.
func envelopeString(name string, raw jsontext.Value, dst *string) error {
	if raw == nil {
		return fault.Permanentf(ReasonInvalidEnvelope, "envelope field %q is required", name)
	}
	if err := jsonv2.Unmarshal(raw, dst); err != nil {
		*dst = ""
		return fault.Permanentf(ReasonInvalidEnvelope, "envelope field %q must be a string", name)
	}
	if *dst == "" {
		return fault.Permanentf(ReasonInvalidEnvelope, "envelope field %q must not be empty", name)
	}
	return nil
}

// rawEnvelope is the envelope as Decode reads it: names match exactly, as
// they always did here, and a field absent is nil.
type rawEnvelope struct {
	ID   jsontext.Value `json:"id"`
	Name jsontext.Value `json:"name"`
	Data jsontext.Value `json:"data"`
}

// OrderID returns the order the event's data names, read as the events'
// decoders read it (the name "orderId" in any case, given once), or ""
// when it names none as a string. It is the
// key a producer gives the event, so that one order's events keep their
// order, and what logs and DLQ headers name when the data is refused.
func (e Envelope) OrderID() string {
	var d struct {
		OrderID string `json:"orderId"`
	}
	if jsonv2.Unmarshal(e.Data, &d, dataOptions) != nil {
		return ""
	}
	return d.OrderID
}

// dataOptions decode the data of events other than OrderCreated as
// create's decoder does OrderCreated's (create.DecodeOptions): names in any
// case, as encoding/json matches them, each given once.
var dataOptions = create.DecodeOptions
