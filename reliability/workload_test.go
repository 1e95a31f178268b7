//go:build reliability

package reliability

import (
	"context"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// line is one item of a generated order; Unit is in cents (USD).
type line struct {
	Product string
	Qty     int64
	Unit    int64
}

// intent is what the test meant a record to be: the model replays the log
// from these, looked up by the record's exact value.
type intent struct {
	Name     string // OrderCreated, OrderCancelled, OrderShipped, OrderDelivered; "" for poison
	EventID  string
	OrderID  string
	Lines    []line
	Total    int64
	Region   string
	Poison   string // malformed, non_utf8, unknown_name, schema_invalid, oversized
	WantKind string // the error_kind a poison record must be dead-lettered with
	Race     bool   // an OrderCreated whose outcome depends on a race for stock
}

// genRecord is a generated record and its intent. After production the
// record's Partition and Offset are where the broker acknowledged it.
type genRecord struct {
	rec    *kgo.Record
	intent *intent
	acked  atomic.Bool
}

// mix describes a generated workload.
type mix struct {
	Events      int     // records to generate
	PoisonRate  float64 // fraction of records that are unprocessable
	Oversized   int     // at most this many of the poison records are over 1 MiB
	DupRate     float64 // fraction of records that re-send an earlier valid record
	Scarce      int64   // initial stock of each partition's scarce product (0: none)
	RuleRejects bool    // a few fraud-sized and unsupported-region orders
}

// workload is a generated stream of records with its intents.
type workload struct {
	run        string
	partitions int32
	rng        *rand.Rand
	mix        mix

	records     []*genRecord
	byValue     map[string]*intent
	initial     map[string]int64 // stock of tracked products, set before producing
	race        map[string]bool  // products raced for: their stock is not modelled
	poisonKinds map[string]int
	valid       int
	poison      int
	oversized   int
	orders      int
	seq         int
}

// partitionOf is the partition of key: every record of an order goes to one
// partition, so the consumer handles them in order, and the model knows where.
func partitionOf(key string, partitions int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int32(h.Sum32() % uint32(partitions))
}

func money(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

func newWorkload(run string, partitions int, seed uint64, m mix) *workload {
	w := &workload{
		run: run, partitions: int32(partitions), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), mix: m,
		byValue: make(map[string]*intent), initial: make(map[string]int64), race: make(map[string]bool),
		poisonKinds: make(map[string]int),
	}
	var active [][]*genRecord
	var recent []*genRecord
	for len(w.records) < m.Events {
		r := w.rng.Float64()
		switch {
		case r < m.PoisonRate:
			w.addPoison()
			continue
		case r < m.PoisonRate+m.DupRate && len(recent) > 0:
			orig := recent[w.rng.IntN(len(recent))]
			w.add(&genRecord{rec: &kgo.Record{Topic: inputTopic, Partition: orig.rec.Partition, Key: orig.rec.Key, Value: orig.rec.Value, Headers: orig.rec.Headers}, intent: orig.intent})
			w.valid++
			continue
		}
		for len(active) < 40 {
			active = append(active, w.newChain())
		}
		i := w.rng.IntN(len(active))
		g := active[i][0]
		active[i] = active[i][1:]
		if len(active[i]) == 0 {
			active = append(active[:i], active[i+1:]...)
		}
		w.add(g)
		w.valid++
		recent = append(recent, g)
		if len(recent) > 200 {
			recent = recent[1:]
		}
	}
	// Ample products never run out: their outcome does not depend on the
	// order in which partitions are handled.
	for _, g := range w.records {
		if g.intent.Name != "OrderCreated" {
			continue
		}
		for _, l := range g.intent.Lines {
			if strings.HasPrefix(l.Product, "ample-") {
				w.initial[l.Product] += l.Qty
			}
		}
	}
	for p, n := range w.initial {
		if strings.HasPrefix(p, "ample-") {
			w.initial[p] = n + 25
		}
	}
	return w
}

func (w *workload) add(g *genRecord) {
	w.records = append(w.records, g)
	w.byValue[string(g.rec.Value)] = g.intent
}

func (w *workload) header(kv ...string) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

func (w *workload) record(key string, in *intent, value string, headers []kgo.RecordHeader) *genRecord {
	return &genRecord{rec: &kgo.Record{Topic: inputTopic, Partition: partitionOf(key, w.partitions), Key: []byte(key), Value: []byte(value), Headers: headers}, intent: in}
}

// createdJSON is an OrderCreated envelope for in.
func createdJSON(in *intent) string {
	var items []string
	for _, l := range in.Lines {
		items = append(items, fmt.Sprintf(`{"productId":%q,"quantity":%d,"unitPrice":%s,"totalPrice":%s}`, l.Product, l.Qty, money(l.Unit), money(l.Qty*l.Unit)))
	}
	region := ""
	if in.Region != "" {
		region = fmt.Sprintf(`,"shippingRegion":%q`, in.Region)
	}
	return fmt.Sprintf(`{"id":%q,"name":"OrderCreated","data":{"orderId":%q,"customerId":"cust-%d","customerName":"Reliability Test","totalAmount":%s,"currency":"USD","status":"CREATED","items":[%s],"createdAt":"2026-01-05T11:34:53.145Z"%s}}`,
		in.EventID, in.OrderID, len(in.OrderID)%97, money(in.Total), strings.Join(items, ","), region)
}

// newOrder builds an order's OrderCreated intent.
func (w *workload) newOrder(lines []line, region string) *intent {
	n := w.orders
	w.orders++
	oid := fmt.Sprintf("%s-o%d", w.run, n)
	in := &intent{Name: "OrderCreated", EventID: oid + "-created", OrderID: oid, Lines: lines, Region: region}
	for _, l := range lines {
		in.Total += l.Qty * l.Unit
	}
	return in
}

// newChain returns an order's events in key order: created, then maybe
// cancelled, or shipped, delivered and maybe a refused late cancellation.
func (w *workload) newChain() []*genRecord {
	rng := w.rng
	n := w.orders
	oid := fmt.Sprintf("%s-o%d", w.run, n)
	part := partitionOf(oid, w.partitions)
	var lines []line
	region := ""
	special := rng.Float64()
	switch {
	case w.mix.RuleRejects && special < 0.01:
		lines = []line{{Product: "free-00", Qty: 1, Unit: 1_000_001}} // 10,000.01: fraud review
	case w.mix.RuleRejects && special < 0.02:
		lines = []line{{Product: "free-01", Qty: 1, Unit: 1999}}
		region = "Mars Colony"
	default:
		for range 1 + rng.IntN(3) {
			l := line{Qty: int64(1 + rng.IntN(3)), Unit: int64(100 + rng.IntN(6000))}
			switch p := rng.Float64(); {
			case w.mix.Scarce > 0 && p < 0.04:
				l.Product = fmt.Sprintf("scarce-p%02d", part)
				w.initial[l.Product] = w.mix.Scarce
			case p < 0.5:
				l.Product = fmt.Sprintf("ample-%d", rng.IntN(8))
			default:
				l.Product = fmt.Sprintf("free-%02d", rng.IntN(20))
			}
			lines = append(lines, l)
		}
	}
	created := w.newOrder(lines, region)
	corr := func(step string) []kgo.RecordHeader {
		if rng.IntN(2) == 0 {
			return nil
		}
		return w.header("correlation_id", "corr-"+oid+"-"+step)
	}
	chain := []*genRecord{w.record(oid, created, createdJSON(created), corr("c"))}
	step := func(name, suffix, extra string) {
		in := &intent{Name: name, EventID: oid + "-" + suffix, OrderID: oid}
		v := fmt.Sprintf(`{"id":%q,"name":%q,"data":{"orderId":%q%s}}`, in.EventID, name, oid, extra)
		chain = append(chain, w.record(oid, in, v, corr(suffix)))
	}
	if region != "" || special < 0.02 && w.mix.RuleRejects {
		return chain // refused orders stay new
	}
	switch r := rng.Float64(); {
	case r < 0.40:
	case r < 0.60:
		step("OrderCancelled", "cancelled", `,"reason":"changed my mind"`)
	case r < 0.75:
		step("OrderShipped", "shipped", fmt.Sprintf(`,"trackingNumber":"TRK%d"`, n))
	case r < 0.95:
		step("OrderShipped", "shipped", fmt.Sprintf(`,"trackingNumber":"TRK%d"`, n))
		step("OrderDelivered", "delivered", "")
	default:
		step("OrderShipped", "shipped", "")
		step("OrderDelivered", "delivered", "")
		step("OrderCancelled", "late-cancel", "") // refused: not_cancellable
	}
	return chain
}

// addPoison adds one unprocessable record of a random kind.
func (w *workload) addPoison() {
	rng := w.rng
	w.seq++
	n := w.seq
	id := fmt.Sprintf("%s-bad%d", w.run, n)
	var key []byte
	if rng.IntN(2) == 0 {
		key = []byte("poison-" + id)
	}
	headers := []kgo.RecordHeader{{Key: "trace", Value: []byte{0x00, 0xff, byte(n)}}, {Key: "empty", Value: nil}}
	if rng.IntN(2) == 0 {
		headers = append(headers, kgo.RecordHeader{Key: "correlation_id", Value: []byte("corr-" + id)})
	}
	in := &intent{EventID: id}
	var value string
	kinds := []string{"malformed", "non_utf8", "unknown_name", "schema_invalid"}
	kind := kinds[rng.IntN(len(kinds))]
	if w.oversized < w.mix.Oversized && rng.IntN(20) == 0 {
		kind = "oversized"
	}
	switch kind {
	case "malformed":
		in.WantKind = "malformed_json"
		value = []string{
			fmt.Sprintf(`{"id":%q,"name":"OrderCreated","data":{"orderId":`, id),
			fmt.Sprintf(`not json at all %d`, n),
			fmt.Sprintf(`{"id" %q "name": "OrderShipped"}`, id),
			fmt.Sprintf(`{"id":%q,"name":"OrderCreated","data":{}}}`, id),
		}[rng.IntN(4)]
	case "non_utf8":
		in.WantKind = "invalid_utf8"
		if rng.IntN(2) == 0 {
			value = fmt.Sprintf("{\"id\":%q,\"name\":\"OrderCreated\",\"data\":{\"orderId\":\"\xff\xfe%d\"}}", id, n)
		} else {
			b := make([]byte, 64)
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			b[0] = 0xc3 // a lead byte followed by
			b[1] = 0x28 // a non-continuation byte: never valid UTF-8
			value = string(b) + id
		}
	case "unknown_name":
		in.WantKind = "unknown_event"
		value = fmt.Sprintf(`{"id":%q,"name":"OrderTeleported","data":{"orderId":%q}}`, id, id)
	case "schema_invalid":
		variants := []struct{ kind, value string }{
			{"invalid_data", fmt.Sprintf(`{"id":%q,"name":"OrderCreated","data":{"orderId":%q,"customerId":"c","totalAmount":99.00,"currency":"USD","items":[{"productId":"free-00","quantity":2,"unitPrice":10.00,"totalPrice":20.00}]}}`, id, id)},
			{"invalid_data", fmt.Sprintf(`{"id":%q,"name":"OrderCreated","data":{"orderId":%q,"customerId":"c","totalAmount":0,"currency":"USD","items":[{"productId":"free-00","quantity":0,"unitPrice":10.00,"totalPrice":0}]}}`, id, id)},
			{"invalid_data", fmt.Sprintf(`{"id":%q,"name":"OrderCreated","data":{"orderId":%q,"customerId":"c","totalAmount":1.00,"currency":"ZZZ","items":[{"productId":"free-00","quantity":1,"unitPrice":1.00,"totalPrice":1.00}]}}`, id, id)},
			{"invalid_data", fmt.Sprintf(`{"id":%q,"name":"OrderShipped","data":{"orderId":42}}`, id)},
			{"invalid_data", fmt.Sprintf(`{"id":%q,"name":"OrderCancelled","data":{"reason":"no order id"}}`, id)},
			{"invalid_envelope", fmt.Sprintf(`{"name":"OrderCreated","data":{"orderId":%q}}`, id)},
			{"invalid_envelope", fmt.Sprintf(`{"id":%q,"name":"OrderCreated","data":[1,2,3]}`, id)},
			{"invalid_envelope", fmt.Sprintf(`{"id":"%s%s","name":"OrderCreated","data":{}}`, id, strings.Repeat("x", 200))},
			{"invalid_envelope", fmt.Sprintf(`[%q]`, id)},
		}
		v := variants[rng.IntN(len(variants))]
		in.WantKind, value = v.kind, v.value
	case "oversized":
		w.oversized++
		in.WantKind = "record_too_large"
		pad := make([]byte, (1<<20)*3/4+1024) // ~1 MiB + 1.3 KiB once base64-encoded: incompressible
		for i := range pad {
			pad[i] = byte(rng.IntN(256))
		}
		value = fmt.Sprintf(`{"id":%q,"name":"OrderCreated","data":{"orderId":%q,"customerName":%q}}`, id, id, base64.StdEncoding.EncodeToString(pad))
	}
	in.Poison = kind
	w.poisonKinds[kind]++
	w.poison++
	part := int32(rng.IntN(int(w.partitions)))
	if key != nil {
		part = partitionOf(string(key), w.partitions)
	}
	w.add(&genRecord{rec: &kgo.Record{Topic: inputTopic, Partition: part, Key: key, Value: []byte(value), Headers: headers}, intent: in})
}

// newRaceWorkload is orders racing for one product with little stock:
// single-line OrderCreated events spread over every partition.
func newRaceWorkload(run string, partitions int, seed uint64, orders int, product string, stock int64) *workload {
	w := &workload{
		run: run, partitions: int32(partitions), rng: rand.New(rand.NewPCG(seed, seed+1)),
		byValue: make(map[string]*intent), initial: map[string]int64{product: stock}, race: map[string]bool{product: true},
		poisonKinds: make(map[string]int),
	}
	for range orders {
		in := w.newOrder([]line{{Product: product, Qty: int64(1 + w.rng.IntN(3)), Unit: 500}}, "")
		in.Race = true
		w.add(w.record(in.OrderID, in, createdJSON(in), nil))
		w.valid++
	}
	return w
}

// describe summarises the workload for the report.
func (w *workload) describe() string {
	var kinds []string
	for _, k := range []string{"malformed", "non_utf8", "unknown_name", "schema_invalid", "oversized"} {
		if n := w.poisonKinds[k]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
		}
	}
	s := fmt.Sprintf("%d orders, %d valid events, %d poison records", w.orders, w.valid, w.poison)
	if len(kinds) > 0 {
		s += " (" + strings.Join(kinds, ", ") + ")"
	}
	return s
}

