package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/events"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/cancel"
	"github.com/orderd/orderd/internal/order/create"
	"github.com/orderd/orderd/internal/order/fulfil"
	"github.com/orderd/orderd/internal/order/process"
)

// Inputs and outputs of the operations. Huma reads the tags: path, query and
// header parameters with their limits, and Body/RawBody for the request.
//
// A text is at most 1 KiB of UTF-8 (§2, order.MaxTextBytes). JSON Schema's
// maxLength counts characters, so the tags' maxLength:"1024" is only an
// upper bound; the Resolve methods count the bytes of parameters, the use
// cases those of the bodies' texts.

type orderPath struct {
	ID string `path:"id" minLength:"1" maxLength:"1024" doc:"Order id; at most 1,024 bytes of UTF-8"`
}

// Resolve refuses an id of more than order.MaxTextBytes bytes.
func (p *orderPath) Resolve(huma.Context) []error { return checkTextBytes("path.id", p.ID) }

type productPath struct {
	ProductID string `path:"productId" minLength:"1" maxLength:"1024" doc:"Product id; at most 1,024 bytes of UTF-8"`
}

// Resolve refuses a product id of more than order.MaxTextBytes bytes.
func (p *productPath) Resolve(huma.Context) []error {
	return checkTextBytes("path.productId", p.ProductID)
}

type listInput struct {
	Status string `query:"status" enum:"new,pending,processing,shipped,delivered,cancelled" doc:"Only orders in this status"`
	Limit  int    `query:"limit" default:"50" minimum:"1" maximum:"500" doc:"Page size"`
	Cursor string `query:"cursor" maxLength:"1024" doc:"next_cursor of the previous page; at most 1,024 bytes of UTF-8"`
}

// Resolve refuses a cursor of more than order.MaxTextBytes bytes.
func (in *listInput) Resolve(huma.Context) []error { return checkTextBytes("query.cursor", in.Cursor) }

// checkTextBytes is the error of a parameter over order.MaxTextBytes bytes
// (none when it is within them).
func checkTextBytes(location, v string) []error {
	if len(v) <= order.MaxTextBytes {
		return nil
	}
	return []error{&huma.ErrorDetail{Location: location,
		Message: fmt.Sprintf("is %d bytes, at most %d allowed", len(v), order.MaxTextBytes)}}
}

type rawInput struct {
	RawBody []byte
}

type cancelInput struct {
	ID   string `path:"id" minLength:"1" maxLength:"1024" doc:"Order id; at most 1,024 bytes of UTF-8"`
	Body *struct {
		Reason string `json:"reason,omitempty" maxLength:"1024" doc:"Why, at most 1,024 bytes of UTF-8; default \"Customer request\""`
	}
}

type shipInput struct {
	ID   string `path:"id" minLength:"1" maxLength:"1024" doc:"Order id; at most 1,024 bytes of UTF-8"`
	Body *struct {
		TrackingNumber string `json:"tracking_number,omitempty" maxLength:"1024" doc:"The carrier's tracking number, at most 1,024 bytes of UTF-8"`
	}
}

type setStockInput struct {
	ProductID string `path:"productId" minLength:"1" maxLength:"1024" doc:"Product id; at most 1,024 bytes of UTF-8"`
	Body      struct {
		Available int64 `json:"available" minimum:"0" maximum:"1000000000000000" doc:"Units available for new orders; with those reserved by orders, at most 10^15"`
	}
}

// Resolve refuses an id of more than order.MaxTextBytes bytes.
func (in *cancelInput) Resolve(huma.Context) []error { return checkTextBytes("path.id", in.ID) }

// Resolve refuses an id of more than order.MaxTextBytes bytes.
func (in *shipInput) Resolve(huma.Context) []error { return checkTextBytes("path.id", in.ID) }

// Resolve refuses a product id of more than order.MaxTextBytes bytes.
func (in *setStockInput) Resolve(huma.Context) []error {
	return checkTextBytes("path.productId", in.ProductID)
}

type bodyOutput[T any] struct {
	Body T
}

type statusOutput[T any] struct {
	Status int
	Body   T
}

