package listener

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/listener/listenertest"
)

// copyFile copies src to dst (replacing dst's content in place).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.WriteFile(dst, listenertest.ReadFile(t, src), 0o600); err != nil {
		t.Fatal(err)
	}
}

// echoServer accepts TLS connections with cfg and echoes lines back until
// the test ends.
func echoServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				tc := tls.Server(conn, cfg)
				r := bufio.NewReader(tc)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := tc.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// echo sends one line over conn and checks that it comes back.
func echo(t *testing.T, conn *tls.Conn, line string) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(line + "\n")); err != nil {
		t.Fatalf("write on the open connection: %v", err)
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Fatalf("echo on the open connection = %q, %v", got, err)
	}
}

// servedCert dials addr and returns the certificate the server presents.
func servedCert(t *testing.T, addr string, roots *x509.CertPool) *tls.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return conn
}

func TestReloadSwapsServerCertificateKeepingOpenConnections(t *testing.T) {
	a, b := newDevPKI(t), newDevPKI(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	copyFile(t, a.ServerCert, certFile)
	copyFile(t, a.ServerKey, keyFile)
	log, logs := logBuffer()
	s, err := NewServer(ServerOptions{CertFile: certFile, KeyFile: keyFile, ReloadInterval: 20 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	addr := echoServer(t, s.TLSConfig())
	roots, err := LoadCertPool(a.CACert, b.CACert)
	if err != nil {
		t.Fatal(err)
	}
	served := func() []byte {
		conn := servedCert(t, addr, roots)
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw
	}

	open := servedCert(t, addr, roots)
	defer open.Close()
	echo(t, open, "before")
	if !bytes.Equal(served(), listenertest.ReadCert(t, a.ServerCert).Raw) {
		t.Fatal("the server does not present certificate a")
	}

	// Replace the files; Run notices the change.
	copyFile(t, b.ServerKey, keyFile)
	copyFile(t, b.ServerCert, certFile)
	deadline := time.Now().Add(5 * time.Second)
	for !bytes.Equal(served(), listenertest.ReadCert(t, b.ServerCert).Raw) {
		if time.Now().After(deadline) {
			t.Fatalf("certificate b not served 5 s after the files changed; log:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	echo(t, open, "after the reload") // the open connection keeps working

	// A broken certificate file is rejected and b stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("Reload of a broken certificate = %v, want an error naming %s", err, certFile)
	}
	time.Sleep(100 * time.Millisecond) // Run sees the change too and logs it
	if !bytes.Equal(served(), listenertest.ReadCert(t, b.ServerCert).Raw) {
		t.Error("a broken file replaced the served certificate")
	}
	if !strings.Contains(logs.String(), "reload rejected") {
		t.Errorf("the rejected reload was not logged:\n%s", logs)
	}
	echo(t, open, "still open")
}

func TestReloadClientCAs(t *testing.T) {
	a, b := newDevPKI(t, "alice"), newDevPKI(t, "bob")
	caFile := filepath.Join(t.TempDir(), "clients-ca.pem")
	copyFile(t, a.CACert, caFile)
	log, _ := logBuffer()
	s, err := NewServer(ServerOptions{CertFile: a.ServerCert, KeyFile: a.ServerKey, ClientAuth: ClientAuthRequire,
		ClientCAFiles: []string{caFile}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	accept(t, s, a.CACert, a.Clients["alice"])
	refuse(t, s, a.CACert, b.Clients["bob"], "unknown authority")

	bundle := append(listenertest.ReadFile(t, a.CACert), listenertest.ReadFile(t, b.CACert)...)
	if err := os.WriteFile(caFile, bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	accept(t, s, a.CACert, b.Clients["bob"])

	if err := os.WriteFile(caFile, []byte("no certificates here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("a CA file without certificates was accepted")
	}
	accept(t, s, a.CACert, b.Clients["bob"]) // the previous bundle stays
	accept(t, s, a.CACert, a.Clients["alice"])
}
