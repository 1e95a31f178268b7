package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/order"
)

// env is a fake environment.
type env map[string]string

func (e env) getenv(name string) string { return e[name] }

func (e env) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

var decimalEqual = cmp.Comparer(func(a, b order.Decimal) bool { return a.Cmp(b) == 0 })

// seedDefaults is the configuration with nothing set: the seed's values for
// its variables and SPEC §7's for ours, written out literally.
func seedDefaults() Config {
	return Config{
		ProductionEnv: false,
		AppName:       "Order Processing Service",
		AppHost:       "127.0.0.1",
		AppPort:       8000,
		AppReload:     true,
		APIV1Str:      "/api/v0",
		OpenAPIURL:    "/apidocs",
		LogFile:       "error.log",

		KafkaBrokerURL:       "embedded",
		KafkaGroupID:         "order-processing-group",
		KafkaTopics:          []string{"order-events"},
		KafkaDLQTopic:        "orders-dlq",
		KafkaAutoOffsetReset: "earliest",
		EmbeddedKafkaAddr:    "127.0.0.1:9092",
		EmbeddedKafkaDir:     "kafka-data",
		KafkaPartitions:      6,
		// Not the seed's: Kafka's own log.retention.hours.
		EmbeddedKafkaRetention: 168 * time.Hour,

		MiddlewareCORS:          true,
		MiddlewareGZip:          false,
		MiddlewareTrustedHost:   true,
		MiddlewareHTTPSRedirect: false,

		CORSOrigins:     []string{"*"},
		CORSCredentials: true,
		CORSMethods:     []string{"*"},
		CORSHeaders:     []string{"*"},
		AllowedHosts:    []string{"*"},

		DatabaseURL: "sqlite://orders.db",
		LogLevel:    "info",
		LogFormat:   "text",
		Rules: order.Rules{
			FraudThreshold:        order.MustDecimal("10000"),
			FreeShippingThreshold: order.MustDecimal("100"),
			StandardShipping:      order.MustDecimal("5.99"),
			ExpressShipping:       order.MustDecimal("12.99"),
			DiscountRate:          order.MustDecimal("0.10"),
			CancellationFeeRate:   order.MustDecimal("0.05"),
			UnsupportedRegions:    []string{"Antarctica", "Mars Colony"},
		},
		MaxAttempts:           5,
		ShutdownTimeout:       30 * time.Second,
		KafkaSecurityProtocol: "PLAINTEXT",
	}
}

func mustLoad(t *testing.T, e env, dotenv string) Config {
	t.Helper()
	c, err := Load(e.getenv, dotenv)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	got := mustLoad(t, env{}, filepath.Join(t.TempDir(), "no.env"))
	if diff := cmp.Diff(seedDefaults(), got, decimalEqual); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if !got.Embedded() {
		t.Errorf("Embedded() = false by default")
	}
	if diff := cmp.Diff(order.DefaultRules(), got.Rules, decimalEqual); diff != "" {
		t.Errorf("Rules differ from order.DefaultRules (-want +got):\n%s", diff)
	}
}

