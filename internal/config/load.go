package config

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderd/orderd/internal/httpapi"
	"github.com/orderd/orderd/internal/logging"
	"github.com/orderd/orderd/internal/order"
)

const (
	embedded  = "embedded"
	redaction = "[REDACTED]"
)

var (
	securityProtocols = []string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
	saslMechanisms    = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	topicName         = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
)

// loader resolves and parses variables one by one, collecting every problem
// instead of stopping at the first.
type loader struct {
	lookup   func(string) (string, bool)
	dotenv   map[string]string
	problems []Problem
}

func (l *loader) load() Config {
	var c Config

	c.ProductionEnv = l.boolean("PRODUCTION_ENV")
	c.AppName = l.str("APP_NAME")
	c.AppHost = l.host("APP_HOST")
	c.AppPort = l.integer("APP_PORT", 0, 65535)
	c.AppReload = l.boolean("APP_RELOAD")
	c.APIV1Str = l.urlPath("API_V1_STR")
	c.OpenAPIURL = l.openAPIURL("OPENAPI_URL", c.APIV1Str)
	c.LogFile = l.str("LOG_FILE")

	c.KafkaBrokerURL = l.brokers("KAFKA_BROKER_URL")
	c.KafkaGroupID = l.str("KAFKA_GROUP_ID")
	c.KafkaTopics = l.topics("KAFKA_TOPIC")
	c.KafkaDLQTopic = l.dlqTopic("KAFKA_DLQ_TOPIC", c.KafkaTopics)
	c.KafkaAutoOffsetReset = l.choice("KAFKA_AUTO_OFFSET_RESET", strings.ToLower, "earliest", "latest")
	c.EmbeddedKafkaAddr = l.listenAddr("EMBEDDED_KAFKA_ADDR")
	c.EmbeddedKafkaDir = l.str("EMBEDDED_KAFKA_DIR")
	c.EmbeddedKafkaSync = l.boolean("EMBEDDED_KAFKA_SYNC")
	c.EmbeddedKafkaRetention = l.retention("EMBEDDED_KAFKA_RETENTION")
	c.KafkaPartitions = l.integer("KAFKA_PARTITIONS", 1, math.MaxInt32)

	c.MiddlewareCORS = l.boolean("APP_MIDDLEWARE_CORS")
	c.MiddlewareGZip = l.boolean("APP_MIDDLEWARE_GZIP")
	c.MiddlewareTrustedHost = l.boolean("APP_MIDDLEWARE_TRUSTEDHOST")
	c.MiddlewareHTTPSRedirect = l.boolean("APP_MIDDLEWARE_HTTPSREDIRECT")

	c.CORSOrigins = l.list("BACKEND_CORS_ORIGINS", 0)
	c.CORSCredentials = l.boolean("BACKEND_CORS_CREDENTIALS")
	c.CORSMethods = l.list("BACKEND_CORS_METHODS", 0)
	c.CORSHeaders = l.list("BACKEND_CORS_HEADERS", 0)
	c.AllowedHosts = l.hostPatterns("BACKEND_ALLOWED_HOSTS")

	c.DatabaseURL = l.databaseURL("DATABASE_URL")

	c.LogLevel = l.logLevel("LOG_LEVEL")
	c.LogFormat = l.choice("LOG_FORMAT", strings.ToLower, "text", "json")
	if c.LogFormat == "" {
		c.LogFormat = "text"
		if c.ProductionEnv {
			c.LogFormat = "json"
		}
	}

	one := order.MustDecimal("1")
	// Amounts of money in major units (a threshold, a fee): up to a
	// trillion, so that in any currency's minor units they and the sums
	// they enter stay far from int64's end.
	maxAmount := order.MustDecimal("1000000000000")
	c.Rules = order.Rules{
		FraudThreshold:        l.decimal("FRAUD_THRESHOLD", &maxAmount),
		FreeShippingThreshold: l.decimal("FREE_SHIPPING_THRESHOLD", &maxAmount),
		StandardShipping:      l.decimal("STANDARD_SHIPPING", &maxAmount),
		ExpressShipping:       l.decimal("EXPRESS_SHIPPING", &maxAmount),
		DiscountRate:          l.decimal("DISCOUNT_RATE", &one),
		CancellationFeeRate:   l.decimal("CANCELLATION_FEE_RATE", &one),
		UnsupportedRegions:    l.list("UNSUPPORTED_REGIONS", 0),
	}

	c.MaxAttempts = l.integer("MAX_ATTEMPTS", 1, math.MaxInt32)
	c.ShutdownTimeout = l.duration("SHUTDOWN_TIMEOUT")

	c.KafkaSecurityProtocol = l.choice("KAFKA_SECURITY_PROTOCOL", strings.ToUpper, securityProtocols...)
	c.KafkaSASLMechanism = l.choice("KAFKA_SASL_MECHANISM", strings.ToUpper, saslMechanisms...)
	c.KafkaSASLUsername = l.str("KAFKA_SASL_USERNAME")
	c.KafkaSASLPassword = l.str("KAFKA_SASL_PASSWORD")
	c.KafkaTLSCAFile = l.caFile("KAFKA_TLS_CA_FILE")
	l.checkSecurity(c)

	c.AdminToken = l.token("ADMIN_TOKEN")
	return c
}

