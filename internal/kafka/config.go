// Package kafka adapts franz-go to the service: the consumer group with
// at-least-once commits and error routing, the dead-letter publisher, the
// producer, the embedded kfake broker and the client security options.
package kafka

import "time"

// Config is what the kafka package needs from the service configuration.
type Config struct {
	Brokers         []string // host:port of the seed brokers
	Topics          []string // topics consumed
	GroupID         string
	DLQTopic        string
	AutoOffsetReset string // "earliest" or "latest"

	SecurityProtocol string // PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
	SASLMechanism    string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	SASLUsername     string
	SASLPassword     string
	TLSCAFile        string

	MaxAttempts     int           // tries for unclassified errors before the DLQ
	ShutdownTimeout time.Duration // how long in-flight records may take at shutdown
	RetryInitial    time.Duration // first backoff between attempts (default 100ms)
	RetryMax        time.Duration // backoff ceiling (default 30s)
	// RetryingAfter is how long a partition waits in backoff on a transient
	// error before Status counts it as retrying (default RetryingAfter). A
	// field, not only the constant, so that tests can see both sides of the
	// threshold without waiting for it.
	RetryingAfter time.Duration
}