type createdOutput struct {
	Status   int
	Location string `header:"Location" doc:"The order's URL"`
	Body     Order
}

func liveness(context.Context, *struct{}) (*bodyOutput[Health], error) {
	return &bodyOutput[Health]{Body: Health{Status: "ok"}}, nil
}

func readiness(ready func(context.Context) Readiness) func(context.Context, *struct{}) (*statusOutput[ReadyReport], error) {
	return func(ctx context.Context, _ *struct{}) (*statusOutput[ReadyReport], error) {
		r := Readiness{Ready: true}
		if ready != nil {
			r = ready(ctx)
		}
		out := &statusOutput[ReadyReport]{Status: http.StatusOK, Body: ReadyReport{Status: "ready", Ready: r.Ready, Components: r.Components}}
		if out.Body.Components == nil {
			out.Body.Components = map[string]Component{}
		}
		if !r.Ready {
			out.Status, out.Body.Status = http.StatusServiceUnavailable, "not_ready"
		}
		return out, nil
	}
}

func listOrders(d Deps) func(context.Context, *listInput) (*bodyOutput[OrderList], error) {
	return func(ctx context.Context, in *listInput) (*bodyOutput[OrderList], error) {
		orders, next, err := d.Orders.ListOrders(ctx, order.Status(in.Status), in.Limit, in.Cursor)
		if err != nil {
			return nil, fail(ctx, err)
		}
		out := OrderList{Orders: make([]Order, len(orders)), NextCursor: stringPtr(next)}
		for i, o := range orders {
			out.Orders[i] = newOrder(o)
		}
		return &bodyOutput[OrderList]{Body: out}, nil
	}
}

func createOrder(d Deps) func(context.Context, *rawInput) (*createdOutput, error) {
	return func(ctx context.Context, in *rawInput) (*createdOutput, error) {
		if err := checkJSONObject(in.RawBody); err != nil {
			return nil, fail(ctx, err)
		}
		input, err := create.Decode(in.RawBody, d.now())
		if err != nil {
			return nil, fail(ctx, err)
		}
		delivery.MetaFrom(ctx).OrderID = input.Order.ID
		var out create.Output
		err = d.Tx.InTx(ctx, func(tx order.Tx) error {
			var err error
			out, err = create.Run(ctx, tx, input)
			return err
		})
		if err != nil {
			return nil, fail(ctx, err)
		}
		status := http.StatusOK
		if out.Created {
			status = http.StatusCreated
		}
		return &createdOutput{Status: status, Location: orderURL(ctx, out.Order.ID), Body: newOrder(out.Order)}, nil
	}
}

// orderURL is the path of an order, next to the route that created it.
func orderURL(ctx context.Context, id string) string {
	route := routeFrom(ctx) // e.g. "POST /api/v0/orders"
	if _, path, ok := strings.Cut(route, " "); ok {
		return path + "/" + url.PathEscape(id)
	}
	return ""
}

func getOrder(d Deps) func(context.Context, *orderPath) (*bodyOutput[Order], error) {
	return func(ctx context.Context, in *orderPath) (*bodyOutput[Order], error) {
		o, err := d.Orders.GetOrder(ctx, in.ID)
		if err != nil {
			return nil, fail(ctx, err)
		}
		return &bodyOutput[Order]{Body: newOrder(o)}, nil
	}
}

// inTx runs one use case in one transaction and returns its output.
func inTx[O any](ctx context.Context, d Deps, orderID string, run func(tx order.Tx) (O, error)) (O, error) {
	delivery.MetaFrom(ctx).OrderID = orderID
	var out O
	err := d.Tx.InTx(ctx, func(tx order.Tx) error {
		var err error
		out, err = run(tx)
		return err
	})
	if err != nil {
		var zero O
		return zero, fail(ctx, err)
	}
	return out, nil
}

func processOrder(d Deps) func(context.Context, *orderPath) (*bodyOutput[ProcessResult], error) {
	return func(ctx context.Context, in *orderPath) (*bodyOutput[ProcessResult], error) {
		out, err := inTx(ctx, d, in.ID, func(tx order.Tx) (process.Output, error) {
			return d.Process.Run(ctx, tx, process.Input{OrderID: in.ID})
		})
		if err != nil {
			return nil, err
		}
		return &bodyOutput[ProcessResult]{Body: newProcessResult(out)}, nil
	}
}

