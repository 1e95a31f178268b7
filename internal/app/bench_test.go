package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/app/apptest"
	"github.com/orderd/orderd/internal/events"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// BenchmarkDrain measures the whole service in-process — the real wiring of
// internal/app on a real broker (kfake) and database, at the default log
// level — draining a backlog of 20,000 OrderCreated events from six
// partitions: consumed, applied, committed. One op is one backlog; ev/s is
// the figure. It exists to be profiled (-cpuprofile); orderbench measures
// the real binary.
func BenchmarkDrain(b *testing.B) {
	const backlog = 20_000
	for _, dialect := range sqlstoretest.Dialects(b) {
		b.Run(dialect, func(b *testing.B) {
			var total time.Duration
			b.ReportAllocs()
			for i := range b.N {
				b.StopTimer()
				broker := apptest.Broker(b, 6)
				cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()), kgo.DefaultProduceTopic("order-events"),
					kgo.ProducerBatchMaxBytes(1<<20))
				if err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, uint64(i)))
				recs := make([]*kgo.Record, backlog)
				for j := range recs {
					k, v := events.SampleOrderCreated(fmt.Sprintf("drain-%d", i), j, rng)
					recs[j] = &kgo.Record{Key: k, Value: v}
				}
				if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					b.Fatal(err)
				}
				cl.Close()
				dbURL := sqlstoretest.URL(b, dialect)
				st := sqlstoretest.OpenURL(b, dbURL)
				for p := range 100 { // the products SampleOrderCreated draws from
					if _, err := st.SetStock(context.Background(), fmt.Sprintf("prod-%03d", p), 1<<40); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				in := apptest.Start(b, apptest.Options{Dialect: dialect, DatabaseURL: dbURL, BrokerAddr: broker.Addr(),
					Env: map[string]string{"LOG_LEVEL": "info"}})
				start := time.Now()
				for in.App.Consumer().Status().Handled < backlog {
					if time.Since(start) > 5*time.Minute {
						b.Fatalf("%d of %d events handled after 5 minutes", in.App.Consumer().Status().Handled, backlog)
					}
					time.Sleep(2 * time.Millisecond)
				}
				total += time.Since(start)
				b.StopTimer()
				in.Stop(b)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N*backlog)/total.Seconds(), "ev/s")
		})
	}
}