// raw returns the value of the variable called name: the environment's, or
// the .env file's, or the default. Values are trimmed, except secrets.
func (l *loader) raw(name string) (string, Var) {
	v := lookupVar(name)
	value := v.Default
	if s, ok := l.lookup(name); ok && (s != "" || v.keepEmpty) {
		value = s
	} else if s, ok := l.dotenv[name]; ok && (s != "" || v.keepEmpty) {
		value = s
	}
	if !v.Secret {
		value = strings.TrimSpace(value)
	}
	if value == "" && !v.keepEmpty {
		value = v.Default
	}
	return value, v
}

func (l *loader) bad(v Var, value, want string, args ...any) {
	if v.Secret && value != "" {
		value = redaction
	}
	if v.Name == "DATABASE_URL" {
		value = redactURL(value)
	}
	l.problems = append(l.problems, Problem{Name: v.Name, Value: value, Want: fmt.Sprintf(want, args...)})
}

// reported tells whether a problem with the variable is already listed.
func (l *loader) reported(name string) bool {
	return slices.ContainsFunc(l.problems, func(p Problem) bool { return p.Name == name })
}

func (l *loader) str(name string) string {
	s, _ := l.raw(name)
	return s
}

// token reads a bearer token without the white space around it (a secret
// mounted from a file often ends in a newline), which a client's
// Authorization header cannot carry. One of white space alone is refused:
// read as no token, it would leave the routes it guards open.
func (l *loader) token(name string) string {
	s, v := l.raw(name)
	t := strings.TrimSpace(s)
	if t == "" && s != "" {
		l.bad(v, s, "want a token (white space around it is ignored), or nothing for no token; this one is only white space")
	}
	return t
}

func (l *loader) boolean(name string) bool {
	s, v := l.raw(name)
	switch s {
	case "True", "true", "TRUE", "1":
		return true
	case "False", "false", "FALSE", "0":
		return false
	}
	l.bad(v, s, "want True or False (also true/false, TRUE/FALSE, 1/0)")
	return false
}

func (l *loader) integer(name string, lo, hi int) int {
	s, v := l.raw(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		if hi == math.MaxInt32 {
			l.bad(v, s, "want a whole number of at least %d", lo)
		} else {
			l.bad(v, s, "want a whole number from %d to %d", lo, hi)
		}
		return 0
	}
	return n
}

// choice returns the option s equals after normalising its case, or "" when
// the value is empty (only possible where the default is empty).
func (l *loader) choice(name string, norm func(string) string, options ...string) string {
	s, v := l.raw(name)
	if s == "" {
		return ""
	}
	if i := slices.Index(options, norm(s)); i >= 0 {
		return options[i]
	}
	l.bad(v, s, "want %s", orList(options))
	return ""
}

func orList(options []string) string {
	if len(options) == 1 {
		return options[0]
	}
	return strings.Join(options[:len(options)-1], ", ") + " or " + options[len(options)-1]
}

// list parses a JSON array of strings (the seed's form) or comma-separated
// text, and wants at least min entries.
func (l *loader) list(name string, min int) []string {
	s, v := l.raw(name)
	items, ok := parseList(s)
	if !ok {
		l.bad(v, s, "want a JSON array of strings such as [\"a\",\"b\"] or comma-separated text a,b, without empty entries")
		return nil
	}
	if len(items) < min {
		l.bad(v, s, "want at least %d entry", min)
		return nil
	}
	return items
}

func parseList(s string) ([]string, bool) {
	var items []string
	if strings.HasPrefix(s, "[") {
		if err := json.Unmarshal([]byte(s), &items); err != nil {
			return nil, false
		}
	} else if s != "" {
		items = strings.Split(s, ",")
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			return nil, false
		}
		out = append(out, it)
	}
	return out, true
}

// pathSegments is a URL path of plain segments: no wildcard ({…}) for the
// router to read, no escapes, no "." or ".." for it to clean away.
var pathSegments = regexp.MustCompile(`^(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$`)

func (l *loader) urlPath(name string) string {
	s, v := l.raw(name)
	if !pathSegments.MatchString(s) {
		l.bad(v, s, "want a path that starts with / and does not end with /, of segments of letters, digits and . _ ~ - (none starting with .), such as %s", v.Default)
		return ""
	}
	return s
}

// openAPIURL is urlPath for OPENAPI_URL, which must not be the path of
// another route: a fixed one, or one under API_V1_STR.
func (l *loader) openAPIURL(name, apiPrefix string) string {
	s := l.urlPath(name)
	if s == "" {
		return ""
	}
	under := func(prefix string) bool { return s == prefix || strings.HasPrefix(s, prefix+"/") }
	if slices.ContainsFunc(httpapi.FixedPaths, under) || (apiPrefix != "" && under(apiPrefix)) {
		l.bad(lookupVar(name), s, "want a path no other route has: not %s or below them, nor API_V1_STR (%s) or below it",
			strings.Join(httpapi.FixedPaths, ", "), apiPrefix)
		return ""
	}
	return s
}

func (l *loader) brokers(name string) string {
	s, v := l.raw(name)
	if strings.EqualFold(s, embedded) {
		return embedded
	}
	for _, b := range strings.Split(s, ",") {
		b = strings.TrimSpace(b)
		if err := checkHostPort(b, 1); err != nil {
			l.bad(v, s, "want embedded or a comma-separated list of host:port (%q: %v)", b, err)
			return ""
		}
	}
	return strings.Join(splitBrokers(s), ",")
}

// host reads a host to listen on: an IP address or a host name.
func (l *loader) host(name string) string {
	s, v := l.raw(name)
	if !validHost(s) {
		l.bad(v, s, "want an IP address such as 127.0.0.1 or 0.0.0.0, or a host name such as localhost")
		return ""
	}
	return s
}

// hostPatterns reads trusted Host header values: *, *.example.com, a host
// name or an IP address ([::1] or ::1). A port or any other character would
// never match a request's host, which is compared without its port.
func (l *loader) hostPatterns(name string) []string {
	items := l.list(name, 1)
	for _, it := range items {
		h := strings.TrimPrefix(it, "*.")
		if it != "*" && !validHost(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")) {
			s, v := l.raw(name)
			l.bad(v, s, "entry %q: want each entry *, *.example.com, a host name or an IP address, without a port", it)
			return nil
		}
	}
	return items
}

