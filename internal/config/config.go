// Package config reads the service's settings from the environment and a .env
// file, validates all of them at once and hands each part of the service the
// typed values it needs. The variables, their defaults and their meaning are
// listed once, in Variables, which also generates .env.example.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/order"
)

// Config is the validated configuration of the service. Load fills every
// field; the zero Config is not valid.
type Config struct {
	// Application (seed).
	ProductionEnv bool   // PRODUCTION_ENV
	AppName       string // APP_NAME
	AppHost       string // APP_HOST
	AppPort       int    // APP_PORT, 0-65535
	AppReload     bool   // APP_RELOAD: accepted, no effect in a compiled binary
	APIV1Str      string // API_V1_STR, e.g. "/api/v0"
	OpenAPIURL    string // OPENAPI_URL, e.g. "/apidocs"
	LogFile       string // LOG_FILE; "" = no error file

	// Kafka (seed, then ours).
	KafkaBrokerURL       string   // KAFKA_BROKER_URL: "embedded" or host:port,host:port
	KafkaGroupID         string   // KAFKA_GROUP_ID
	KafkaTopics          []string // KAFKA_TOPIC, at least one
	KafkaDLQTopic        string   // KAFKA_DLQ_TOPIC
	KafkaAutoOffsetReset string   // KAFKA_AUTO_OFFSET_RESET: "earliest" or "latest"
	EmbeddedKafkaAddr    string   // EMBEDDED_KAFKA_ADDR, host:port
	EmbeddedKafkaDir     string   // EMBEDDED_KAFKA_DIR; "" = memory only
	EmbeddedKafkaSync    bool     // EMBEDDED_KAFKA_SYNC: fsync each produced batch
	// EMBEDDED_KAFKA_RETENTION: how long committed records are kept; 0 = all
	EmbeddedKafkaRetention time.Duration
	KafkaPartitions        int // KAFKA_PARTITIONS, at least 1

	// Middleware (seed).
	MiddlewareCORS          bool // APP_MIDDLEWARE_CORS
	MiddlewareGZip          bool // APP_MIDDLEWARE_GZIP
	MiddlewareTrustedHost   bool // APP_MIDDLEWARE_TRUSTEDHOST
	MiddlewareHTTPSRedirect bool // APP_MIDDLEWARE_HTTPSREDIRECT

	// CORS (seed).
	CORSOrigins     []string // BACKEND_CORS_ORIGINS
	CORSCredentials bool     // BACKEND_CORS_CREDENTIALS
	CORSMethods     []string // BACKEND_CORS_METHODS
	CORSHeaders     []string // BACKEND_CORS_HEADERS
	AllowedHosts    []string // BACKEND_ALLOWED_HOSTS, at least one

	DatabaseURL string // DATABASE_URL: sqlite://path, postgres://… or postgresql://…

	LogLevel  string // LOG_LEVEL: debug, info, warning, error or critical
	LogFormat string // LOG_FORMAT: text or json, resolved from PRODUCTION_ENV when unset

	// Rules holds FRAUD_THRESHOLD, FREE_SHIPPING_THRESHOLD, STANDARD_SHIPPING,
	// EXPRESS_SHIPPING, DISCOUNT_RATE, CANCELLATION_FEE_RATE and
	// UNSUPPORTED_REGIONS.
	Rules order.Rules

	MaxAttempts     int           // MAX_ATTEMPTS, at least 1
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT, positive

	KafkaSecurityProtocol string // KAFKA_SECURITY_PROTOCOL: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	KafkaSASLMechanism    string // KAFKA_SASL_MECHANISM: "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	KafkaSASLUsername     string // KAFKA_SASL_USERNAME
	KafkaSASLPassword     string // KAFKA_SASL_PASSWORD (secret)
	KafkaTLSCAFile        string // KAFKA_TLS_CA_FILE; "" = system roots

	AdminToken string // ADMIN_TOKEN (secret); "" = no authentication
}

// Load reads the configuration: each variable from getenv, or else from the
// .env file at dotenvPath, or else its default (see Variables). A missing
// .env file is not an error, and the file never changes the process
// environment. Because getenv cannot tell an empty variable from an unset one,
// an empty environment value counts as unset; use LoadLookup to honour
// explicitly empty values such as EMBEDDED_KAFKA_DIR= (memory only).
//
// Every error Load returns is a configuration error: bad values are all
// reported together in an *Error, and an unreadable .env file is reported as
// itself.
func Load(getenv func(string) string, dotenvPath string) (Config, error) {
	return LoadLookup(func(name string) (string, bool) {
		v := getenv(name)
		return v, v != ""
	}, dotenvPath)
}

