package config

// Var documents one environment variable that Load reads.
type Var struct {
	Name        string // the environment variable, e.g. "APP_PORT"
	Group       string // the section it belongs to in .env.example and the README
	Default     string // the value used when it is unset, written as in a .env file
	Description string // what it does and which values it accepts
	Secret      bool   // never printed: not in logs, not in error messages

	// keepEmpty means an explicit empty value is a setting of its own
	// ("no file", "memory only") rather than "use the default".
	keepEmpty bool
}

// Groups lists the sections of Variables in the order they are documented:
// first the seed's four, then ours.
var Groups = []string{
	"Application", "Kafka", "Middleware", "CORS",
	"Database", "Logging", "Business rules", "Delivery", "Kafka security", "Admin",
}

// Variables lists every variable Load reads, grouped as in Groups. It is the
// single source of the defaults Load applies and of .env.example, so the
// documentation cannot drift from the code.
var Variables = []Var{
	// Application (seed).
	{Name: "PRODUCTION_ENV", Group: "Application", Default: "False",
		Description: "Production mode: hides the OpenAPI docs and makes JSON the default log format. True or False."},
	{Name: "APP_NAME", Group: "Application", Default: "Order Processing Service",
		Description: "Application name, shown in the OpenAPI document and the logs."},
	{Name: "APP_HOST", Group: "Application", Default: "127.0.0.1",
		Description: "Address the HTTP server listens on."},
	{Name: "APP_PORT", Group: "Application", Default: "8000",
		Description: "Port the HTTP server listens on, 0-65535 (0 picks a free port)."},
	{Name: "APP_RELOAD", Group: "Application", Default: "True",
		Description: "Accepted for compatibility with the seed; a compiled binary does not hot-reload."},
	{Name: "API_V1_STR", Group: "Application", Default: "/api/v0",
		Description: "Path prefix of the API routes; starts with / and does not end with /."},
	{Name: "OPENAPI_URL", Group: "Application", Default: "/apidocs",
		Description: "Path of the OpenAPI document (only when PRODUCTION_ENV is False)."},
	{Name: "LOG_FILE", Group: "Application", Default: "error.log",
		Description: "File that records at error level and above are appended to, as plain text lines; empty = no file.", keepEmpty: true},

	// Kafka (seed, then ours).
	{Name: "KAFKA_BROKER_URL", Group: "Kafka", Default: "embedded",
		Description: "embedded (run the in-process broker on EMBEDDED_KAFKA_ADDR) or a comma-separated list of host:port of a Kafka cluster."},
	{Name: "KAFKA_GROUP_ID", Group: "Kafka", Default: "order-processing-group",
		Description: "Consumer group id; instances with the same id share the partitions."},
	{Name: "KAFKA_TOPIC", Group: "Kafka", Default: `["order-events"]`,
		Description: `Topics to consume: a JSON array (["a","b"]) or comma-separated names.`},
	{Name: "KAFKA_DLQ_TOPIC", Group: "Kafka", Default: "orders-dlq",
		Description: "Dead letter topic for records that cannot be processed; must not be one of KAFKA_TOPIC."},
	{Name: "KAFKA_AUTO_OFFSET_RESET", Group: "Kafka", Default: "earliest",
		Description: "Where a new consumer group starts reading: earliest or latest."},
	{Name: "EMBEDDED_KAFKA_ADDR", Group: "Kafka", Default: "127.0.0.1:9092",
		Description: "host:port the embedded broker listens on (when KAFKA_BROKER_URL=embedded, and for orderd broker)."},
	{Name: "EMBEDDED_KAFKA_DIR", Group: "Kafka", Default: "kafka-data",
		Description: "Directory where the embedded broker keeps its log; empty = memory only.", keepEmpty: true},
	{Name: "EMBEDDED_KAFKA_SYNC", Group: "Kafka", Default: "False",
		Description: "Whether the embedded broker writes each produced batch to disk (fsync) before acknowledging it. Without it, as Kafka by default, an acknowledged record survives the process's crash but not the machine's (power loss); with it, both, at a cost in produce throughput."},
	{Name: "EMBEDDED_KAFKA_RETENTION", Group: "Kafka", Default: "168h",
		Description: "How long the embedded broker keeps a record of KAFKA_TOPIC once KAFKA_GROUP_ID has committed it: a Go duration (168h is Kafka's default of 7 days) or seconds, at least 1m, or 0 to keep every record. Records the group has not committed, and the DLQ topic's, are never deleted."},
	{Name: "KAFKA_PARTITIONS", Group: "Kafka", Default: "6",
		Description: "Partitions of the topics the service creates, at least 1."},

	// Middleware (seed).
	{Name: "APP_MIDDLEWARE_CORS", Group: "Middleware", Default: "True",
		Description: "Enable the CORS middleware. True or False."},
	{Name: "APP_MIDDLEWARE_GZIP", Group: "Middleware", Default: "False",
		Description: "Enable gzip compression of responses of 1,000 bytes or more. True or False."},
	{Name: "APP_MIDDLEWARE_TRUSTEDHOST", Group: "Middleware", Default: "True",
		Description: "Reject requests whose Host is not in BACKEND_ALLOWED_HOSTS. True or False."},
	{Name: "APP_MIDDLEWARE_HTTPSREDIRECT", Group: "Middleware", Default: "False",
		Description: "Redirect plain HTTP requests to HTTPS. True or False."},

	// CORS (seed).
	{Name: "BACKEND_CORS_ORIGINS", Group: "CORS", Default: `["*"]`,
		Description: "Allowed origins: a JSON array or comma-separated list; [] allows none."},
	{Name: "BACKEND_CORS_CREDENTIALS", Group: "CORS", Default: "True",
		Description: "Allow credentials in CORS requests. True or False."},
	{Name: "BACKEND_CORS_METHODS", Group: "CORS", Default: `["*"]`,
		Description: "Allowed HTTP methods: a JSON array or comma-separated list."},
	{Name: "BACKEND_CORS_HEADERS", Group: "CORS", Default: `["*"]`,
		Description: "Allowed request headers: a JSON array or comma-separated list."},
	{Name: "BACKEND_ALLOWED_HOSTS", Group: "CORS", Default: `["*"]`,
		Description: "Trusted host names: exact names, *.example.com patterns or *; a JSON array or comma-separated list."},

	// Database.
	{Name: "DATABASE_URL", Group: "Database", Default: "sqlite://orders.db",
		Description: "sqlite://path/to/file.db, or postgres://user:password@host:5432/db (postgresql:// also accepted)."},

	// Logging.
	{Name: "LOG_LEVEL", Group: "Logging", Default: "info",
		Description: "Lowest level logged: debug, info, warning, error or critical."},
	{Name: "LOG_FORMAT", Group: "Logging", Default: "",
		Description: "text or json; empty = text, or json when PRODUCTION_ENV is True."},

	// Business rules.
	{Name: "FRAUD_THRESHOLD", Group: "Business rules", Default: "10000",
		Description: "Orders above this total are rejected for fraud review (order currency, 0 to 10^12; compared exactly, whatever the currency's decimals)."},
	{Name: "FREE_SHIPPING_THRESHOLD", Group: "Business rules", Default: "100",
		Description: "Orders of at least this total ship free (order currency, 0 to 10^12; compared exactly)."},
	{Name: "STANDARD_SHIPPING", Group: "Business rules", Default: "5.99",
		Description: "Standard shipping fee below the free-shipping threshold (order currency, 0 to 10^12; rounded half away from zero to the currency's decimals)."},
	{Name: "EXPRESS_SHIPPING", Group: "Business rules", Default: "12.99",
		Description: "Express shipping fee below the free-shipping threshold (order currency, 0 to 10^12; rounded as STANDARD_SHIPPING)."},
	{Name: "DISCOUNT_RATE", Group: "Business rules", Default: "0.10",
		Description: "Discount as a fraction of the order total, 0 to 1."},
	{Name: "CANCELLATION_FEE_RATE", Group: "Business rules", Default: "0.05",
		Description: "Cancellation fee as a fraction of the charged amount, 0 to 1."},
	{Name: "UNSUPPORTED_REGIONS", Group: "Business rules", Default: `["Antarctica","Mars Colony"]`,
		Description: "Shipping regions that are rejected (case-insensitive): a JSON array or comma-separated list; [] rejects none."},

	// Delivery.
	{Name: "MAX_ATTEMPTS", Group: "Delivery", Default: "5",
		Description: "Tries for an unclassified error before the record goes to the DLQ, at least 1."},
	{Name: "SHUTDOWN_TIMEOUT", Group: "Delivery", Default: "30s",
		Description: "How long in-flight records may take at shutdown: a Go duration (30s, 1m30s) or seconds (30); at least 100ms."},

	// Kafka security.
	{Name: "KAFKA_SECURITY_PROTOCOL", Group: "Kafka security", Default: "PLAINTEXT",
		Description: "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."},
	{Name: "KAFKA_SASL_MECHANISM", Group: "Kafka security", Default: "",
		Description: "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; required with SASL_PLAINTEXT and SASL_SSL."},
	{Name: "KAFKA_SASL_USERNAME", Group: "Kafka security", Default: "",
		Description: "SASL user name; required with SASL_PLAINTEXT and SASL_SSL."},
	{Name: "KAFKA_SASL_PASSWORD", Group: "Kafka security", Default: "", Secret: true,
		Description: "SASL password; required with SASL_PLAINTEXT and SASL_SSL. Never logged."},
	{Name: "KAFKA_TLS_CA_FILE", Group: "Kafka security", Default: "",
		Description: "PEM file of the CA that signed the brokers' certificates (SSL and SASL_SSL); empty = the system roots."},

	// Admin.
	{Name: "ADMIN_TOKEN", Group: "Admin", Default: "", Secret: true,
		Description: "When set, state-changing HTTP routes need Authorization: Bearer <token>. White space around it is ignored. Never logged."},
}

// lookupVar returns the documented variable called name. Load reads variables
// only through it, so an undocumented read panics in the tests.
func lookupVar(name string) Var {
	for _, v := range Variables {
		if v.Name == name {
			return v
		}
	}
	panic("config: variable " + name + " is not in Variables")
}