func TestLogFormatFollowsProduction(t *testing.T) {
	tests := []struct {
		env  env
		want string
	}{
		{env{}, "text"},
		{env{"PRODUCTION_ENV": "True"}, "json"},
		{env{"PRODUCTION_ENV": "True", "LOG_FORMAT": "text"}, "text"},
		{env{"LOG_FORMAT": "JSON"}, "json"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.env), func(t *testing.T) {
			if got := mustLoad(t, tt.env, "").LogFormat; got != tt.want {
				t.Errorf("LogFormat = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLists(t *testing.T) {
	tests := []struct {
		value string
		want  []string
	}{
		{`["order-events"]`, []string{"order-events"}},
		{`["a","b"]`, []string{"a", "b"}},
		{`[ "a" , "b" ]`, []string{"a", "b"}},
		{`a,b`, []string{"a", "b"}},
		{` a , b `, []string{"a", "b"}},
		{`single`, []string{"single"}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c := mustLoad(t, env{"KAFKA_TOPIC": tt.value, "BACKEND_CORS_ORIGINS": tt.value, "UNSUPPORTED_REGIONS": tt.value}, "")
			for name, got := range map[string][]string{
				"KAFKA_TOPIC": c.KafkaTopics, "BACKEND_CORS_ORIGINS": c.CORSOrigins, "UNSUPPORTED_REGIONS": c.Rules.UnsupportedRegions,
			} {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
		})
	}

	t.Run("empty JSON array where allowed", func(t *testing.T) {
		c := mustLoad(t, env{"UNSUPPORTED_REGIONS": "[]", "BACKEND_CORS_ORIGINS": "[]"}, "")
		if len(c.Rules.UnsupportedRegions) != 0 || len(c.CORSOrigins) != 0 {
			t.Errorf("regions %q, origins %q; want both empty", c.Rules.UnsupportedRegions, c.CORSOrigins)
		}
		if !c.Rules.RegionSupported("Antarctica") {
			t.Errorf("Antarctica rejected with UNSUPPORTED_REGIONS=[]")
		}
	})
}

func TestBooleans(t *testing.T) {
	tests := []struct {
		value string
		want  bool
	}{
		{"True", true}, {"true", true}, {"TRUE", true}, {"1", true},
		{"False", false}, {"false", false}, {"FALSE", false}, {"0", false},
		{" True ", true},
	}
	bools := []string{
		"PRODUCTION_ENV", "APP_RELOAD", "APP_MIDDLEWARE_CORS", "APP_MIDDLEWARE_GZIP",
		"APP_MIDDLEWARE_TRUSTEDHOST", "APP_MIDDLEWARE_HTTPSREDIRECT", "BACKEND_CORS_CREDENTIALS",
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			e := env{}
			for _, name := range bools {
				e[name] = tt.value
			}
			c := mustLoad(t, e, "")
			got := []bool{c.ProductionEnv, c.AppReload, c.MiddlewareCORS, c.MiddlewareGZip,
				c.MiddlewareTrustedHost, c.MiddlewareHTTPSRedirect, c.CORSCredentials}
			for i, g := range got {
				if g != tt.want {
					t.Errorf("%s=%q gave %v, want %v", bools[i], tt.value, g, tt.want)
				}
			}
		})
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"30s", 30 * time.Second},
		{"30", 30 * time.Second},
		{"2.5", 2500 * time.Millisecond},
		{"1m30s", 90 * time.Second},
		{"250ms", 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c := mustLoad(t, env{"SHUTDOWN_TIMEOUT": tt.value}, "")
			if c.ShutdownTimeout != tt.want {
				t.Errorf("ShutdownTimeout = %v, want %v", c.ShutdownTimeout, tt.want)
			}
		})
	}
}