// producer publishes generated records with franz-go, each to its partition.
type producer struct {
	cl       *kgo.Client
	sent     atomic.Int64
	acked    atomic.Int64
	mu       sync.Mutex
	firstErr error
}

func newProducer(t testing.TB, brokers string) *producer {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(brokers, ",")...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(32<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(20000),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{cl: cl}
}

// produce publishes recs at about rate records per second (0: as fast as
// possible), then waits for every acknowledgement. It stops early when ctx
// is done. It does not fail the test (it may run in a goroutine): Err says
// whether anything failed.
func (p *producer) produce(ctx context.Context, recs []*genRecord, rate int) {
	start := time.Now()
	for i, g := range recs {
		if ctx.Err() != nil {
			break
		}
		if rate > 0 && i%50 == 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
		}
		g := g
		p.sent.Add(1)
		p.cl.Produce(ctx, g.rec, func(_ *kgo.Record, err error) {
			if err != nil {
				p.mu.Lock()
				if p.firstErr == nil {
					p.firstErr = fmt.Errorf("produce to partition %d: %w", g.rec.Partition, err)
				}
				p.mu.Unlock()
				return
			}
			g.acked.Store(true)
			p.acked.Add(1)
		})
	}
	if err := p.cl.Flush(ctx); err != nil {
		p.mu.Lock()
		if p.firstErr == nil {
			p.firstErr = fmt.Errorf("flush: %w", err)
		}
		p.mu.Unlock()
	}
}

// Err returns the first production error.
func (p *producer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}

// background produces recs in a goroutine; the returned function waits for
// it and fails the test on a production error.
func (p *producer) background(t testing.TB, recs []*genRecord, rate int) (wait func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.produce(ctx, recs, rate)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() {
		t.Helper()
		<-done
		if err := p.Err(); err != nil {
			t.Fatalf("producing the workload: %v", err)
		}
	}
}

// waitSent blocks until at least n records were handed to the client.
func (p *producer) waitSent(t testing.TB, n int) {
	t.Helper()
	eventually(t, 5*time.Minute, fmt.Sprintf("%d records produced", n), func() bool { return p.sent.Load() >= int64(n) })
}

// newRand is a deterministic source for fault timing.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }
