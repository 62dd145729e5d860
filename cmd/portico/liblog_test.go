package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key into dir.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestProcessLogIsAllJSON runs the binary with the libraries that log on
// their own made as chatty as they get — quic-go (HTTP/3 listener,
// QUIC_GO_LOG_LEVEL), grpc-go (OTLP/gRPC exporter to a closed port,
// GRPC_GO_LOG_SEVERITY_LEVEL=info), OpenTelemetry (failed exports) — and
// checks that every line on stderr is a JSON object, with library output
// among them.
func TestProcessLogIsAllJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	addr, admin, collector := freePort(t), freePort(t), freePort(t)
	cfg := fmt.Sprintf(`server:
  listen: [{addr: %q, http3: true, tls: {certificates: [{cert_file: %q, key_file: %q}]}}]
  shutdown_grace: 2s
admin: {listen: %q}
log: {access: {output: "off"}}
tracing: {exporter: otlp_grpc, endpoint: %q, insecure: true, sampler: always}
routes:
  - {name: v, match: {path: /v}, respond: {body: ok}}
`, addr, certFile, keyFile, admin, collector)
	file := filepath.Join(dir, "portico.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", "--config", file)
	cmd.Env = append(os.Environ(), "QUIC_GO_LOG_LEVEL=debug", "GRPC_GO_LOG_SEVERITY_LEVEL=info", "GRPC_GO_LOG_VERBOSITY_LEVEL=2")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := make(chan string, 10000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	var all []string
	deadline := time.After(20 * time.Second)
	for started := false; !started; {
		select {
		case l := <-lines:
			all = append(all, l)
			started = strings.Contains(l, "portico started")
		case <-deadline:
			t.Fatalf("not started; log:\n%s", strings.Join(all, "\n"))
		}
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for range 3 {
		if resp, err := c.Get("https://" + addr + "/v"); err == nil {
			resp.Body.Close()
		}
	}
	// Not TLS at all: net/http reports a handshake error.
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		conn.Close()
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	for drained := false; !drained; {
		select {
		case l := <-lines:
			all = append(all, l)
		default:
			drained = true
		}
	}
	library := 0
	for _, l := range all {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("stderr line is not JSON: %q", l)
			continue
		}
		if m["logger"] != nil || m["dependency"] == "opentelemetry" {
			library++
		}
	}
	if library == 0 {
		t.Errorf("no library log line among %d lines:\n%s", len(all), strings.Join(all, "\n"))
	}
	t.Logf("%d lines, %d from libraries", len(all), library)
}
