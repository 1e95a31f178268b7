package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/kafka"
)

const secretPassword = "s3cr3t-Pa55"

// clientTestCluster starts a one-node kfake cluster with topic "t" and
// stops it when the test ends.
func clientTestCluster(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "t")}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// clientTestClient builds a kgo client from cfg and closes it when the test ends.
func clientTestClient(t *testing.T, cfg kafka.Config, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts, err := cfg.ClientOpts()
	if err != nil {
		t.Fatalf("ClientOpts: %v", err)
	}
	opts = append(opts, kgo.RequestTimeoutOverhead(5*time.Second), kgo.DialTimeout(5*time.Second))
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// roundTrip produces one record to topic "t" and reads it back.
func roundTrip(t *testing.T, cfg kafka.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prod := clientTestClient(t, cfg)
	want := fmt.Sprintf("hello %d", time.Now().UnixNano())
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte(want)}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cons := clientTestClient(t, cfg, kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fetches := cons.PollFetches(ctx)
	if err := fetches.Err0(); err != nil {
		t.Fatalf("consume: %v", err)
	}
	recs := fetches.Records()
	if len(recs) == 0 || string(recs[0].Value) != want {
		t.Fatalf("consumed %d records, want first value %q", len(recs), want)
	}
}

// selfSignedCA writes a self-signed certificate for 127.0.0.1 to dir and
// returns the PEM path and the server TLS config using it.
func selfSignedCA(t *testing.T) (string, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "orderd test broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

func TestClientOptsRejectsBadSettings(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := kafka.Config{Brokers: []string{"127.0.0.1:9092"}, SASLUsername: "u", SASLPassword: secretPassword}
	tests := []struct {
		name    string
		edit    func(*kafka.Config)
		wantVar string
	}{
		{"no brokers", func(c *kafka.Config) { c.Brokers = nil }, "KAFKA_BROKER_URL"},
		{"unknown protocol", func(c *kafka.Config) { c.SecurityProtocol = "SSL_SASL" }, "KAFKA_SECURITY_PROTOCOL"},
		{"unknown mechanism", func(c *kafka.Config) {
			c.SecurityProtocol, c.SASLMechanism = "SASL_PLAINTEXT", "GSSAPI"
		}, "KAFKA_SASL_MECHANISM"},
		{"sasl without user", func(c *kafka.Config) {
			c.SecurityProtocol, c.SASLUsername = "SASL_SSL", ""
		}, "KAFKA_SASL_USERNAME"},
		{"missing CA file", func(c *kafka.Config) {
			c.SecurityProtocol, c.TLSCAFile = "SSL", filepath.Join(dir, "absent.pem")
		}, "KAFKA_TLS_CA_FILE"},
		{"CA file without PEM", func(c *kafka.Config) {
			c.SecurityProtocol, c.TLSCAFile = "SASL_SSL", notPEM
		}, "KAFKA_TLS_CA_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.edit(&cfg)
			_, err := cfg.ClientOpts()
			if err == nil {
				t.Fatal("ClientOpts succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantVar) {
				t.Errorf("error %q does not name %s", err, tt.wantVar)
			}
			if strings.Contains(err.Error(), secretPassword) {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

func TestClientOptsAcceptsEveryProtocol(t *testing.T) {
	caFile, _ := selfSignedCA(t)
	for _, protocol := range []string{"", "PLAINTEXT", "plaintext", "SSL", "SASL_PLAINTEXT", "SASL_SSL"} {
		for _, mech := range []string{"", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
			t.Run(protocol+"/"+mech, func(t *testing.T) {
				cfg := kafka.Config{
					Brokers: []string{"127.0.0.1:9092"}, SecurityProtocol: protocol, SASLMechanism: mech,
					SASLUsername: "u", SASLPassword: "p", TLSCAFile: caFile,
				}
				opts, err := cfg.ClientOpts()
				if err != nil {
					t.Fatalf("ClientOpts: %v", err)
				}
				if len(opts) == 0 {
					t.Fatal("no options returned")
				}
			})
		}
	}
}

func TestClientOptsSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			addr := clientTestCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "orderd", secretPassword))
			cfg := kafka.Config{
				Brokers: []string{addr}, SecurityProtocol: "SASL_PLAINTEXT",
				SASLMechanism: mech, SASLUsername: "orderd", SASLPassword: secretPassword,
			}
			t.Run("right password", func(t *testing.T) { roundTrip(t, cfg) })
			t.Run("wrong password", func(t *testing.T) {
				bad := cfg
				bad.SASLPassword = "wrong"
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				// Kafka answers SASL_AUTHENTICATION_FAILED; kfake drops
				// the connection instead. Either way the ping fails, and
				// it fails because of the credentials, not a timeout.
				err := clientTestClient(t, bad).Ping(ctx)
				if err == nil {
					t.Fatal("Ping with a wrong password succeeded")
				}
				if ctx.Err() != nil {
					t.Fatalf("Ping = %v only after the deadline", err)
				}
			})
			t.Run("no credentials", func(t *testing.T) {
				plain := kafka.Config{Brokers: []string{addr}}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err := clientTestClient(t, plain).Ping(ctx)
				if err == nil {
					t.Fatal("Ping without SASL succeeded on a SASL broker")
				}
				t.Logf("Ping without SASL: %v", err)
			})
		})
	}
}

func TestClientOptsTLS(t *testing.T) {
	caFile, serverTLS := selfSignedCA(t)
	addr := clientTestCluster(t, kfake.TLS(serverTLS))

	t.Run("with CA file", func(t *testing.T) {
		roundTrip(t, kafka.Config{Brokers: []string{addr}, SecurityProtocol: "SSL", TLSCAFile: caFile})
	})
	t.Run("without CA file", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := clientTestClient(t, kafka.Config{Brokers: []string{addr}, SecurityProtocol: "SSL"}).Ping(ctx)
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Fatalf("Ping = %v, want a certificate verification error", err)
		}
	})
	t.Run("plaintext client", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := clientTestClient(t, kafka.Config{Brokers: []string{addr}}).Ping(ctx); err == nil {
			t.Fatal("plaintext Ping to a TLS broker succeeded")
		}
	})
}

func TestClientOptsSASLSSL(t *testing.T) {
	caFile, serverTLS := selfSignedCA(t)
	addr := clientTestCluster(t, kfake.TLS(serverTLS), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "orderd", secretPassword))
	roundTrip(t, kafka.Config{
		Brokers: []string{addr}, SecurityProtocol: "SASL_SSL", TLSCAFile: caFile,
		SASLMechanism: "SCRAM-SHA-512", SASLUsername: "orderd", SASLPassword: secretPassword,
	})
}

func TestConfigNeverPrintsPassword(t *testing.T) {
	cfg := kafka.Config{Brokers: []string{"b:9092"}, SASLUsername: "orderd", SASLPassword: secretPassword}
	var sb strings.Builder
	slog.New(slog.NewJSONHandler(&sb, nil)).Info("config", "kafka", cfg)
	slog.New(slog.NewTextHandler(&sb, nil)).Info("config", "kafka", cfg)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", cfg),
		"%+v":  fmt.Sprintf("%+v", cfg),
		"%#v":  fmt.Sprintf("%#v", cfg),
		"slog": sb.String(),
	}
	for format, out := range outputs {
		if strings.Contains(out, secretPassword) {
			t.Errorf("%s output leaks the password: %s", format, out)
		}
		if !strings.Contains(out, "orderd") {
			t.Errorf("%s output lost the user name: %s", format, out)
		}
	}
}