// TestRetention: EMBEDDED_KAFKA_RETENTION takes what SHUTDOWN_TIMEOUT
// takes, and 0 to keep every record.
func TestRetention(t *testing.T) {
	for value, want := range map[string]time.Duration{"0": 0, "24h": 24 * time.Hour, "1m": time.Minute, "3600": time.Hour, "0s": 0} {
		if c := mustLoad(t, env{"EMBEDDED_KAFKA_RETENTION": value}, ""); c.EmbeddedKafkaRetention != want {
			t.Errorf("EMBEDDED_KAFKA_RETENTION=%s: %v, want %v", value, c.EmbeddedKafkaRetention, want)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEnvironmentBeatsDotenv(t *testing.T) {
	dotenv := writeFile(t, `# a comment
APP_PORT=9000
APP_NAME="From File"
KAFKA_TOPIC=["x","y"]
LOG_LEVEL=debug
EMBEDDED_KAFKA_DIR=
APP_HOST=
`)
	c := mustLoad(t, env{"APP_PORT": "7000", "LOG_LEVEL": "warning"}, dotenv)
	tests := []struct {
		name      string
		got, want any
	}{
		{"APP_PORT from the environment", c.AppPort, 7000},
		{"LOG_LEVEL from the environment", c.LogLevel, "warning"},
		{"APP_NAME from .env", c.AppName, "From File"},
		{"KAFKA_TOPIC from .env", c.KafkaTopics, []string{"x", "y"}},
		{"EMBEDDED_KAFKA_DIR empty in .env means memory only", c.EmbeddedKafkaDir, ""},
		{"APP_HOST empty in .env means the default", c.AppHost, "127.0.0.1"},
		{"KAFKA_GROUP_ID from the default", c.KafkaGroupID, "order-processing-group"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}

	t.Run("the process environment is untouched", func(t *testing.T) {
		if v, ok := os.LookupEnv("APP_NAME"); ok && v == "From File" {
			t.Errorf("Load set APP_NAME in the process environment")
		}
	})
}

func TestEmptyEnvironmentValues(t *testing.T) {
	dotenv := writeFile(t, "EMBEDDED_KAFKA_DIR=from-file\n")
	e := env{"EMBEDDED_KAFKA_DIR": "", "LOG_FILE": "", "APP_PORT": ""}
	tests := []struct {
		name              string
		load              func() (Config, error)
		wantDir, wantFile string
	}{
		{"Load: empty = unset", func() (Config, error) { return Load(e.getenv, dotenv) }, "from-file", "error.log"},
		{"LoadLookup: empty = empty", func() (Config, error) { return LoadLookup(e.lookup, dotenv) }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.load()
			if err != nil {
				t.Fatal(err)
			}
			if c.EmbeddedKafkaDir != tt.wantDir || c.LogFile != tt.wantFile {
				t.Errorf("EMBEDDED_KAFKA_DIR=%q LOG_FILE=%q, want %q and %q", c.EmbeddedKafkaDir, c.LogFile, tt.wantDir, tt.wantFile)
			}
			if c.AppPort != 8000 {
				t.Errorf("APP_PORT= gave %d, want the default 8000", c.AppPort)
			}
		})
	}
}

func TestDotenvErrors(t *testing.T) {
	t.Run("missing file is fine", func(t *testing.T) {
		mustLoad(t, env{}, filepath.Join(t.TempDir(), "absent.env"))
	})
	t.Run("a directory is reported", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Load(env{}.getenv, dir)
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("Load(dir) error = %v, want one naming %s", err, dir)
		}
	})
	t.Run("a malformed file is reported", func(t *testing.T) {
		path := writeFile(t, "APP_NAME='unterminated\n")
		_, err := Load(env{}.getenv, path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(malformed) error = %v, want one naming %s", err, path)
		}
	})
	// The parser's own message quotes the file from the bad line on: the
	// error names the line and shows none of it.
	for name, tc := range map[string]struct {
		text string
		line int
	}{
		"a name with a space":          {"APP_NAME Orders\nADMIN_TOKEN=tok-s3cr3t\nDATABASE_URL=postgres://u:pw-s3cr3t@h/db\n", 1},
		"an unclosed quote":            {"APP_NAME=Orders\nLOG_LEVEL=info\nADMIN_TOKEN=\"tok-s3cr3t\nKAFKA_SASL_PASSWORD=pw-s3cr3t\n", 3},
		"after a value over two lines": {"APP_NAME=\"two\nlines\"\nADMIN_TOKEN tok-s3cr3t\n", 3},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, tc.text)
			_, err := Load(env{}.getenv, path)
			if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), fmt.Sprintf("line %d ", tc.line)) {
				t.Errorf("Load error = %v, want one naming line %d and no secret", err, tc.line)
			}
		})
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		name, value string
		want        string // expected in the error after NAME="value":
	}{
		{"PRODUCTION_ENV", "yes", "want True or False"},
		{"APP_RELOAD", "t", "want True or False"},
		{"APP_MIDDLEWARE_GZIP", "on", "want True or False"},
		{"BACKEND_CORS_CREDENTIALS", "2", "want True or False"},
		{"APP_PORT", "80x", "want a whole number from 0 to 65535"},
		{"APP_PORT", "65536", "want a whole number from 0 to 65535"},
		{"API_V1_STR", "api/v0", "want a path that starts with /"},
		{"API_V1_STR", "/api/v0/", "does not end with /"},
		{"OPENAPI_URL", "/", "want a path that starts with /"},
		{"OPENAPI_URL", "/healthz", "want a path no other route has"},
		{"OPENAPI_URL", "/docs/assets/x.js", "want a path no other route has"},
		{"OPENAPI_URL", "/api/v0/orders", "nor API_V1_STR (/api/v0) or below it"},
		{"OPENAPI_URL", "/api/v0", "nor API_V1_STR"},
		{"API_V1_STR", "/api/{v", "of segments of letters, digits"},
		{"API_V1_STR", "/api/v0/{x}", "of segments of letters, digits"},
		{"API_V1_STR", "/api//v0", "of segments of letters, digits"},
		{"API_V1_STR", "/api/../v0", "of segments of letters, digits"},
		{"API_V1_STR", "/api/v%30", "of segments of letters, digits"},
		{"KAFKA_BROKER_URL", "localhost", "want embedded or a comma-separated list of host:port"},
		{"KAFKA_BROKER_URL", "a:9092,b", `"b": no port`},
		{"KAFKA_BROKER_URL", "a:9092,:9093", `":9093": no host`},
		{"KAFKA_BROKER_URL", "a:kafka", "is not a number"},
		{"KAFKA_TOPIC", "[]", "want at least 1 entry"},
		{"KAFKA_TOPIC", `["a",1]`, "want a JSON array of strings"},
		{"KAFKA_TOPIC", "a,,b", "without empty entries"},
		{"KAFKA_TOPIC", "bad topic!", "want Kafka topic names"},
		{"KAFKA_DLQ_TOPIC", "order-events", "not one of KAFKA_TOPIC"},
		{"KAFKA_DLQ_TOPIC", "dlq/1", "want a Kafka topic name"},
		{"KAFKA_AUTO_OFFSET_RESET", "sometimes", "want earliest or latest"},
		{"EMBEDDED_KAFKA_ADDR", "127.0.0.1", "want host:port"},
		{"KAFKA_PARTITIONS", "0", "want a whole number of at least 1"},
		{"BACKEND_ALLOWED_HOSTS", "[]", "want at least 1 entry"},
		{"BACKEND_ALLOWED_HOSTS", "example.com,bad host!", "want each entry *, *.example.com, a host name or an IP address, without a port"},
		{"BACKEND_ALLOWED_HOSTS", "localhost:8000", "without a port"},
		{"BACKEND_ALLOWED_HOSTS", "*.-bad.com", "without a port"},
		{"APP_HOST", "999.1.1.1", "want an IP address such as 127.0.0.1"},
		{"APP_HOST", "my host", "want an IP address such as 127.0.0.1"},
		{"APP_HOST", "127.0.0.1:8000", "want an IP address such as 127.0.0.1"},
		{"BACKEND_CORS_METHODS", "[GET]", "want a JSON array of strings"},
		{"DATABASE_URL", "mysql://localhost/db", "want sqlite://path/to/file.db or postgres://"},
		{"DATABASE_URL", "sqlite://", "the sqlite path is empty"},
		{"DATABASE_URL", "postgres://h:port/db", "the URL does not parse"},
		{"DATABASE_URL", "sqlite://orders.db?mode=ro", "must not contain '?' or '#'"},
		{"DATABASE_URL", "postgres://u@127.0.0.1:5432/test?sslmode=bogus", "pgx refuses it: sslmode is invalid"},
		{"LOG_LEVEL", "verbose", "want debug, info, warning, error or critical"},
		{"LOG_FORMAT", "xml", "want text or json"},
		{"FRAUD_THRESHOLD", "-1", "want a decimal from 0 to 1000000000000"},
		{"FRAUD_THRESHOLD", "100000000000000000", "want a decimal from 0 to 1000000000000"},
		{"FREE_SHIPPING_THRESHOLD", "lots", "want a decimal from 0 to 1000000000000"},
		{"FREE_SHIPPING_THRESHOLD", "1e13", "want a decimal from 0 to 1000000000000"},
		{"STANDARD_SHIPPING", "5,99", "want a decimal from 0 to 1000000000000"},
		{"STANDARD_SHIPPING", "92233720368547758", "want a decimal from 0 to 1000000000000"},
		{"EXPRESS_SHIPPING", "1/2", "want a decimal from 0 to 1000000000000"},
		{"DISCOUNT_RATE", "1.5", "want a decimal from 0 to 1"},
		{"CANCELLATION_FEE_RATE", "-0.05", "want a decimal from 0 to 1"},
		{"UNSUPPORTED_REGIONS", `["Mars"`, "want a JSON array of strings"},
		{"MAX_ATTEMPTS", "0", "want a whole number of at least 1"},
		{"SHUTDOWN_TIMEOUT", "0", "want a duration of at least 100ms"},
		{"EMBEDDED_KAFKA_RETENTION", "30s", "want 0 (keep every record) or a duration of at least 1m0s"},
		{"EMBEDDED_KAFKA_RETENTION", "-1h", "want 0 (keep every record) or a duration of at least 1m0s"},
		{"EMBEDDED_KAFKA_RETENTION", "7d", "want 0 (keep every record) or a duration of at least 1m0s"},
		{"SHUTDOWN_TIMEOUT", "-5s", "want a duration of at least 100ms"},
		{"SHUTDOWN_TIMEOUT", "soon", "want a duration of at least 100ms"},
		{"SHUTDOWN_TIMEOUT", "1e300", "want a duration of at least 100ms"},
		{"SHUTDOWN_TIMEOUT", "1ns", "want a duration of at least 100ms"},
		{"SHUTDOWN_TIMEOUT", "0x1p4", "want a duration of at least 100ms"},
		{"SHUTDOWN_TIMEOUT", "99999999999999999999", "want a duration of at least 100ms"},
		{"KAFKA_SECURITY_PROTOCOL", "TLS", "want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"},
		{"KAFKA_SECURITY_PROTOCOL", "SSL", "want PLAINTEXT when KAFKA_BROKER_URL is embedded"},
		{"KAFKA_SASL_MECHANISM", "GSSAPI", "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"KAFKA_SASL_MECHANISM", "PLAIN", "want it empty unless KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT or SASL_SSL"},
		{"KAFKA_SASL_USERNAME", "alice", "want it empty unless"},
		{"KAFKA_TLS_CA_FILE", "/nonexistent/ca.pem", "want a readable PEM file"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := Load(env{tt.name: tt.value}.getenv, "")
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load error = %v, want *Error", err)
			}
			if len(cerr.Problems) != 1 || cerr.Problems[0].Name != tt.name {
				t.Fatalf("problems = %v, want one about %s", cerr.Problems, tt.name)
			}
			wantPrefix := fmt.Sprintf("%s=%q: ", tt.name, tt.value)
			msg := cerr.Problems[0].String()
			if !strings.HasPrefix(msg, wantPrefix) || !strings.Contains(msg, tt.want) {
				t.Errorf("problem %q, want prefix %q and %q", msg, wantPrefix, tt.want)
			}
			if !strings.Contains(err.Error(), msg) {
				t.Errorf("Error() %q does not contain %q", err, msg)
			}
		})
	}
}

