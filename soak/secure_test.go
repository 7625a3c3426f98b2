package soak

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/driftlock/driftlock/exporter/driftlockexporter"
	"github.com/driftlock/driftlock/internal/proctest"
	"github.com/driftlock/driftlock/internal/store/storetest"
	"github.com/driftlock/driftlock/internal/testutil"
)

// pki is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, written as PEM files into a test folder.
type pki struct {
	dir                       string
	caFile, certFile, keyFile string
	clientCert                tls.Certificate
	pool                      *x509.CertPool
	otherClient               tls.Certificate // signed by a CA the server does not trust
}

// lockedBuffer collects a child process's output while the test reads it.
type lockedBuffer = proctest.SyncBuffer

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

func newCA(t *testing.T, name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return key, cert, der
}

func leaf(t *testing.T, caKey *ecdsa.PrivateKey, ca *x509.Certificate, serial int64, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "driftlock-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	return key, der
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	caKey, ca, caDER := newCA(t, "driftlock test CA")
	p.caFile = filepath.Join(p.dir, "ca.crt")
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca)

	sk, sder := leaf(t, caKey, ca, 2, x509.ExtKeyUsageServerAuth)
	p.certFile, p.keyFile = filepath.Join(p.dir, "server.crt"), filepath.Join(p.dir, "server.key")
	writePEM(t, p.certFile, "CERTIFICATE", sder)
	skDER, err := x509.MarshalECPrivateKey(sk)
	require.NoError(t, err)
	writePEM(t, p.keyFile, "EC PRIVATE KEY", skDER)

	ck, cder := leaf(t, caKey, ca, 3, x509.ExtKeyUsageClientAuth)
	p.clientCert = tls.Certificate{Certificate: [][]byte{cder}, PrivateKey: ck}

	otherKey, other, _ := newCA(t, "someone else's CA")
	ok, oder := leaf(t, otherKey, other, 4, x509.ExtKeyUsageClientAuth)
	p.otherClient = tls.Certificate{Certificate: [][]byte{oder}, PrivateKey: ok}
	return p
}

func repoRoot(t *testing.T) string { return testutil.RepoRoot(t) }

// distro is $OTELCOL_DRIFTLOCK_BIN (e.g. bin/otelcol-driftlock after make
// build) or cmd/otelcol-driftlock built once per test run.
var distro = testutil.Binary{Pkg: "./cmd/otelcol-driftlock", Env: "OTELCOL_DRIFTLOCK_BIN"}

func collectorBin(t *testing.T) string { return distro.Path(t) }

func TestMain(m *testing.M) {
	storetest.Announce()
	code := m.Run()
	distro.Remove()
	os.Exit(code)
}

func freePort(t *testing.T) int { return testutil.FreePort(t) }

