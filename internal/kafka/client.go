package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Security protocols accepted in KAFKA_SECURITY_PROTOCOL.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// SASL mechanisms accepted in KAFKA_SASL_MECHANISM.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// ClientOpts returns the franz-go options every client of the service shares:
// the seed brokers and the transport security chosen by
// KAFKA_SECURITY_PROTOCOL. An empty protocol means PLAINTEXT. Errors name the
// environment variable at fault and never contain the password.
func (c Config) ClientOpts() ([]kgo.Opt, error) {
	if len(c.Brokers) == 0 {
		return nil, errors.New("KAFKA_BROKER_URL: no brokers given")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}

	protocol := strings.ToUpper(strings.TrimSpace(c.SecurityProtocol))
	if protocol == "" {
		protocol = ProtocolPlaintext
	}
	var useTLS, useSASL bool
	switch protocol {
	case ProtocolPlaintext:
	case ProtocolSSL:
		useTLS = true
	case ProtocolSASLPlaintext:
		useSASL = true
	case ProtocolSASLSSL:
		useTLS, useSASL = true, true
	default:
		return nil, fmt.Errorf("KAFKA_SECURITY_PROTOCOL: %q is not one of %s, %s, %s, %s",
			c.SecurityProtocol, ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL)
	}

	if useTLS {
		tc, err := tlsConfig(c.TLSCAFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if useSASL {
		mech, err := c.saslMechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// tlsConfig trusts the system roots plus, when caFile is set, the
// certificates in that PEM file.
func tlsConfig(caFile string) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %s holds no PEM certificate", caFile)
		}
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func (c Config) saslMechanism() (sasl.Mechanism, error) {
	if c.SASLUsername == "" {
		return nil, fmt.Errorf("KAFKA_SASL_USERNAME: required with KAFKA_SECURITY_PROTOCOL=%s", c.SecurityProtocol)
	}
	mechanism := strings.ToUpper(strings.TrimSpace(c.SASLMechanism))
	if mechanism == "" {
		mechanism = MechanismPlain
	}
	switch mechanism {
	case MechanismPlain:
		return plain.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsMechanism(), nil
	case MechanismSCRAMSHA256:
		return scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha256Mechanism(), nil
	case MechanismSCRAMSHA512:
		return scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha512Mechanism(), nil
	default:
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM: %q is not one of %s, %s, %s",
			c.SASLMechanism, MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512)
	}
}

// LogValue reports the configuration for slog with the SASL password
// replaced, so logging a Config never leaks the secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("brokers", c.Brokers),
		slog.Any("topics", c.Topics),
		slog.String("group_id", c.GroupID),
		slog.String("dlq_topic", c.DLQTopic),
		slog.String("auto_offset_reset", c.AutoOffsetReset),
		slog.String("security_protocol", c.SecurityProtocol),
		slog.String("sasl_mechanism", c.SASLMechanism),
		slog.String("sasl_username", c.SASLUsername),
		slog.String("sasl_password", redact(c.SASLPassword)),
		slog.String("tls_ca_file", c.TLSCAFile),
		slog.Int("max_attempts", c.MaxAttempts),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
	)
}

// String formats the configuration like LogValue does, without the password.
func (c Config) String() string {
	return fmt.Sprintf("{Brokers:%v Topics:%v GroupID:%s DLQTopic:%s AutoOffsetReset:%s SecurityProtocol:%s SASLMechanism:%s SASLUsername:%s SASLPassword:%s TLSCAFile:%s MaxAttempts:%d ShutdownTimeout:%s RetryInitial:%s RetryMax:%s}",
		c.Brokers, c.Topics, c.GroupID, c.DLQTopic, c.AutoOffsetReset, c.SecurityProtocol,
		c.SASLMechanism, c.SASLUsername, redact(c.SASLPassword), c.TLSCAFile,
		c.MaxAttempts, c.ShutdownTimeout, c.RetryInitial, c.RetryMax)
}

// GoString makes %#v print the same redacted form as String.
func (c Config) GoString() string { return "kafka.Config" + c.String() }

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "[REDACTED]"
}

// ClientLogger adapts l to franz-go's logger interface so that client logs
// (connections, rebalances, retries) go through the service's slog handlers.
// franz-go's info level is mapped to slog debug: it narrates every
// connection and metadata refresh, which is too chatty for info.
func ClientLogger(l *slog.Logger) kgo.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return kgoSlog{l: l}
}

type kgoSlog struct{ l *slog.Logger }

func (k kgoSlog) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case k.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case k.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case k.l.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	default:
		return kgo.LogLevelNone
	}
}

func (k kgoSlog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var sl slog.Level
	switch level {
	case kgo.LogLevelError:
		sl = slog.LevelError
	case kgo.LogLevelWarn:
		sl = slog.LevelWarn
	default:
		sl = slog.LevelDebug
	}
	k.l.Log(context.Background(), sl, "kafka client: "+msg, keyvals...)
}