// TestHosts: the hosts APP_HOST and BACKEND_ALLOWED_HOSTS take.
func TestHosts(t *testing.T) {
	for _, h := range []string{"0.0.0.0", "::", "::1", "fe80::1%eth0", "localhost", "orders_api", "my-host.example.com", "example.com."} {
		c, err := Load(env{"APP_HOST": h}.getenv, "")
		if err != nil || c.AppHost != h {
			t.Errorf("APP_HOST=%q: %v, %q", h, err, c.AppHost)
		}
	}
	allowed := `["*","*.example.com","[::1]","::1","10.0.0.1","api.example.com"]`
	c, err := Load(env{"BACKEND_ALLOWED_HOSTS": allowed}.getenv, "")
	if err != nil || len(c.AllowedHosts) != 6 {
		t.Errorf("BACKEND_ALLOWED_HOSTS=%s: %v, %q", allowed, err, c.AllowedHosts)
	}
}

func TestSeveralBadValues(t *testing.T) {
	e := env{
		"APP_PORT":                "http",
		"KAFKA_AUTO_OFFSET_RESET": "sometimes",
		"DISCOUNT_RATE":           "2",
		"MAX_ATTEMPTS":            "-3",
		"APP_NAME":                "fine",
	}
	_, err := Load(e.getenv, "")
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load error = %v, want *Error", err)
	}
	var names []string
	for _, p := range cerr.Problems {
		names = append(names, p.Name)
	}
	want := []string{"APP_PORT", "KAFKA_AUTO_OFFSET_RESET", "DISCOUNT_RATE", "MAX_ATTEMPTS"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(err.Error(), "config: 4 invalid settings: ") {
		t.Errorf("Error() = %q", err)
	}
}