func cancelOrder(d Deps) func(context.Context, *cancelInput) (*bodyOutput[CancelResult], error) {
	return func(ctx context.Context, in *cancelInput) (*bodyOutput[CancelResult], error) {
		ci := cancel.Input{OrderID: in.ID}
		if in.Body != nil {
			ci.Reason = in.Body.Reason
		}
		out, err := inTx(ctx, d, in.ID, func(tx order.Tx) (cancel.Output, error) { return d.Cancel.Run(ctx, tx, ci) })
		if err != nil {
			return nil, err
		}
		return &bodyOutput[CancelResult]{Body: newCancelResult(out)}, nil
	}
}

func shipOrder(d Deps) func(context.Context, *shipInput) (*bodyOutput[FulfilResult], error) {
	return func(ctx context.Context, in *shipInput) (*bodyOutput[FulfilResult], error) {
		fi := fulfil.Input{OrderID: in.ID, To: order.StatusShipped}
		if in.Body != nil {
			fi.TrackingNumber = in.Body.TrackingNumber
		}
		out, err := inTx(ctx, d, in.ID, func(tx order.Tx) (fulfil.Output, error) { return d.Fulfil.Run(ctx, tx, fi) })
		if err != nil {
			return nil, err
		}
		return &bodyOutput[FulfilResult]{Body: newFulfilResult(out)}, nil
	}
}

func deliverOrder(d Deps) func(context.Context, *orderPath) (*bodyOutput[FulfilResult], error) {
	return func(ctx context.Context, in *orderPath) (*bodyOutput[FulfilResult], error) {
		fi := fulfil.Input{OrderID: in.ID, To: order.StatusDelivered}
		out, err := inTx(ctx, d, in.ID, func(tx order.Tx) (fulfil.Output, error) { return d.Fulfil.Run(ctx, tx, fi) })
		if err != nil {
			return nil, err
		}
		return &bodyOutput[FulfilResult]{Body: newFulfilResult(out)}, nil
	}
}

func getStock(d Deps) func(context.Context, *productPath) (*bodyOutput[Stock], error) {
	return func(ctx context.Context, in *productPath) (*bodyOutput[Stock], error) {
		st, err := d.Orders.GetStock(ctx, in.ProductID)
		if err != nil {
			return nil, fail(ctx, err)
		}
		return &bodyOutput[Stock]{Body: newStock(st)}, nil
	}
}

func setStock(d Deps) func(context.Context, *setStockInput) (*bodyOutput[Stock], error) {
	return func(ctx context.Context, in *setStockInput) (*bodyOutput[Stock], error) {
		st, err := d.Orders.SetStock(ctx, in.ProductID, in.Body.Available)
		if err != nil {
			return nil, fail(ctx, err)
		}
		return &bodyOutput[Stock]{Body: newStock(st)}, nil
	}
}

func brokerMissing(ctx context.Context) error {
	return newProblem(ctx, http.StatusServiceUnavailable, ReasonUnavailable, "the message broker is not available in this process")
}

func startConsumer(d Deps) func(context.Context, *struct{}) (*bodyOutput[ConsumerStatus], error) {
	return func(ctx context.Context, _ *struct{}) (*bodyOutput[ConsumerStatus], error) {
		if d.Broker == nil {
			return nil, brokerMissing(ctx)
		}
		st, err := d.Broker.Start(ctx)
		if err != nil {
			return nil, fail(ctx, err)
		}
		return &bodyOutput[ConsumerStatus]{Body: normalStatus(st)}, nil
	}
}

func stopConsumer(d Deps) func(context.Context, *struct{}) (*bodyOutput[ConsumerStatus], error) {
	return func(ctx context.Context, _ *struct{}) (*bodyOutput[ConsumerStatus], error) {
		if d.Broker == nil {
			return nil, brokerMissing(ctx)
		}
		st, err := d.Broker.Stop(ctx)
		if err != nil {
			return nil, fail(ctx, err)
		}
		return &bodyOutput[ConsumerStatus]{Body: normalStatus(st)}, nil
	}
}

