//go:build reliability

package reliability

import (
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// origin identifies an input record, as the DLQ's original_* headers do.
type origin struct {
	partition int32
	offset    int64
}

func (o origin) String() string { return fmt.Sprintf("%s[%d]@%d", inputTopic, o.partition, o.offset) }

// outcome is what the model expects of one input record.
type outcome struct {
	intent    *intent
	applied   bool   // its effect is applied and its id recorded in the inbox
	duplicate bool   // its id is already in the inbox: acknowledged, no effect
	dlqKind   string // dead-lettered with this error_kind
	race      bool   // applied, or dead-lettered as out_of_stock: the race decides
}

type mOrder struct {
	id       string
	status   string
	lines    []line
	total    int64
	reserved bool // its tracked lines hold stock
	race     bool // status decided by the race (new or processing)
	// The amounts ProcessOrder and CancelOrder set, in cents; nil until
	// known, as the database's NULL.
	shipping, discount, final, refund *int64
}

// The business rules' defaults (§3, §4), in cents and as the service
// rounds them: half away from zero, amounts being positive here.
const (
	freeShippingFrom = 10_000 // FREE_SHIPPING_THRESHOLD 100.00
	standardShipping = 599    // STANDARD_SHIPPING 5.99 (the workload never asks for express)
)

// priced sets what ProcessOrder computes: shipping, 10% discount (half
// away from zero, to the cent) and the final total.
func (o *mOrder) priced() {
	shipping := int64(standardShipping)
	if o.total >= freeShippingFrom {
		shipping = 0
	}
	discount := (o.total + 5) / 10 // DISCOUNT_RATE 0.10
	final := o.total + shipping - discount
	o.shipping, o.discount, o.final = &shipping, &discount, &final
}

// refunded sets what CancelOrder refunds: what was charged (the final total
// once processed, else the order total) less a 5% fee.
func (o *mOrder) refunded() {
	charged := o.total
	if o.final != nil {
		charged = *o.final
	}
	fee := (charged + 10) / 20 // CANCELLATION_FEE_RATE 0.05
	refund := charged - fee
	o.refund = &refund
}

type mStock struct{ available, reserved int64 }

// model is the expected state after the log is consumed: the service's
// rules (§2–§6) replayed record by record, each partition in offset order.
type model struct {
	orders   map[string]*mOrder
	stock    map[string]*mStock // tracked products, race products excluded
	inbox    map[string]string  // event id → "" applied, or the refusal's reason
	outcomes map[origin]*outcome
	unknown  []origin // records in the log that the test did not produce
}

// fraudLimit is FRAUD_THRESHOLD (10,000) in cents.
const fraudLimit = 1_000_000

// replay builds the model of w from the records read back from the log.
func replay(w *workload, log []*kgo.Record) *model {
	m := &model{orders: map[string]*mOrder{}, stock: map[string]*mStock{}, inbox: map[string]string{}, outcomes: map[origin]*outcome{}}
	for p, n := range w.initial {
		if !w.race[p] {
			m.stock[p] = &mStock{available: n}
		}
	}
	recs := append([]*kgo.Record(nil), log...)
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition < recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
	for _, r := range recs {
		o := origin{r.Partition, r.Offset}
		in := w.byValue[string(r.Value)]
		if in == nil {
			m.unknown = append(m.unknown, o)
			continue
		}
		m.outcomes[o] = m.apply(in)
	}
	return m
}

func (m *model) apply(in *intent) *outcome {
	out := &outcome{intent: in}
	if in.Name == "" {
		out.dlqKind = in.WantKind
		return out
	}
	if reason, ok := m.inbox[in.EventID]; ok { // refusals are sticky too
		out.duplicate = reason == ""
		out.dlqKind = reason
		return out
	}
	o := m.orders[in.OrderID]
	switch in.Name {
	case "OrderCreated":
		if o == nil {
			o = &mOrder{id: in.OrderID, status: "new", lines: in.Lines, total: in.Total}
			m.orders[in.OrderID] = o
		}
		if in.Race {
			o.race = true
			out.race = true
			return out
		}
		out.dlqKind = m.process(o, in)
	case "OrderCancelled":
		switch {
		case o == nil:
			out.dlqKind = "not_found"
		case o.status == "new" || o.status == "pending" || o.status == "processing":
			if o.reserved {
				for _, l := range o.lines {
					if s := m.stock[l.Product]; s != nil {
						s.available += l.Qty
						s.reserved -= l.Qty
					}
				}
				o.reserved = false
			}
			o.refunded()
			o.status = "cancelled"
		default:
			out.dlqKind = "not_cancellable"
		}
	case "OrderShipped", "OrderDelivered":
		from, to := "processing", "shipped"
		if in.Name == "OrderDelivered" {
			from, to = "shipped", "delivered"
		}
		switch {
		case o == nil:
			out.dlqKind = "not_found"
		case o.status == from:
			o.status = to
		default:
			out.dlqKind = "invalid_transition"
		}
	}
	out.applied = out.dlqKind == ""
	m.inbox[in.EventID] = out.dlqKind

	return out
}

// process is ProcessOrder (§3): the checks in their order, then the
// reservation. It returns the refusal's reason, "" when processed.
func (m *model) process(o *mOrder, in *intent) string {
	if o.status != "new" && o.status != "pending" {
		return "invalid_status"
	}
	if in.Total <= 0 {
		return "invalid_amount"
	}
	if in.Total > fraudLimit {
		return "fraud_review"
	}
	need := map[string]int64{} // all of a product's lines against what is available now
	for _, l := range o.lines {
		need[l.Product] += l.Qty
	}
	for p, n := range need {
		if s := m.stock[p]; s != nil && s.available < n {
			return "out_of_stock"
		}
	}
	if r := strings.ToLower(in.Region); r == "antarctica" || r == "mars colony" {
		return "unsupported_region"
	}
	tracked := false
	for _, l := range o.lines {
		if s := m.stock[l.Product]; s != nil {
			s.available -= l.Qty
			s.reserved += l.Qty
			tracked = true
		}
	}
	o.reserved = tracked
	o.priced()
	o.status = "processing"
	return ""
}
