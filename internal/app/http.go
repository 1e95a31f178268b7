package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/orderd/orderd/internal/breaker"
	"github.com/orderd/orderd/internal/events"
	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/httpapi"
	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/sqlstore"
)

// httpHandler builds the HTTP API on the app's store, use cases, consumer and
// producer, with its requests counted in the metrics.
func (a *App) httpHandler(uc events.UseCases, version string) http.Handler {
	cfg := a.cfg
	srv := httpapi.NewServer(httpapi.Options{
		AppName:         cfg.AppName,
		Version:         version,
		APIPrefix:       cfg.APIV1Str,
		OpenAPIURL:      cfg.OpenAPIURL,
		Production:      cfg.ProductionEnv,
		CORS:            cfg.MiddlewareCORS,
		CORSOrigins:     cfg.CORSOrigins,
		CORSMethods:     cfg.CORSMethods,
		CORSHeaders:     cfg.CORSHeaders,
		CORSCredentials: cfg.CORSCredentials,
		GZip:            cfg.MiddlewareGZip,
		TrustedHost:     cfg.MiddlewareTrustedHost,
		AllowedHosts:    cfg.AllowedHosts,
		HTTPSRedirect:   cfg.MiddlewareHTTPSRedirect,
		AdminToken:      cfg.AdminToken,
		EventsTopic:     cfg.KafkaTopics[0],
		EventNames:      a.eventNames,
	}, httpapi.Deps{
		Tx:      readyStore{a},
		Orders:  readyStore{a},
		Process: uc.Process,
		Cancel:  uc.Cancel,
		Fulfil:  uc.Fulfil,
		Broker:  brokerControl{a.consumer},
		Events:  publisher{a.producer, cfg.KafkaTopics[0]},
		Ready:   a.readiness,
		Metrics: a.metrics.Handler(),
		Logger:  a.logger,
	})
	return a.instrumentHTTP(srv, srv.Patterns())
}

// readyStore is the store as the HTTP routes use it: until the database is
// ready (see waitForDatabase), every call fails as transient, a 503.
type readyStore struct{ a *App }

func (r readyStore) ready() error {
	if wait := r.a.databaseWait(); wait != "" {
		return fault.AsTransient(errors.New("database " + wait))
	}
	return nil
}

func (r readyStore) InTx(ctx context.Context, fn func(tx order.Tx) error) error {
	if err := r.ready(); err != nil {
		return err
	}
	return r.a.store.InTx(ctx, fn)
}

func (r readyStore) GetOrder(ctx context.Context, id string) (*order.Order, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	return r.a.store.GetOrder(ctx, id)
}

func (r readyStore) GetStock(ctx context.Context, productID string) (order.Stock, error) {
	if err := r.ready(); err != nil {
		return order.Stock{}, err
	}
	return r.a.store.GetStock(ctx, productID)
}

func (r readyStore) SetStock(ctx context.Context, productID string, available int64) (order.Stock, error) {
	if err := r.ready(); err != nil {
		return order.Stock{}, err
	}
	return r.a.store.SetStock(ctx, productID, available)
}

func (r readyStore) ListOrders(ctx context.Context, status order.Status, limit int, after string) ([]*order.Order, string, error) {
	if err := r.ready(); err != nil {
		return nil, "", err
	}
	return r.a.store.ListOrders(ctx, sqlstore.ListQuery{Status: status, Limit: limit, After: after})
}

// brokerControl adapts the consumer to the message-broker routes.
type brokerControl struct{ c *kafka.Consumer }

func (b brokerControl) Start(ctx context.Context) (httpapi.ConsumerStatus, error) {
	b.c.Start()
	return b.Status(ctx), nil
}

func (b brokerControl) Stop(ctx context.Context) (httpapi.ConsumerStatus, error) {
	done := make(chan struct{})
	go func() { b.c.Stop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// Stop goes on in the background; report where it stands.
	}
	return b.Status(ctx), nil
}