func consumerStatus(d Deps) func(context.Context, *struct{}) (*bodyOutput[ConsumerStatus], error) {
	return func(ctx context.Context, _ *struct{}) (*bodyOutput[ConsumerStatus], error) {
		if d.Broker == nil {
			return nil, brokerMissing(ctx)
		}
		return &bodyOutput[ConsumerStatus]{Body: normalStatus(d.Broker.Status(ctx))}, nil
	}
}

// normalStatus makes empty lists [] rather than null, as documented.
func normalStatus(st ConsumerStatus) ConsumerStatus {
	if st.Topics == nil {
		st.Topics = []string{}
	}
	if st.Partitions == nil {
		st.Partitions = []int32{}
	}
	return st
}

// maxEventIDBytes is the envelope id limit (§2).
const maxEventIDBytes = 200

func publishEvent(d Deps, topic string, names []string) func(context.Context, *rawInput) (*statusOutput[Published], error) {
	return func(ctx context.Context, in *rawInput) (*statusOutput[Published], error) {
		key, err := checkEnvelope(in.RawBody, names)
		if err != nil {
			return nil, fail(ctx, err)
		}
		if d.Events == nil {
			return nil, newProblem(ctx, http.StatusServiceUnavailable, ReasonUnavailable, "event publishing is not available in this process")
		}
		headers := map[string]string{"correlation_id": correlationID(ctx)}
		partition, offset, err := d.Events.Publish(ctx, key, in.RawBody, headers)
		if err != nil {
			return nil, fail(ctx, err)
		}
		return &statusOutput[Published]{Status: http.StatusAccepted, Body: Published{Topic: topic, Partition: partition, Offset: offset}}, nil
	}
}

// invalidBody is the 400 for a body that is not what the route takes.
func invalidBody(format string, args ...any) error {
	return order.Reject(order.ReasonInvalid, fmt.Sprintf(format, args...))
}

// checkJSONObject refuses a body that is not exactly one JSON object.
func checkJSONObject(raw []byte) error {
	if !json.Valid(raw) {
		return invalidBody("body is not valid JSON")
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return invalidBody("body must be a JSON object")
	}
	return nil
}

// checkEnvelope checks the shape of an event envelope — an object with a
// non-empty string id of at most 200 bytes, a name among names (any
// non-empty string when names is empty) and an object data — and returns the
// record key: the order data names, as events.Envelope.OrderID reads it (nil
// without one). The data itself is the consumer's to judge.
func checkEnvelope(raw []byte, names []string) ([]byte, error) {
	if err := checkJSONObject(raw); err != nil {
		return nil, err
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, invalidBody("envelope: %v", err)
	}
	var id, name string
	if err := json.Unmarshal(env["id"], &id); err != nil || env["id"] == nil || strings.TrimSpace(id) == "" {
		return nil, invalidBody("envelope: id must be a non-empty string")
	}
	if len(id) > maxEventIDBytes {
		return nil, invalidBody("envelope: id is %d bytes, at most %d allowed", len(id), maxEventIDBytes)
	}
	if err := json.Unmarshal(env["name"], &name); err != nil || env["name"] == nil || strings.TrimSpace(name) == "" {
		return nil, invalidBody("envelope: name must be a non-empty string")
	}
	if len(names) > 0 && !slices.Contains(names, name) {
		// The consumer would only dead-letter it.
		return nil, invalidBody("envelope: name %q is not a registered event (%s)", name, strings.Join(names, ", "))
	}
	// The envelope parsed, so data is valid JSON: an object if it opens as one.
	if t := bytes.TrimSpace(env["data"]); len(t) == 0 || t[0] != '{' {
		return nil, invalidBody("envelope: data must be an object")
	}
	// The order the consumer will act on, read as it reads it.
	if orderID := (events.Envelope{Data: env["data"]}).OrderID(); orderID != "" {
		return []byte(orderID), nil
	}
	return nil, nil
}