func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKafkaSecurity(t *testing.T) {
	ca := writeCA(t)
	notPEM := writeFile(t, "not a certificate\n")
	cluster := env{"KAFKA_BROKER_URL": "k1:9092,k2:9093"}
	with := func(extra env) env {
		e := env{}
		for k, v := range cluster {
			e[k] = v
		}
		for k, v := range extra {
			e[k] = v
		}
		return e
	}
	tests := []struct {
		name string
		env  env
		want []string // names with problems; nil = valid
	}{
		{"plaintext", with(nil), nil},
		{"ssl with a CA", with(env{"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_TLS_CA_FILE": ca}), nil},
		{"ssl, lower case", with(env{"KAFKA_SECURITY_PROTOCOL": "ssl"}), nil},
		{"sasl_ssl complete", with(env{"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
			"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p", "KAFKA_TLS_CA_FILE": ca}), nil},
		{"sasl without anything", with(env{"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}),
			[]string{"KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"}},
		{"sasl with a bad mechanism", with(env{"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
			"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}), []string{"KAFKA_SASL_MECHANISM"}},
		{"password without sasl", with(env{"KAFKA_SASL_PASSWORD": "p"}), []string{"KAFKA_SASL_PASSWORD"}},
		{"CA file without TLS", with(env{"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
			"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p", "KAFKA_TLS_CA_FILE": ca}), []string{"KAFKA_TLS_CA_FILE"}},
		{"CA file that is not PEM", with(env{"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_TLS_CA_FILE": notPEM}), []string{"KAFKA_TLS_CA_FILE"}},
		{"embedded with SASL", env{"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN",
			"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, []string{"KAFKA_SECURITY_PROTOCOL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.env.getenv, "")
			var names []string
			var cerr *Error
			if errors.As(err, &cerr) {
				for _, p := range cerr.Problems {
					names = append(names, p.Name)
				}
			} else if err != nil {
				t.Fatalf("Load error = %v, want nil or *Error", err)
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("problems (-want +got):\n%s\n%v", diff, err)
			}
		})
	}
}

func TestKafkaConfig(t *testing.T) {
	tests := []struct {
		name string
		env  env
		want kafka.Config
	}{
		{"embedded", env{"EMBEDDED_KAFKA_ADDR": "127.0.0.1:19092"}, kafka.Config{
			Brokers: []string{"127.0.0.1:19092"}, Topics: []string{"order-events"}, GroupID: "order-processing-group",
			DLQTopic: "orders-dlq", AutoOffsetReset: "earliest", SecurityProtocol: "PLAINTEXT",
			MaxAttempts: 5, ShutdownTimeout: 30 * time.Second,
		}},
		{"cluster with SASL", env{
			"KAFKA_BROKER_URL": " k1:9092 , k2:9093 ", "KAFKA_TOPIC": "a,b", "KAFKA_GROUP_ID": "g", "KAFKA_DLQ_TOPIC": "d",
			"KAFKA_AUTO_OFFSET_RESET": "Latest", "KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "KAFKA_SASL_MECHANISM": "scram-sha-256",
			"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p", "MAX_ATTEMPTS": "3", "SHUTDOWN_TIMEOUT": "5",
		}, kafka.Config{
			Brokers: []string{"k1:9092", "k2:9093"}, Topics: []string{"a", "b"}, GroupID: "g", DLQTopic: "d",
			AutoOffsetReset: "latest", SecurityProtocol: "SASL_PLAINTEXT", SASLMechanism: "SCRAM-SHA-256",
			SASLUsername: "u", SASLPassword: "p", MaxAttempts: 3, ShutdownTimeout: 5 * time.Second,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.env, "")
			if diff := cmp.Diff(tt.want, c.KafkaConfig()); diff != "" {
				t.Errorf("KafkaConfig (-want +got):\n%s", diff)
			}
			if got, want := c.Embedded(), tt.name == "embedded"; got != want {
				t.Errorf("Embedded() = %v, want %v", got, want)
			}
		})
	}
}

func TestSecretsRedacted(t *testing.T) {
	const (
		saslPassword = "sasl-S3cret-pw"
		adminToken   = "admin-T0ken-value"
		dbPassword   = "db-Pa55word"
		dbQueryPass  = "db-query-pa55"
	)
	c := mustLoad(t, env{
		"KAFKA_BROKER_URL": "k1:9092", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN",
		"KAFKA_SASL_USERNAME": "alice", "KAFKA_SASL_PASSWORD": saslPassword, "ADMIN_TOKEN": adminToken,
		"DATABASE_URL": "postgres://orders:" + dbPassword + "@db.internal:5432/orders?sslmode=require&password=" + dbQueryPass,
	}, "")

	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("config", "config", c)
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("config", "config", c)
	outputs := map[string]string{
		"json log": jsonLog.String(),
		"text log": textLog.String(),
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", c),
		"%#v":      fmt.Sprintf("%#v", c),
		"ptr":      fmt.Sprint(&c),
	}
	for name, out := range outputs {
		for _, secret := range []string{saslPassword, adminToken, dbPassword, dbQueryPass} {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows a secret: %s", name, out)
			}
		}
		for _, visible := range []string{"alice", "db.internal:5432", "k1:9092"} {
			if !strings.Contains(out, visible) {
				t.Errorf("%s hides %q, which is not secret: %s", name, visible, out)
			}
		}
	}

	var rec struct {
		Config map[string]string `json:"config"`
	}
	if err := json.Unmarshal(jsonLog.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	for _, v := range Variables {
		if _, ok := rec.Config[v.Name]; !ok {
			t.Errorf("logged config lacks %s", v.Name)
		}
	}
	if rec.Config["KAFKA_SASL_PASSWORD"] != "[REDACTED]" || rec.Config["ADMIN_TOKEN"] != "[REDACTED]" {
		t.Errorf("secrets logged as %q and %q, want [REDACTED]", rec.Config["KAFKA_SASL_PASSWORD"], rec.Config["ADMIN_TOKEN"])
	}
	if got := rec.Config["DATABASE_URL"]; got != "postgres://orders:REDACTED@db.internal:5432/orders?sslmode=require&password=REDACTED" {
		t.Errorf("DATABASE_URL logged as %q", got)
	}
	if got := mustLoad(t, env{}, "").LogValue().Resolve().Group(); !slices.ContainsFunc(got, func(a slog.Attr) bool {
		return a.Key == "ADMIN_TOKEN" && a.Value.String() == ""
	}) {
		t.Errorf("an unset ADMIN_TOKEN should log as empty")
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sqlite://orders.db", "sqlite://orders.db"},
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"},
		{"postgres://u:pw@h:5432/db", "postgres://u:REDACTED@h:5432/db"},
		{"postgresql://u:p@ss:w/rd@h/db", "postgresql://u:REDACTED@h/db"},
		{"postgres://h/db?user=u&Password=pw&sslmode=disable", "postgres://h/db?user=u&Password=REDACTED&sslmode=disable"},
		{"postgres://h:port/db?password=x", "postgres://h:port/db?password=REDACTED"},
		{"postgres://u@h/db?sslmode=verify-full&sslpassword=k3y", "postgres://u@h/db?sslmode=verify-full&sslpassword=REDACTED"},
		{"host=127.0.0.1 user=postgres password=hunter2 dbname=test", "host=127.0.0.1 user=postgres password=REDACTED dbname=test"},
		{"password='pass word' host=h", "password=REDACTED host=h"},
		{"host=h PASSWORD = pw", "host=h PASSWORD = REDACTED"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSecretsAbsentFromErrors(t *testing.T) {
	const secret = "hunter2-secret"
	tests := []env{
		{"KAFKA_SASL_PASSWORD": secret}, // set although the protocol is PLAINTEXT
		{"DATABASE_URL": "mysql://root:" + secret + "@localhost/db"},
		{"DATABASE_URL": "host=127.0.0.1 user=postgres password=" + secret + " dbname=test"},
		{"DATABASE_URL": "postgres://u:" + secret + "@127.0.0.1:5432/test?sslmode=bogus"},
		{"DATABASE_URL": "postgres://u@h/db?sslpassword=" + secret + "&sslmode=bogus"},
		{"ADMIN_TOKEN": " \t "},
	}
	for _, e := range tests {
		_, err := Load(e.getenv, "")
		if err == nil {
			t.Fatalf("Load(%v) succeeded, want an error", slices.Collect(mapKeys(e)))
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

func mapKeys(m env) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestRoundTrip writes a configuration with every value changed from its
// default as environment variables and checks Load reads it back unchanged.
func TestRoundTrip(t *testing.T) {
	want := Config{
		ProductionEnv: true, AppName: "Orders EU", AppHost: "0.0.0.0", AppPort: 9090, AppReload: false,
		APIV1Str: "/api/v1", OpenAPIURL: "/openapi.json", LogFile: "/var/log/orders/error.log",
		KafkaBrokerURL: "k1:9092,k2:9092", KafkaGroupID: "g2", KafkaTopics: []string{"t1", "t2"},
		KafkaDLQTopic: "t-dlq", KafkaAutoOffsetReset: "latest", EmbeddedKafkaAddr: "127.0.0.1:29092",
		EmbeddedKafkaDir: "/data/kafka", EmbeddedKafkaSync: true, EmbeddedKafkaRetention: 36 * time.Hour, KafkaPartitions: 12,
		MiddlewareCORS: false, MiddlewareGZip: true, MiddlewareTrustedHost: false, MiddlewareHTTPSRedirect: true,
		CORSOrigins: []string{"https://a.example", "https://b.example"}, CORSCredentials: false,
		CORSMethods: []string{"GET", "POST"}, CORSHeaders: []string{"Authorization"}, AllowedHosts: []string{"*.example.com"},
		DatabaseURL: "postgres://u:pw@localhost:5432/orders?sslmode=disable",
		LogLevel:    "critical", LogFormat: "text",
		Rules: order.Rules{
			FraudThreshold: order.MustDecimal("5000"), FreeShippingThreshold: order.MustDecimal("50"),
			StandardShipping: order.MustDecimal("4.5"), ExpressShipping: order.MustDecimal("9"),
			DiscountRate: order.MustDecimal("0"), CancellationFeeRate: order.MustDecimal("1"),
			UnsupportedRegions: []string{"Atlantis"},
		},
		MaxAttempts: 1, ShutdownTimeout: 1500 * time.Millisecond,
		KafkaSecurityProtocol: "SASL_PLAINTEXT", KafkaSASLMechanism: "SCRAM-SHA-512",
		KafkaSASLUsername: "bob", KafkaSASLPassword: " pass word ", AdminToken: "tok",
	}
	e := env{}
	for _, s := range want.settings(false) {
		e[s.name] = s.value
	}
	got := mustLoad(t, e, "")
	if diff := cmp.Diff(want, got, decimalEqual); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

// TestAdminTokenWithoutWhiteSpace: a token mounted from a file ends in a
// newline that no Authorization header carries; it is read without it.
func TestAdminTokenWithoutWhiteSpace(t *testing.T) {
	for _, raw := range []string{"tok-1\n", " tok-1\t", "tok-1"} {
		if c := mustLoad(t, env{"ADMIN_TOKEN": raw}, ""); c.AdminToken != "tok-1" {
			t.Errorf("ADMIN_TOKEN %q read as %q, want tok-1", raw, c.AdminToken)
		}
	}
}
