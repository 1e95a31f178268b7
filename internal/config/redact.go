package config

import (
	"encoding/json"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
)

// LogValue makes slog show the configuration as one attribute per variable,
// named as in the environment, with KAFKA_SASL_PASSWORD, ADMIN_TOKEN and any
// password inside DATABASE_URL replaced by [REDACTED]. An empty secret stays
// empty, so the log still tells whether it is set.
func (c Config) LogValue() slog.Value {
	settings := c.settings(true)
	attrs := make([]slog.Attr, len(settings))
	for i, s := range settings {
		attrs[i] = slog.String(s.name, s.value)
	}
	return slog.GroupValue(attrs...)
}

// String renders the configuration as NAME="value" pairs with secrets
// redacted as in LogValue, so that printing a Config with fmt is safe too.
func (c Config) String() string {
	var b strings.Builder
	for i, s := range c.settings(true) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(s.value))
	}
	return b.String()
}

// GoString is String, so that %#v does not print secrets either.
func (c Config) GoString() string { return c.String() }

type setting struct{ name, value string }

// settings renders every variable as it could be written in a .env file, in
// the order of Variables.
func (c Config) settings(redact bool) []setting {
	secret := func(s string) string {
		if redact && s != "" {
			return redaction
		}
		return s
	}
	dbURL := c.DatabaseURL
	if redact {
		dbURL = redactURL(dbURL)
	}
	r := c.Rules
	return []setting{
		{"PRODUCTION_ENV", boolText(c.ProductionEnv)},
		{"APP_NAME", c.AppName},
		{"APP_HOST", c.AppHost},
		{"APP_PORT", strconv.Itoa(c.AppPort)},
		{"APP_RELOAD", boolText(c.AppReload)},
		{"API_V1_STR", c.APIV1Str},
		{"OPENAPI_URL", c.OpenAPIURL},
		{"LOG_FILE", c.LogFile},
		{"KAFKA_BROKER_URL", c.KafkaBrokerURL},
		{"KAFKA_GROUP_ID", c.KafkaGroupID},
		{"KAFKA_TOPIC", listText(c.KafkaTopics)},
		{"KAFKA_DLQ_TOPIC", c.KafkaDLQTopic},
		{"KAFKA_AUTO_OFFSET_RESET", c.KafkaAutoOffsetReset},
		{"EMBEDDED_KAFKA_ADDR", c.EmbeddedKafkaAddr},
		{"EMBEDDED_KAFKA_DIR", c.EmbeddedKafkaDir},
		{"EMBEDDED_KAFKA_SYNC", boolText(c.EmbeddedKafkaSync)},
		{"EMBEDDED_KAFKA_RETENTION", c.EmbeddedKafkaRetention.String()},
		{"KAFKA_PARTITIONS", strconv.Itoa(c.KafkaPartitions)},
		{"APP_MIDDLEWARE_CORS", boolText(c.MiddlewareCORS)},
		{"APP_MIDDLEWARE_GZIP", boolText(c.MiddlewareGZip)},
		{"APP_MIDDLEWARE_TRUSTEDHOST", boolText(c.MiddlewareTrustedHost)},
		{"APP_MIDDLEWARE_HTTPSREDIRECT", boolText(c.MiddlewareHTTPSRedirect)},
		{"BACKEND_CORS_ORIGINS", listText(c.CORSOrigins)},
		{"BACKEND_CORS_CREDENTIALS", boolText(c.CORSCredentials)},
		{"BACKEND_CORS_METHODS", listText(c.CORSMethods)},
		{"BACKEND_CORS_HEADERS", listText(c.CORSHeaders)},
		{"BACKEND_ALLOWED_HOSTS", listText(c.AllowedHosts)},
		{"DATABASE_URL", dbURL},
		{"LOG_LEVEL", c.LogLevel},
		{"LOG_FORMAT", c.LogFormat},
		{"FRAUD_THRESHOLD", r.FraudThreshold.String()},
		{"FREE_SHIPPING_THRESHOLD", r.FreeShippingThreshold.String()},
		{"STANDARD_SHIPPING", r.StandardShipping.String()},
		{"EXPRESS_SHIPPING", r.ExpressShipping.String()},
		{"DISCOUNT_RATE", r.DiscountRate.String()},
		{"CANCELLATION_FEE_RATE", r.CancellationFeeRate.String()},
		{"UNSUPPORTED_REGIONS", listText(r.UnsupportedRegions)},
		{"MAX_ATTEMPTS", strconv.Itoa(c.MaxAttempts)},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String()},
		{"KAFKA_SECURITY_PROTOCOL", c.KafkaSecurityProtocol},
		{"KAFKA_SASL_MECHANISM", c.KafkaSASLMechanism},
		{"KAFKA_SASL_USERNAME", c.KafkaSASLUsername},
		{"KAFKA_SASL_PASSWORD", secret(c.KafkaSASLPassword)},
		{"KAFKA_TLS_CA_FILE", c.KafkaTLSCAFile},
		{"ADMIN_TOKEN", secret(c.AdminToken)},
	}
}

func boolText(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func listText(items []string) string {
	if items == nil {
		items = []string{}
	}
	b, _ := json.Marshal(items) // a []string always marshals
	return string(b)
}

// urlRedaction replaces a password inside a URL; unlike redaction it needs
// no escaping there.
const urlRedaction = "REDACTED"

// passwordParam is a password or sslpassword (the client key's passphrase)
// as a URL's query parameter or as a libpq key/value setting ("host=h
// password='p w'"), which pgx accepts too.
var passwordParam = regexp.MustCompile(`(?i)((?:^|[?&\s])(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^&#\s]*)`)

// redactURL hides the password of a database URL, both in the user
// information and in a password or sslpassword parameter (of the URL's
// query, or of a key/value connection string), and keeps the rest of the
// text as it is. It works on the text rather than a parsed URL so that it
// also hides the password of a URL that does not parse; when in doubt it
// hides too much (everything between the first ':' after the scheme and the
// last '@').
func redactURL(s string) string {
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if c := strings.Index(rest[:at], ":"); c >= 0 {
			rest = rest[:c+1] + urlRedaction + rest[at:]
		}
	}
	return prefix + passwordParam.ReplaceAllString(rest, "${1}"+urlRedaction)
}