// LoadLookup is Load with an os.LookupEnv-style lookup, so that a variable
// set to the empty string in the environment means "empty" (no LOG_FILE, a
// memory-only embedded broker) rather than "unset", for the variables where
// empty has a meaning of its own. For the others an empty value still means
// the default.
func LoadLookup(lookup func(string) (string, bool), dotenvPath string) (Config, error) {
	dotenv, err := readDotenv(dotenvPath)
	if err != nil {
		return Config{}, err
	}
	l := &loader{lookup: lookup, dotenv: dotenv}
	c := l.load()
	if len(l.problems) > 0 {
		return Config{}, &Error{Problems: l.problems}
	}
	return c, nil
}

func readDotenv(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", path, err)
	}
	defer f.Close()
	text, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", path, err)
	}
	m, err := godotenv.UnmarshalBytes(text)
	if err != nil {
		// godotenv's message quotes the file from where it failed on,
		// secrets and all: say where instead.
		return nil, fmt.Errorf("config: parsing %s: line %d is not NAME=value (an unclosed quote or a name with a space, say; its text is not shown, since .env may hold secrets)",
			path, badDotenvLine(text))
	}
	return m, nil
}

// badDotenvLine is the number of the line of a .env text that godotenv
// cannot parse: the line after the longest run of whole lines from the
// start that it can (a quoted value may span lines).
func badDotenvLine(text []byte) int {
	lines := bytes.SplitAfter(text, []byte("\n"))
	good := 0
	for n := 1; n <= len(lines); n++ {
		if _, err := godotenv.UnmarshalBytes(bytes.Join(lines[:n], nil)); err == nil {
			good = n
		}
	}
	return good + 1
}

// Embedded reports whether the service runs its own in-process broker
// (KAFKA_BROKER_URL=embedded).
func (c Config) Embedded() bool {
	return c.KafkaBrokerURL == embedded
}

// KafkaConfig returns the settings of the kafka package. When the broker is
// embedded, Brokers is EMBEDDED_KAFKA_ADDR as configured; a caller that starts
// the broker on port 0 must put the address it got there.
func (c Config) KafkaConfig() kafka.Config {
	var brokers []string
	if c.Embedded() {
		brokers = []string{c.EmbeddedKafkaAddr}
	} else {
		brokers = splitBrokers(c.KafkaBrokerURL)
	}
	return kafka.Config{
		Brokers:          brokers,
		Topics:           append([]string(nil), c.KafkaTopics...),
		GroupID:          c.KafkaGroupID,
		DLQTopic:         c.KafkaDLQTopic,
		AutoOffsetReset:  c.KafkaAutoOffsetReset,
		SecurityProtocol: c.KafkaSecurityProtocol,
		SASLMechanism:    c.KafkaSASLMechanism,
		SASLUsername:     c.KafkaSASLUsername,
		SASLPassword:     c.KafkaSASLPassword,
		TLSCAFile:        c.KafkaTLSCAFile,
		MaxAttempts:      c.MaxAttempts,
		ShutdownTimeout:  c.ShutdownTimeout,
	}
}

// EmbeddedConfig returns the settings of the embedded broker, for orderd
// serve and orderd broker: it creates the input and DLQ topics and keeps the
// input topics' records for EMBEDDED_KAFKA_RETENTION once KAFKA_GROUP_ID has
// committed them. Logger and Opts are the caller's.
func (c Config) EmbeddedConfig() kafka.EmbeddedConfig {
	return kafka.EmbeddedConfig{
		Addr:       c.EmbeddedKafkaAddr,
		DataDir:    c.EmbeddedKafkaDir,
		SyncWrites: c.EmbeddedKafkaSync,
		Partitions: c.KafkaPartitions,
		Topics:     append(append([]string{}, c.KafkaTopics...), c.KafkaDLQTopic),
		Retention: kafka.EmbeddedRetention{
			After:  c.EmbeddedKafkaRetention,
			Group:  c.KafkaGroupID,
			Topics: append([]string{}, c.KafkaTopics...),
		},
	}
}

func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Problem is one bad setting.
type Problem struct {
	Name  string // the variable, e.g. "KAFKA_AUTO_OFFSET_RESET"
	Value string // the value given; secrets are replaced by [REDACTED]
	Want  string // what is accepted, e.g. "want earliest or latest"
}

// String renders p as NAME="value": want ….
func (p Problem) String() string {
	return fmt.Sprintf("%s=%q: %s", p.Name, p.Value, p.Want)
}

// Error lists every bad setting found by Load.
type Error struct {
	Problems []Problem
}

// Error renders all problems on one line, separated by semicolons.
func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.String()
	}
	noun := "setting"
	if len(e.Problems) != 1 {
		noun = "settings"
	}
	return fmt.Sprintf("config: %d invalid %s: %s", len(e.Problems), noun, strings.Join(msgs, "; "))
}
