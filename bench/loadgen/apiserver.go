// apiserver.go - a test Kubernetes API server for the labeling-on memory measurements: TLS with
// a CA and a server certificate made at start (ECDSA P-256, SAN IP 127.0.0.1), HTTP/2 (net/http
// serves h2 when the TLS config offers it), one resource: PATCH /api/v1/nodes/NODE with
// `authorization: Bearer TOKEN` and `content-type: application/merge-patch+json`, answered 200
// with a small Node. It counts the PATCHes, keeps the labels each one set, and records anything
// else (wrong method, path, token, content type, protocol or body) as an error: the daemon's
// requests must be right, or the measurement is wrong. Go standard library only.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

const benchNodeName = "bench-node"

// apiPatch is one PATCH the server accepted: when, and the labels it set (a nil value removes
// the label, as JSON merge patch says).
type apiPatch struct {
	at     time.Time
	labels map[string]*string
}

type apiServer struct {
	URL       string // https://127.0.0.1:PORT
	CAFile    string
	TokenFile string
	token     string
	srv       *http.Server
	done      chan struct{}

	mu      sync.Mutex
	patches []apiPatch
	errors  []string
	changed chan struct{} // closed and replaced on every request
}

// newCert makes a certificate for |tmpl| signed by |parent| (self-signed when nil).
func newCert(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (
	*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// startAPIServer makes the PKI, writes ca.crt and token into |dir| and serves on 127.0.0.1.
func startAPIServer(dir string) (*apiServer, error) {
	ca, caKey, err := newCert(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "sgxbench test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("test CA: %v", err)
	}
	cert, key, err := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %v", err)
	}
	tokenBytes := make([]byte, 24)
	if _, err := rand.Read(tokenBytes); err != nil {
		return nil, err
	}
	s := &apiServer{
		CAFile:    filepath.Join(dir, "ca.crt"),
		TokenFile: filepath.Join(dir, "token"),
		token:     fmt.Sprintf("bench-%x", tokenBytes),
		done:      make(chan struct{}),
		changed:   make(chan struct{}),
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	if err := os.WriteFile(s.CAFile, caPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.TokenFile, []byte(s.token+"\n"), 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.URL = "https://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler: http.HandlerFunc(s.serve),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key,
				Leaf: cert}},
			NextProtos: []string{"h2"},
			MinVersion: tls.VersionTLS12,
		},
		ErrorLog: nil,
	}
	go func() {
		_ = s.srv.ServeTLS(ln, "", "") // returns on Shutdown
		close(s.done)
	}()
	return s, nil
}

// flags are the daemon's labeling flags against this server.
func (s *apiServer) flags(interval int) []string {
	return []string{"--label-node", "--node-name", benchNodeName, "--apiserver", s.URL,
		"--token-file", s.TokenFile, "--ca-file", s.CAFile,
		"--label-interval", fmt.Sprint(interval)}
}

func (s *apiServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

func (s *apiServer) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// refuse records a wrong request and answers it with |status|, as an API server would.
func (s *apiServer) refuse(w http.ResponseWriter, r *http.Request, status int, format string,
	args ...interface{}) {
	msg := fmt.Sprintf("%s %s: ", r.Method, r.URL.Path) + fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.errors = append(s.errors, msg)
	s.notify()
	s.mu.Unlock()
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":%d}`, status)
}

func (s *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	path := "/api/v1/nodes/" + benchNodeName
	if r.ProtoMajor != 2 {
		s.refuse(w, r, http.StatusBadRequest, "protocol %s, want HTTP/2", r.Proto)
		return
	}
	if r.URL.Path != path {
		s.refuse(w, r, http.StatusNotFound, "path, want %s", path)
		return
	}
	if r.Method != http.MethodPatch {
		s.refuse(w, r, http.StatusMethodNotAllowed, "method, want PATCH")
		return
	}
	if got := r.Header.Get("authorization"); got != "Bearer "+s.token {
		s.refuse(w, r, http.StatusUnauthorized, "authorization %q, want the bearer token",
			got)
		return
	}
	if ct := r.Header.Get("content-type"); ct != "application/merge-patch+json" {
		s.refuse(w, r, http.StatusUnsupportedMediaType, "content-type %q", ct)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, "body: %v", err)
		return
	}
	var patch struct {
		Metadata struct {
			Labels map[string]*string `json:"labels"`
		} `json:"metadata"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&patch); err != nil || len(patch.Metadata.Labels) == 0 {
		s.refuse(w, r, http.StatusUnprocessableEntity, "body %q: %v, want "+
			`{"metadata":{"labels":{...}}}`, body, err)
		return
	}
	s.mu.Lock()
	s.patches = append(s.patches, apiPatch{at: time.Now(), labels: patch.Metadata.Labels})
	s.notify()
	s.mu.Unlock()

	set := map[string]string{"kubernetes.io/hostname": benchNodeName}
	for k, v := range patch.Metadata.Labels {
		if v != nil {
			set[k] = *v
		}
	}
	node := map[string]interface{}{
		"kind": "Node", "apiVersion": "v1",
		"metadata": map[string]interface{}{"name": benchNodeName, "labels": set,
			"resourceVersion": fmt.Sprint(len(s.patches))},
	}
	out, _ := json.Marshal(node)
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// counts: PATCHes accepted and requests refused so far.
func (s *apiServer) counts() (patches int, errs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.patches), append([]string(nil), s.errors...)
}

// waitPatch waits until a PATCH accepted at or after |since| satisfies |ok|, and returns when it
// arrived; it fails on timeout or once a request was refused.
func (s *apiServer) waitPatch(since time.Time, timeout time.Duration,
	ok func(labels map[string]*string) bool) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		if len(s.errors) > 0 {
			err := fmt.Errorf("the API server refused a request: %s", s.errors[0])
			s.mu.Unlock()
			return time.Time{}, err
		}
		for _, p := range s.patches {
			if !p.at.Before(since) && ok(p.labels) {
				s.mu.Unlock()
				return p.at, nil
			}
		}
		ch := s.changed
		n := len(s.patches)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return time.Time{}, fmt.Errorf("no matching PATCH within %v (%d PATCHes in all)",
				timeout, n)
		}
	}
}

// sgxLabel says whether a patch sets (true) or removes (false) the sgx.k8s.io/sgx label.
func sgxLabel(want bool) func(map[string]*string) bool {
	return func(labels map[string]*string) bool {
		v, present := labels["sgx.k8s.io/sgx"]
		if !present {
			return false
		}
		if want {
			return v != nil && *v == "true"
		}
		return v == nil
	}
}
