//go:build reliability

package reliability

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/sqlstore"
)

// readTopic reads every record of topic, from the start to the end offsets
// at the time of the call.
func readTopic(t testing.TB, brokers, topic string) []*kgo.Record {
	t.Helper()
	seeds := strings.Split(brokers, ",")
	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(parts) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(32<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	next := map[int32]int64{}
	for {
		done := true
		for p, end := range want {
			if next[p] < end {
				done = false
			}
		}
		if done {
			return out
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (have %v of %v)", topic, ctx.Err(), next, want)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Logf("reading %s[%d]: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < want[r.Partition] {
				out = append(out, r)
			}
			next[r.Partition] = r.Offset + 1
		})
	}
}

// dbOrder and dbItem are rows read back from the database.
type dbOrder struct {
	status string
	items  []dbItem
	// In cents; nil for NULL.
	total                             int64
	shipping, discount, final, refund *int64
}

type dbItem struct {
	product      string
	qty          int64
	unit, amount int64 // unit_price, total_price
	reserved     bool
}

// nullable is a NULL-able BIGINT column as *int64.
func nullable(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	return &n.Int64
}

// amountsDiffer describes how an order's stored amounts and lines differ
// from the model's ("" when they do not).
func amountsDiffer(mo *mOrder, do *dbOrder) string {
	show := func(p *int64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	var diffs []string
	if do.total != mo.total {
		diffs = append(diffs, fmt.Sprintf("total %d, model %d", do.total, mo.total))
	}
	for _, a := range []struct {
		name    string
		db, mod *int64
	}{{"shipping", do.shipping, mo.shipping}, {"discount", do.discount, mo.discount}, {"final", do.final, mo.final}, {"refund", do.refund, mo.refund}} {
		if show(a.db) != show(a.mod) {
			diffs = append(diffs, fmt.Sprintf("%s %s, model %s", a.name, show(a.db), show(a.mod)))
		}
	}
	if len(do.items) != len(mo.lines) {
		diffs = append(diffs, fmt.Sprintf("%d lines, model %d", len(do.items), len(mo.lines)))
	} else {
		for i, l := range mo.lines {
			if it := do.items[i]; it.product != l.Product || it.qty != l.Qty || it.unit != l.Unit || it.amount != l.Qty*l.Unit {
				diffs = append(diffs, fmt.Sprintf("line %d %s %d × %d = %d, model %s %d × %d", i+1, it.product, it.qty, it.unit, it.amount, l.Product, l.Qty, l.Unit))
			}
		}
	}
	return strings.Join(diffs, "; ")
}

type dbStock struct{ available, reserved int64 }

type dbState struct {
	inbox   map[string]bool   // events recorded as applied
	refused map[string]string // events recorded as refused → reason
	orders  map[string]*dbOrder
	stock   map[string]dbStock
}

// openDB opens the database behind an orderd DATABASE_URL for reading.
func openDB(t testing.TB, dbURL string) *sql.DB {
	t.Helper()
	db, err := sqlstore.OpenSQL(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func readDB(t testing.TB, db *sql.DB) *dbState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := &dbState{inbox: map[string]bool{}, refused: map[string]string{}, orders: map[string]*dbOrder{}, stock: map[string]dbStock{}}
	query := func(q string, scan func(*sql.Rows) error) {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	query(`SELECT event_id, outcome, reason FROM processed_events`, func(r *sql.Rows) error {
		var id, outcome, reason string
		err := r.Scan(&id, &outcome, &reason)
		if outcome == "refused" {
			st.refused[id] = reason
		} else {
			st.inbox[id] = true
		}
		return err
	})
	query(`SELECT id, status, total_amount, shipping_cost, discount, final_total, refund_amount FROM orders`, func(r *sql.Rows) error {
		var id, status string
		var total int64
		var shipping, discount, final, refund sql.NullInt64
		err := r.Scan(&id, &status, &total, &shipping, &discount, &final, &refund)
		st.orders[id] = &dbOrder{status: status, total: total,
			shipping: nullable(shipping), discount: nullable(discount), final: nullable(final), refund: nullable(refund)}
		return err
	})
	query(`SELECT order_id, product_id, quantity, unit_price, total_price, reserved FROM order_items ORDER BY order_id, line_no`, func(r *sql.Rows) error {
		var id string
		var it dbItem
		if err := r.Scan(&id, &it.product, &it.qty, &it.unit, &it.amount, &it.reserved); err != nil {
			return err
		}
		if o := st.orders[id]; o != nil {
			o.items = append(o.items, it)
		}
		return nil
	})
	query(`SELECT product_id, available, reserved FROM stock`, func(r *sql.Rows) error {
		var p string
		var s dbStock
		err := r.Scan(&p, &s.available, &s.reserved)
		st.stock[p] = s
		return err
	})
	return st
}

// verdict is what the checker found.
type verdict struct {
	produced, valid, poison int
	lost, double, mismatch  int
	dlqDistinct, dlqCopies  int
	raceWon, raceLost       int
	dlqKinds                map[string]int // distinct origins by the first copy's error_kind
	problems                []string
}

func (v *verdict) problem(counter *int, format string, args ...any) {
	*counter++
	if len(v.problems) < 40 {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// requiredDLQHeaders are the headers §6 adds to every DLQ record.
var requiredDLQHeaders = []string{"correlation_id", "error_reason", "error_kind", "original_topic", "original_partition",
	"original_offset", "original_timestamp", "attempts", "failed_at"}

// checkScenario reads the input log, the DLQ and the database and compares
// them with the model replayed from the log: the suite's one checker.
func checkScenario(t testing.TB, brokers, dbURL string, w *workload) *verdict {
	t.Helper()
	v := &verdict{}
	log := readTopic(t, brokers, inputTopic)
	dlq := readTopic(t, brokers, dlqTopic)
	db := readDB(t, openDB(t, dbURL))
	v.produced = len(log)

	// 1. Every record the broker acknowledged is in the log, byte for byte.
	byOrigin := map[origin]*kgo.Record{}
	for _, r := range log {
		byOrigin[origin{r.Partition, r.Offset}] = r
	}
	for _, g := range w.records {
		if !g.acked.Load() {
			continue
		}
		o := origin{g.rec.Partition, g.rec.Offset}
		if r := byOrigin[o]; r == nil || !bytes.Equal(r.Value, g.rec.Value) || !bytes.Equal(r.Key, g.rec.Key) {
			v.problem(&v.lost, "acknowledged record %s is missing from the log", o)
		}
	}

	m := replay(w, log)
	for _, o := range m.unknown {
		v.problem(&v.mismatch, "record %s in the log was not produced by the test", o)
	}

	// 2. Every DLQ record: byte-identical copy of its origin with §6's headers.
	dlqBy := map[origin][]*kgo.Record{}
	for _, d := range dlq {
		topic, _ := header(d, "original_topic")
		ps, _ := header(d, "original_partition")
		os, _ := header(d, "original_offset")
		p, err1 := strconv.ParseInt(ps, 10, 32)
		off, err2 := strconv.ParseInt(os, 10, 64)
		if topic != inputTopic || err1 != nil || err2 != nil {
			v.problem(&v.mismatch, "DLQ record %d@%d has no usable origin headers: topic %q partition %q offset %q", d.Partition, d.Offset, topic, ps, os)
			continue
		}
		o := origin{int32(p), off}
		orig := byOrigin[o]
		if orig == nil {
			v.problem(&v.mismatch, "DLQ record names origin %s, which is not in the log", o)
			continue
		}
		dlqBy[o] = append(dlqBy[o], d)
		if !bytes.Equal(d.Key, orig.Key) || !bytes.Equal(d.Value, orig.Value) {
			v.problem(&v.mismatch, "DLQ copy of %s: key or value differs from the original", o)
		}
		if len(d.Headers) < len(orig.Headers) {
			v.problem(&v.mismatch, "DLQ copy of %s lost original headers", o)
		} else {
			for i, h := range orig.Headers {
				if d.Headers[i].Key != h.Key || !bytes.Equal(d.Headers[i].Value, h.Value) {
					v.problem(&v.mismatch, "DLQ copy of %s: header %d is %q=%x, want %q=%x", o, i, d.Headers[i].Key, d.Headers[i].Value, h.Key, h.Value)
				}
			}
		}
		for _, k := range requiredDLQHeaders {
			if val, ok := header(d, k); !ok || val == "" {
				v.problem(&v.mismatch, "DLQ copy of %s lacks header %s", o, k)
			}
		}
		if c, ok := header(orig, "correlation_id"); ok && c != "" {
			if got, _ := header(d, "correlation_id"); got != c {
				v.problem(&v.mismatch, "DLQ copy of %s: correlation_id %q, want the original's %q", o, got, c)
			}
		}
		if out := m.outcomes[o]; out != nil && out.intent.Name != "" {
			if id, _ := header(d, "event_id"); id != out.intent.EventID {
				v.problem(&v.mismatch, "DLQ copy of %s: event_id %q, want %q", o, id, out.intent.EventID)
			}
		}
	}
	v.dlqDistinct, v.dlqCopies = len(dlqBy), len(dlq)
	v.dlqKinds = map[string]int{}
	for _, copies := range dlqBy {
		k, _ := header(copies[0], "error_kind")
		v.dlqKinds[k]++
	}

	// 3. Each record's disposition against the model.
	raceApplied := map[string]bool{}
	for o, out := range m.outcomes {
		in := out.intent
		copies := dlqBy[o]
		if in.Name == "" {
			v.poison++
		} else {
			v.valid++
		}
		kinds := func() string {
			var ks []string
			for _, d := range copies {
				k, _ := header(d, "error_kind")
				ks = append(ks, k)
			}
			return strings.Join(ks, ",")
		}
		switch {
		case out.race:
			if len(copies) > 0 {
				if k := kinds(); k != "out_of_stock" && !strings.HasPrefix(k, "out_of_stock,") {
					v.problem(&v.mismatch, "%s (%s) dead-lettered as %s, want out_of_stock", o, in.EventID, k)
				}
				if db.inbox[in.EventID] {
					v.problem(&v.double, "%s (%s) is dead-lettered and also applied", o, in.EventID)
				}
				// Refused for good: the inbox must say so, or a redelivery
				// would be judged again (defect b2).
				if r, ok := db.refused[in.EventID]; !ok || r != "out_of_stock" {
					v.problem(&v.mismatch, "%s (%s) was refused as out_of_stock, but the inbox records %q (recorded: %v)", o, in.EventID, r, ok)
				}
				v.raceLost++
			} else {
				if !db.inbox[in.EventID] {
					v.problem(&v.lost, "%s (%s, %s) is neither applied nor dead-lettered", o, in.Name, in.EventID)
				}
				raceApplied[in.EventID] = true
				v.raceWon++
			}
		case out.dlqKind != "":
			if len(copies) == 0 {
				v.problem(&v.lost, "%s (%s %s) should be dead-lettered as %s but is not on the DLQ", o, in.Name+in.Poison, in.EventID, out.dlqKind)
				break
			}
			if k := kinds(); !strings.Contains(","+k+",", ","+out.dlqKind+",") {
				v.problem(&v.mismatch, "%s (%s) dead-lettered as %s, want %s", o, in.EventID, k, out.dlqKind)
			}
			if r, ok := db.refused[in.EventID]; in.Name != "" && in.Poison == "" && (!ok || r != out.dlqKind) {
				v.problem(&v.mismatch, "%s (%s) refused as %s, but the inbox records %q (recorded: %v)", o, in.EventID, out.dlqKind, r, ok)
			}
		case out.applied:
			if !db.inbox[in.EventID] {
				v.problem(&v.lost, "%s (%s %s) should be applied but its id is not in the inbox", o, in.Name, in.EventID)
			}
			if len(copies) > 0 {
				v.problem(&v.double, "%s (%s %s) is applied and also dead-lettered as %s", o, in.Name, in.EventID, kinds())
			}
		case out.duplicate:
			if len(copies) > 0 {
				v.problem(&v.mismatch, "%s (%s) is a duplicate of an applied event but was dead-lettered as %s", o, in.EventID, kinds())
			}
		}
	}
	for id := range db.inbox {
		if reason, ok := m.inbox[id]; (!ok || reason != "") && !raceApplied[id] {
			v.problem(&v.double, "event %s is recorded as applied, but the model refuses it", id)
		}
	}

	// 4. Orders and stock against the model: status, amounts and lines.
	for id, mo := range m.orders {
		do := db.orders[id]
		switch {
		case do == nil:
			v.problem(&v.lost, "order %s is missing from the database (model: %s)", id, mo.status)
			continue
		case mo.race:
			want := "new"
			if raceApplied[mo.id+"-created"] {
				want = "processing"
				won := *mo
				won.priced()
				mo = &won
			}
			if do.status != want {
				v.problem(&v.mismatch, "race order %s is %s, want %s by its outcome", id, do.status, want)
			}
		case do.status != mo.status:
			v.problem(&v.mismatch, "order %s is %s, model says %s", id, do.status, mo.status)
		}
		if d := amountsDiffer(mo, do); d != "" {
			v.problem(&v.mismatch, "order %s (%s): %s", id, do.status, d)
		}
	}
	for id := range db.orders {
		if m.orders[id] == nil {
			v.problem(&v.mismatch, "order %s is in the database but the model has none", id)
		}
	}
	for p, ms := range m.stock {
		ds, ok := db.stock[p]
		if !ok || ds.available != ms.available || ds.reserved != ms.reserved {
			v.problem(&v.mismatch, "stock of %s is %+v, model says %+v", p, ds, *ms)
		}
	}

	// 5. Invariants of the database alone.
	reservedBy := map[string]int64{}
	for id, o := range db.orders {
		holds := o.status == "processing" || o.status == "shipped" || o.status == "delivered"
		for _, it := range o.items {
			_, tracked := db.stock[it.product]
			if it.reserved {
				reservedBy[it.product] += it.qty
				if !holds {
					v.problem(&v.mismatch, "order %s is %s but still holds %d of %s", id, o.status, it.qty, it.product)
				}
			} else if holds && tracked && w.initial[it.product] > 0 {
				v.problem(&v.mismatch, "order %s is %s but holds no stock of tracked %s", id, o.status, it.product)
			}
		}
	}
	for p, s := range db.stock {
		if s.available < 0 || s.reserved < 0 {
			v.problem(&v.mismatch, "stock of %s is negative: %+v", p, s)
		}
		if s.reserved != reservedBy[p] {
			v.problem(&v.mismatch, "stock of %s: reserved %d, but reserved order lines hold %d", p, s.reserved, reservedBy[p])
		}
		if init, ok := w.initial[p]; ok && s.available+s.reserved != init {
			v.problem(&v.mismatch, "stock of %s: available %d + reserved %d != initial %d", p, s.available, s.reserved, init)
		}
	}
	// A race order was refused only when too little was left: nothing is
	// ever released in the race, so what is left at the end was left then.
	for o, out := range m.outcomes {
		if !out.race || len(dlqBy[o]) == 0 {
			continue
		}
		l := out.intent.Lines[0]
		if s := db.stock[l.Product]; s.available >= l.Qty {
			v.problem(&v.mismatch, "race order %s was refused for want of %d %s, yet %d are still available", out.intent.OrderID, l.Qty, l.Product, s.available)
		}
	}
	sort.Strings(v.problems)
	return v
}

// finish checks the scenario, fills r's figures and fails t on any loss,
// double effect or mismatch.
func finish(t *testing.T, r *result, brokers, dbURL string, w *workload, ins ...*instance) *verdict {
	t.Helper()
	v := checkScenario(t, brokers, dbURL, w)
	if deliveries, records := deliveriesLogged(ins...); deliveries > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("The instances' logs show %d deliveries of %d distinct records: %d redelivered (after a crash, a failed commit or a rebalance) and acknowledged without a second effect.", deliveries, records, deliveries-records))
	}
	r.Events, r.Valid, r.Poison = v.produced, v.valid, v.poison
	r.Lost, r.Double, r.Mismatch = v.lost, v.double, v.mismatch
	r.DLQ, r.DLQCopies = v.dlqDistinct, v.dlqCopies
	for _, p := range v.problems {
		t.Errorf("%s", p)
	}
	if v.lost+v.double+v.mismatch > len(v.problems) {
		t.Errorf("… and %d more problems", v.lost+v.double+v.mismatch-len(v.problems))
	}
	var kinds []string
	for k, n := range v.dlqKinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	if len(kinds) > 0 {
		r.Notes = append(r.Notes, "DLQ'd by error_kind: "+strings.Join(kinds, ", ")+".")
	}
	if v.produced != len(w.records) {
		r.Notes = append(r.Notes, fmt.Sprintf("the input log holds %d records for %d generated (producer retries after a broker restart)", v.produced, len(w.records)))
	}
	return v
}

// deliveriesLogged counts, in the instances' JSON logs, the records handled
// or dead-lettered (one line each) and the distinct records among them.
func deliveriesLogged(ins ...*instance) (deliveries, records int) {
	seen := map[origin]bool{}
	for _, in := range ins {
		for _, msg := range []string{"record handled", "record sent to the dead-letter topic"} {
			for _, e := range in.logEntries(msg) {
				p, ok1 := e["partition"].(float64)
				o, ok2 := e["offset"].(float64)
				if !ok1 || !ok2 {
					continue
				}
				deliveries++
				seen[origin{int32(p), int64(o)}] = true
			}
		}
	}
	return deliveries, len(seen)
}
