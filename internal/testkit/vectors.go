package testkit

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// SignatureVectors are the known-answer vectors of the module's
// testdata/signatures.json, as Vectors returns them.
type SignatureVectors struct {
	// Requests are signed Chat API requests.
	Requests []RequestVector `json:"requests"`
	// Webhooks are signed webhook bodies.
	Webhooks []WebhookVector `json:"webhooks"`
	// Note describes the file.
	Note string `json:"note"`
}

// RequestVector is one signed Chat API request: signing Method,
// ContentMD5, ContentType, Date and Path with Secret gives Signature.
type RequestVector struct {
	// Name identifies the vector ("history", "connect", ...).
	Name string `json:"name"`
	// Secret is the channel secret that signs the request.
	Secret string `json:"secret"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path is the request path without the query string.
	Path string `json:"path"`
	// Query is the raw query string, sent but never signed ("" for none).
	Query string `json:"query"`
	// ContentType is the Content-Type header.
	ContentType string `json:"content_type"`
	// Date is the Date header, in time.RFC1123Z (UTC).
	Date string `json:"date"`
	// Body is the exact request body ("" for none).
	Body string `json:"body"`
	// ContentMD5 is the Content-MD5 header: hex MD5 of Body.
	ContentMD5 string `json:"content_md5"`
	// Signature is the X-Signature header.
	Signature string `json:"signature"`
	// Source says where the vector comes from.
	Source string `json:"source"`
}

// WebhookVector is one webhook body with its X-Signature.
type WebhookVector struct {
	// Name identifies the vector.
	Name string `json:"name"`
	// Secret is the channel secret.
	Secret string `json:"secret"`
	// Body is the exact webhook body.
	Body string `json:"body"`
	// Signature is the X-Signature header sent with Body.
	Signature string `json:"signature"`
	// Source says where the vector comes from.
	Source string `json:"source"`
	// Valid reports whether Signature is the right signature of Body.
	Valid bool `json:"valid"`
}

// Vectors reads the module's testdata/signatures.json, found by walking up
// from the working directory to the directory holding go.mod, so it works
// from the tests of any package of the module. It fails the test if the
// file cannot be read or decoded, or has no request or no webhook vector.
func Vectors(t testing.TB) SignatureVectors {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("testkit: vectors: %v", err)
		return SignatureVectors{}
	}
	name := filepath.Join(root, FixtureDir, "signatures.json")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("testkit: vectors: %v", err)
		return SignatureVectors{}
	}
	var v SignatureVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("testkit: vectors %s: %v", name, err)
		return SignatureVectors{}
	}
	if len(v.Requests) == 0 || len(v.Webhooks) == 0 {
		t.Fatalf("testkit: vectors %s: %d request and %d webhook vectors, want at least one of each", name, len(v.Requests), len(v.Webhooks))
	}
	return v
}

// Request returns the request vector called name, failing the test if
// there is none.
func (v SignatureVectors) Request(t testing.TB, name string) RequestVector {
	t.Helper()
	for _, r := range v.Requests {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("testkit: no request vector %q", name)
	return RequestVector{}
}

// moduleRoot returns the nearest directory at or above the working
// directory that holds a go.mod file.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !fi.IsDir() {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}