// validHost reports whether s is an IP address or a host name: dot-separated
// labels of letters, digits, hyphens and underscores (as container names
// have), none over 63 bytes or starting or ending with a hyphen, and not all
// digits and dots unless it is an IPv4 address.
func validHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil { // an IPv6 zone too: fe80::1%eth0
		return true
	}
	if s == "" || len(s) > 253 || strings.Trim(s, "0123456789.") == "" {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

func (l *loader) listenAddr(name string) string {
	s, v := l.raw(name)
	if err := checkHostPort(s, 0); err != nil {
		l.bad(v, s, "want host:port such as 127.0.0.1:9092 (%v)", err)
		return ""
	}
	return s
}

// checkHostPort checks that s is host:port with a numeric port from minPort
// to 65535. An empty host is allowed only for a listening address (minPort 0).
func checkHostPort(s string, minPort int) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("no port: %w", err)
	}
	if host == "" && minPort > 0 {
		return fmt.Errorf("no host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < minPort || n > 65535 {
		return fmt.Errorf("port %q is not a number from %d to 65535", port, minPort)
	}
	return nil
}

func (l *loader) topics(name string) []string {
	topics := l.list(name, 1)
	s, v := l.raw(name)
	for _, t := range topics {
		if !validTopic(t) {
			l.bad(v, s, "want Kafka topic names (letters, digits, '.', '_', '-', at most 249), not %q", t)
			return nil
		}
	}
	return topics
}

func (l *loader) dlqTopic(name string, topics []string) string {
	s, v := l.raw(name)
	switch {
	case !validTopic(s):
		l.bad(v, s, "want a Kafka topic name (letters, digits, '.', '_', '-', at most 249)")
		return ""
	case slices.Contains(topics, s):
		l.bad(v, s, "want a topic that is not one of KAFKA_TOPIC, or failed records would be consumed again")
		return ""
	}
	return s
}

func validTopic(t string) bool {
	return topicName.MatchString(t) && t != "." && t != ".."
}

// parseConfigCause is why pgconn.ParseConfig refused a URL, without the
// URL it quotes.
func parseConfigCause(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		return pe.Unwrap().Error()
	}
	return err.Error()
}

func (l *loader) databaseURL(name string) string {
	s, v := l.raw(name)
	const want = "want sqlite://path/to/file.db or postgres://user:password@host:5432/db (postgresql:// also accepted)"
	switch {
	case strings.HasPrefix(s, "sqlite://"):
		path := strings.TrimPrefix(s, "sqlite://")
		if path == "" {
			l.bad(v, s, "%s; the sqlite path is empty", want)
			return ""
		}
		if strings.ContainsAny(path, "?#") {
			l.bad(v, s, "%s; the sqlite path must not contain '?' or '#' (the store sets its own options)", want)
			return ""
		}
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			l.bad(v, s, "%s; the URL does not parse", want)
			return ""
		}
		// What pgx would refuse on every attempt to connect (an sslmode it
		// does not know, a certificate file that is not there) is a bad
		// value, not a database that is down.
		if _, err := pgconn.ParseConfig(s); err != nil {
			l.bad(v, s, "%s; pgx refuses it: %s", want, redactURL(parseConfigCause(err)))
			return ""
		}
	default:
		l.bad(v, s, "%s", want)
		return ""
	}
	return s
}

func (l *loader) logLevel(name string) string {
	s, v := l.raw(name)
	level, err := logging.ParseLevel(s)
	if err != nil {
		l.bad(v, s, "want debug, info, warning, error or critical")
		return ""
	}
	return strings.ToLower(logging.LevelName(level))
}

// decimal parses a decimal from 0 to hi.
func (l *loader) decimal(name string, hi *order.Decimal) order.Decimal {
	s, v := l.raw(name)
	d, err := order.ParseDecimal(s)
	switch {
	case err != nil || d.Sign() < 0 || d.Cmp(*hi) > 0:
		l.bad(v, s, "want a decimal from 0 to %s, such as %s", hi, v.Default)
		return order.Decimal{}
	}
	return d
}

// decimalSeconds is a duration in seconds as plain decimal digits (not a
// hex float or an exponent, which strconv.ParseFloat takes too).
var decimalSeconds = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// minDuration is the shortest duration a variable takes: a shutdown given
// less cannot even stop fetching and commit, and would log failures that
// are not.
const minDuration = 100 * time.Millisecond

