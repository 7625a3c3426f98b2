package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/store/storetest"
)

// selfSigned writes a throwaway certificate for 127.0.0.1 and returns the
// cert and key paths and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "driftlock test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	dsn := storetest.NewDatabase(t)
	certFile, keyFile, pool := selfSigned(t)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"serve", "--dsn", dsn, "--addr", "127.0.0.1:0", "--search-index=false",
			"--tls-cert", certFile, "--tls-key", keyFile}, stdout, stderr)
	}()
	re := regexp.MustCompile(`listening on https://([0-9.:]+)/`)
	var addr string
	for range 400 {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		case <-time.After(25 * time.Millisecond):
		}
	}
	if addr == "" {
		t.Fatalf("serve never listened on https; stdout %q stderr %s", stdout.String(), stderr.String())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("https request: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Fatalf("healthz over TLS: %d tls=%v", res.StatusCode, res.TLS != nil)
	}
	// Plain HTTP to the TLS port gets no API answer.
	if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Fatal("plain HTTP was served on the TLS port")
		}
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
}

func TestServeTLSFlagErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--dsn", "postgres://x@127.0.0.1:1/x", "--tls-cert", "/no/cert.pem"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--tls-key") {
		t.Fatalf("cert without key: exit %d %q", code, errb.String())
	}
	certFile, _, _ := selfSigned(t)
	errb.Reset()
	if code := run([]string{"serve", "--dsn", "postgres://x@127.0.0.1:1/x", "--tls-cert", certFile, "--tls-key", "/no/key.pem"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "TLS key pair") {
		t.Fatalf("missing key file: exit %d %q", code, errb.String())
	}
}
