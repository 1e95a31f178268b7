//go:build reliability

package reliability

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCheckerDetectsTampering runs a small clean scenario, then damages its
// outcome in each way the checker must notice — an applied event's inbox
// row deleted, stock changed behind the service's back, an order's status
// changed, an applied record also put on the DLQ — and requires the checker
// to count each.
func TestCheckerDetectsTampering(t *testing.T) {
	const partitions = 3
	w := newWorkload("t", partitions, 9, mix{Events: 400, PoisonRate: 0.10, DupRate: 0.03, Scarce: 4, RuleRejects: true})
	b := startBroker(t, partitions)
	dbURL := sqliteURL(t)
	in := startInstance(t, "serve-1", b.addr, dbURL, nil)
	setStock(t, in, w)
	produceAll(t, newProducer(t, b.addr), w)
	waitQuiescent(t, b.addr, time.Minute, in)
	in.Term()
	if v := checkScenario(t, b.addr, dbURL, w); v.lost+v.double+v.mismatch != 0 {
		t.Fatalf("the untampered scenario already has problems: %v", v.problems)
	}

	// An applied OrderCreated: the first one under the fraud limit with no
	// refused region (the first order has all the stock it needs).
	var applied *genRecord
	for _, g := range w.records {
		if g.intent.Name == "OrderCreated" && g.intent.Total <= fraudLimit && g.intent.Region == "" {
			applied = g
			break
		}
	}
	db := openDB(t, dbURL)
	ctx := context.Background()
	exec := func(t *testing.T, q string, args ...any) {
		t.Helper()
		res, err := db.ExecContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("%s affected %d rows", q, n)
		}
	}
	cases := []struct {
		name    string
		tamper  func(t *testing.T)
		count   func(*verdict) int
		mention string // a problem must say this ("" for any)
	}{
		{"inbox row deleted", func(t *testing.T) {
			// On SQLite the entry of the event that created an order is
			// in the order's row (migration 8), the others in the table
			// inbox; processed_events is a view of both.
			res, err := db.ExecContext(ctx, `UPDATE orders SET inbox_event_id = NULL, inbox_event_name = NULL, inbox_processed_at = NULL
				WHERE id = $1 AND inbox_event_id = $2`, applied.intent.OrderID, applied.intent.EventID)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				exec(t, `DELETE FROM inbox WHERE event_id = $1`, applied.intent.EventID)
			}
		}, func(v *verdict) int { return v.lost }, ""},
		{"stock changed", func(t *testing.T) {
			exec(t, `UPDATE stock SET available = available + 1 WHERE product_id = 'ample-0'`)
		}, func(v *verdict) int { return v.mismatch }, ""},
		{"order status changed", func(t *testing.T) {
			exec(t, `UPDATE orders SET status = CASE WHEN status = 'cancelled' THEN 'new' ELSE 'cancelled' END WHERE id = $1`, applied.intent.OrderID)
		}, func(v *verdict) int { return v.mismatch }, ""},
		{"applied record dead-lettered too", func(t *testing.T) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DefaultProduceTopic(dlqTopic))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			rec := &kgo.Record{Key: applied.rec.Key, Value: applied.rec.Value, Headers: append(append([]kgo.RecordHeader{}, applied.rec.Headers...),
				w.header("correlation_id", "x", "error_reason", "tampered", "error_kind", "tampered", "original_topic", inputTopic,
					"original_partition", strconv.Itoa(int(applied.rec.Partition)), "original_offset", strconv.FormatInt(applied.rec.Offset, 10),
					"original_timestamp", "x", "attempts", "1", "failed_at", "x")...)}
			if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}, func(v *verdict) int { return v.double }, ""},
		// The damage below leaves every status and stock count as it was.
		{"final total changed", func(t *testing.T) {
			exec(t, `UPDATE orders SET final_total = final_total + 1 WHERE id = $1`, applied.intent.OrderID)
		}, func(v *verdict) int { return v.mismatch }, "final "},
		{"a line's unit price changed", func(t *testing.T) {
			// On SQLite the items are a JSON array in their order's row
			// (migration 7); order_items is a view of it.
			exec(t, `UPDATE orders SET items = json_set(items, '$[0].unit_price', json_extract(items, '$[0].unit_price') + 1)
				WHERE id = $1`, applied.intent.OrderID)
		}, func(v *verdict) int { return v.mismatch }, "line 1 "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.tamper(t)
			v := checkScenario(t, b.addr, dbURL, w)
			mentioned := c.mention == "" || slices.ContainsFunc(v.problems, func(p string) bool {
				return strings.Contains(p, applied.intent.OrderID) && strings.Contains(p, c.mention)
			})
			if c.count(v) == 0 || !mentioned {
				t.Errorf("the checker did not notice: %+v", v)
			} else {
				t.Logf("noticed: %v", v.problems)
			}
		})
	}
}