// duration parses a Go duration ("30s", "1m30s") or plain seconds ("30",
// "2.5"), at least minDuration.
func (l *loader) duration(name string) time.Duration {
	s, v := l.raw(name)
	d, ok := parseDuration(s)
	if !ok || d < minDuration {
		l.bad(v, s, "want a duration of at least %s such as 30s, 1m30s or 30 (seconds)", minDuration)
		return 0
	}
	return d
}

// minRetention is the shortest retention of the embedded broker other than
// 0: it looks for records to delete every 5 minutes, as Kafka does, so a
// shorter one would only read as more precise than it is.
const minRetention = time.Minute

// retention parses EMBEDDED_KAFKA_RETENTION: 0 keeps every record, else a
// duration as duration takes it, at least minRetention.
func (l *loader) retention(name string) time.Duration {
	s, v := l.raw(name)
	d, ok := parseDuration(s)
	if !ok || (d != 0 && d < minRetention) || d < 0 {
		l.bad(v, s, "want 0 (keep every record) or a duration of at least %s such as 168h or 24h", minRetention)
		return 0
	}
	return d
}

// parseDuration reads a Go duration or plain seconds; ok is false when s is
// neither.
func parseDuration(s string) (d time.Duration, ok bool) {
	if decimalSeconds.MatchString(s) {
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil || secs*float64(time.Second) >= math.MaxInt64 {
			return 0, false
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

func (l *loader) caFile(name string) string {
	s, v := l.raw(name)
	if s == "" {
		return ""
	}
	pem, err := os.ReadFile(s)
	if err != nil {
		l.bad(v, s, "want a readable PEM file of CA certificates (%v)", err)
		return ""
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		l.bad(v, s, "want a PEM file of CA certificates (no certificate found in it)")
		return ""
	}
	return s
}

// checkSecurity checks the Kafka security settings against each other: SASL
// needs a mechanism and credentials, and settings that the chosen protocol
// would silently ignore are reported rather than ignored.
func (l *loader) checkSecurity(c Config) {
	proto := c.KafkaSecurityProtocol
	if proto == "" {
		return // already reported
	}
	sasl := strings.HasPrefix(proto, "SASL_")
	tls := proto == "SSL" || proto == "SASL_SSL"
	flag := func(name, value, want string, args ...any) {
		if !l.reported(name) {
			l.bad(lookupVar(name), value, want, args...)
		}
	}
	if c.KafkaBrokerURL == embedded && proto != "PLAINTEXT" {
		flag("KAFKA_SECURITY_PROTOCOL", proto, "want PLAINTEXT when KAFKA_BROKER_URL is embedded (the embedded broker has no TLS or SASL)")
	}
	if sasl {
		if c.KafkaSASLMechanism == "" {
			flag("KAFKA_SASL_MECHANISM", "", "want %s when KAFKA_SECURITY_PROTOCOL is %s", orList(saslMechanisms), proto)
		}
		if c.KafkaSASLUsername == "" {
			flag("KAFKA_SASL_USERNAME", "", "want a user name when KAFKA_SECURITY_PROTOCOL is %s", proto)
		}
		if c.KafkaSASLPassword == "" {
			flag("KAFKA_SASL_PASSWORD", "", "want a password when KAFKA_SECURITY_PROTOCOL is %s", proto)
		}
	} else {
		for _, name := range []string{"KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"} {
			if s, _ := l.raw(name); s != "" {
				flag(name, s, "want it empty unless KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT or SASL_SSL (it is %s)", proto)
			}
		}
	}
	if !tls {
		if s, _ := l.raw("KAFKA_TLS_CA_FILE"); s != "" {
			flag("KAFKA_TLS_CA_FILE", s, "want it empty unless KAFKA_SECURITY_PROTOCOL is SSL or SASL_SSL (it is %s)", proto)
		}
	}
}
