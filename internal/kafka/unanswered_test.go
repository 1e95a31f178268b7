package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/internal/kafka/kafkatest"
)

// dropProduces makes kc take every produce request and close the
// connection without an answer, as a broker does that dies with requests
// in flight.
func dropProduces(kc *kafkatest.Cluster) {
	kc.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		return nil, errors.New("broker gone"), true
	})
}

// TestPublishEndsWhenTheBrokerNeverAnswers: a record whose produce request
// a broker took and never answered fails when its context ends; it does
// not hold POST /events or orderd produce for ever (franz-go's idempotent
// producer otherwise waits for the answer whatever the context says).
func TestPublishEndsWhenTheBrokerNeverAnswers(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctTopic})
	p := prodNew(t, kc.Addrs())
	dropProduces(kc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := p.Publish(ctx, ctTopic, []byte("k"), []byte("v"), nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Publish succeeded though no produce was answered")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Publish still blocked a minute after its context ended")
	}
}

// TestDLQPublishEndsWhenTheBrokerNeverAnswers: the same for a dead-letter
// write, which gives up between attempts when its partition is released:
// an attempt must end (by its delivery timeout) for that to be seen.
func TestDLQPublishEndsWhenTheBrokerNeverAnswers(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctDLQ})
	d := dlqFor(t, kc)
	dropProduces(kc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- d.Publish(ctx, &kgo.Record{Topic: ctTopic, Value: []byte("v")}, nil, errors.New("bad"), "bad", 1)
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Publish = %v, want it abandoned when its context ended", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("DLQ Publish still blocked a minute after its context ended")
	}
}