func (b brokerControl) Status(context.Context) httpapi.ConsumerStatus {
	st := b.c.Status()
	out := httpapi.ConsumerStatus{
		State:       string(st.State),
		GroupID:     st.GroupID,
		Topics:      st.Topics,
		Partitions:  []int32{},
		Handled:     st.Handled,
		DLQd:        st.DeadLettered,
		LastError:   st.LastError,
		LastErrorAt: st.LastErrorAt,
	}
	for _, ps := range st.Assigned {
		out.Partitions = append(out.Partitions, ps...)
	}
	slices.Sort(out.Partitions)
	return out
}

// publisher sends POST /events envelopes to the first input topic.
type publisher struct {
	p     *kafka.Producer
	topic string
}

func (p publisher) Publish(ctx context.Context, key, value []byte, headers map[string]string) (int32, int64, error) {
	return p.p.Publish(ctx, p.topic, key, value, headers)
}

// partitions is "partition" or "partitions", as n needs.
func partitions(n int) string {
	if n == 1 {
		return "partition"
	}
	return "partitions"
}

// readiness reports each component: the database (ping), Kafka (metadata
// ping), the consumer's state and the circuit breakers. A consumer stopped
// on purpose is reported as not required, so it does not make the service
// unready; nor does a half-open breaker (it is probing); an open one does,
// and so does a partition waiting in backoff after a transient error (the
// consumer is "retrying") or on a failing dead-letter write ("dlq_failing").
func (a *App) readiness(ctx context.Context) httpapi.Readiness {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r := httpapi.Readiness{Ready: true, Components: map[string]httpapi.Component{}}
	set := func(name string, c httpapi.Component) {
		r.Components[name] = c
		switch c.Status {
		case "ok", breaker.HalfOpen.String():
		default:
			if c.Required {
				r.Ready = false
			}
		}
	}
	// Both pings at once, so a slow one does not eat the other's time.
	var dbErr, kafkaErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		if wait := a.databaseWait(); wait != "" {
			dbErr = errors.New(wait)
			return
		}
		dbErr = a.store.Ping(ctx)
	})
	wg.Go(func() { kafkaErr = a.producer.Ping(ctx) })
	wg.Wait()
	if dbErr != nil {
		set("database", httpapi.Component{Status: "down", Detail: dbErr.Error(), Required: true})
	} else {
		set("database", httpapi.Component{Status: "ok", Detail: a.store.Dialect(), Required: true})
	}
	if kafkaErr != nil {
		set("kafka", httpapi.Component{Status: "down", Detail: kafkaErr.Error(), Required: true})
	} else {
		set("kafka", httpapi.Component{Status: "ok", Required: true})
	}
	// The consumer's state is its detail (running, stopped, connecting), with
	// its last error and when it was: one of an hour ago, such as a routine
	// dead-lettering, must not read as the present.
	st := a.consumer.Status()
	c := httpapi.Component{Status: string(st.State), Detail: string(st.State), Required: true}
	switch st.State {
	case kafka.StateRunning:
		c.Status = "ok"
		switch {
		case st.DLQBlocked > 0:
			// A record cannot be dead-lettered: its partition is stuck
			// until the DLQ topic takes it (KAFKA_DLQ_TOPIC).
			c.Status = "dlq_failing"
			c.Detail = fmt.Sprintf("dead-letter writes to %s failing: %d %s blocked", st.DLQTopic, st.DLQBlocked, partitions(st.DLQBlocked))
		case st.Retrying > 0:
			// Partitions wait for a dependency: running, but not keeping up.
			c.Status = "retrying"
			c.Detail = fmt.Sprintf("retrying: %d %s waiting after a transient error", st.Retrying, partitions(st.Retrying))
		}
	case kafka.StateStopped:
		// Stopped on purpose (POST …/stop_consuming_message): the
		// instance still serves, so the consumer is not required now.
		c.Required = false
		c.Detail = "stopped on purpose; POST " + a.cfg.APIV1Str + "/message_broker/start_consuming_message resumes it"
	}
	if st.LastError != "" && st.LastErrorAt != nil {
		c.Detail += "; last error " + time.Since(*st.LastErrorAt).Round(time.Second).String() + " ago: " + st.LastError
	}
	set("consumer", c)
	for _, b := range a.breakers() {
		set("circuit_breaker_"+b.Name(), breakerComponent(b))
	}
	return r
}