// config/secure-collector.yaml is accepted by `validate` as shipped (its
// defaults point at files that need not exist yet), and the collector it
// describes, started with a throwaway CA, takes OTLP only over mutual TLS:
// a client certificate from that CA gets through; plaintext, no client
// certificate, a certificate from another CA and TLS 1.2 are refused.
func TestSecureCollectorConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the collector distribution; skipped under -short")
	}
	bin := collectorBin(t)
	cfgPath := filepath.Join(repoRoot(t), "config", "secure-collector.yaml")
	out, err := exec.Command(bin, "validate", "--config", cfgPath).CombinedOutput()
	require.NoError(t, err, "validate: %s", out)

	p := newPKI(t)
	grpcPort, httpPort, health, metrics := freePort(t), freePort(t), freePort(t), freePort(t)
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Env = append(os.Environ(),
		"DRIFTLOCK_TLS_CERT="+p.certFile, "DRIFTLOCK_TLS_KEY="+p.keyFile, "DRIFTLOCK_TLS_CLIENT_CA="+p.caFile,
		"DRIFTLOCK_OTLP_GRPC_ENDPOINT=127.0.0.1:"+strconv.Itoa(grpcPort),
		"DRIFTLOCK_OTLP_HTTP_ENDPOINT=127.0.0.1:"+strconv.Itoa(httpPort),
		"DRIFTLOCK_HEALTH_PORT="+strconv.Itoa(health), "DRIFTLOCK_METRICS_PORT="+strconv.Itoa(metrics),
		"DRIFTLOCK_STATE_DIR="+t.TempDir(),
		// Nothing listens there: records wait in the persistent queue.
		"DRIFTLOCK_DB_HOST=127.0.0.1", "DRIFTLOCK_DB_PORT="+strconv.Itoa(freePort(t)),
	)
	logs := new(lockedBuffer)
	cmd.Stdout, cmd.Stderr = logs, logs
	proc, err := proctest.Start(cmd)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proc.Stop(syscall.SIGTERM, 30*time.Second) })
	require.NoError(t, proc.WaitHealthy(context.Background(), health, 30*time.Second), "collector not healthy:\n%s", logs.String())

	addr := "127.0.0.1:" + strconv.Itoa(grpcPort)
	send := func(creds grpc.DialOption) error {
		conn, err := grpc.NewClient(addr, creds)
		require.NoError(t, err)
		defer conn.Close()
		g := NewGenerator(1, 1000, 0)
		ld, _ := g.Next(3, time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
		return err
	}
	mtls := func(certs []tls.Certificate, maxVersion uint16) grpc.DialOption {
		return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			RootCAs: p.pool, Certificates: certs, MaxVersion: maxVersion, MinVersion: tls.VersionTLS12,
		}))
	}
	require.NoError(t, send(mtls([]tls.Certificate{p.clientCert}, 0)), "mutual TLS with a trusted client certificate")
	require.Error(t, send(grpc.WithTransportCredentials(insecure.NewCredentials())), "plaintext")
	require.Error(t, send(mtls(nil, 0)), "TLS without a client certificate")
	require.Error(t, send(mtls([]tls.Certificate{p.otherClient}, 0)), "client certificate from an untrusted CA")
	require.Error(t, send(mtls([]tls.Certificate{p.clientCert}, tls.VersionTLS12)), "TLS 1.2 (min_version is 1.3)")

	// OTLP/HTTP: the same rules.
	client := func(certs []tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: p.pool, Certificates: certs}}}
	}
	body := strings.NewReader("{}")
	resp, err := client([]tls.Certificate{p.clientCert}).Post(fmt.Sprintf("https://127.0.0.1:%d/v1/logs", httpPort), "application/json", body)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = client(nil).Post(fmt.Sprintf("https://127.0.0.1:%d/v1/logs", httpPort), "application/json", strings.NewReader("{}"))
	require.Error(t, err, "OTLP/HTTP without a client certificate")
	// Plaintext: Go's TLS listener answers 400 "Client sent an HTTP
	// request to an HTTPS server" without passing it on.
	resp, err = http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/logs", httpPort), "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "OTLP/HTTP in plaintext")
	}
}

// sslmode is honored: the exporter told to verify the server's certificate
// refuses to talk to a PostgreSQL that does not offer TLS (the throwaway
// server runs without it) instead of falling back to plaintext.
func TestExporterHonorsSSLMode(t *testing.T) {
	_, dsn := storetest.Open(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	f := driftlockexporter.NewFactory()
	for _, mode := range []string{"require", "verify-full"} {
		q := u.Query()
		q.Set("sslmode", mode)
		u.RawQuery = q.Encode()
		cfg := f.CreateDefaultConfig().(*driftlockexporter.Config)
		cfg.DSN = configopaque.String(u.String())
		cfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
		cfg.BackOffConfig.Enabled = false
		cfg.Retention = 0
		cfg.MigrateOnStart = false
		require.NoError(t, cfg.Validate())
		exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
		require.NoError(t, err)
		require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
		ld, _ := NewGenerator(1, 0, 0).Next(2, time.Now())
		flag(ld)
		err = exp.ConsumeLogs(context.Background(), ld)
		require.Error(t, err, "sslmode=%s against a server without TLS must fail", mode)
		require.Contains(t, strings.ToLower(err.Error()), "tls", "sslmode=%s: %v", mode, err)
		require.NoError(t, exp.Shutdown(context.Background()))
	}
}
