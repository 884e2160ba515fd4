package kommo

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/kommo-go/kommo/internal/chatsign"
)

// ContentTypeJSON is the only content type the Chat API accepts; it is part
// of every request signature.
const ContentTypeJSON = "application/json"

// Signer signs Chat API (amojo) requests with a channel secret.
//
// Every request to /v2/origin/custom/... must carry Date, Content-Type,
// Content-MD5 (lowercase hex MD5 of the exact body) and X-Signature
// (lowercase hex HMAC-SHA1 of method, Content-MD5, Content-Type, Date and the
// URL path joined by "\n"; the query string is never signed).
//
// A Signer is safe for concurrent use. It never prints its secret: String,
// GoString and LogValue are redacted.
type Signer struct {
	key *chatsign.Key // nil for an empty secret or the zero Signer
	now func() time.Time
}

// SignerOption configures a Signer.
type SignerOption func(*Signer)

// WithSignerClock makes the Signer take the Date header from clk instead of
// SystemClock, the same Clock the Client takes. Tests use it to produce
// deterministic signatures. A nil clock keeps SystemClock.
func WithSignerClock(clk Clock) SignerOption {
	return func(s *Signer) {
		if clk != nil {
			s.now = clk.Now
		}
	}
}

// NewSigner returns a Signer for the channel secret issued when the channel
// was registered.
func NewSigner(secret string, opts ...SignerOption) *Signer {
	s := &Signer{now: time.Now}
	if secret != "" {
		s.key = chatsign.NewKey(secret)
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Sign sets Date (unless the request already has one, which is then signed
// as is), Content-Type, Content-MD5 and X-Signature on req. body must be the
// exact bytes that will be sent (nil or empty for GET); the signed path is
// req.URL's escaped path without the query.
func (s *Signer) Sign(req *http.Request, body []byte) error {
	if s == nil || s.key == nil {
		return ErrEmptySecret
	}
	if req == nil || req.URL == nil {
		return errors.New("kommo: Sign: nil request or URL")
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	date := req.Header.Get(chatsign.HeaderDate)
	if date == "" {
		date = s.now().UTC().Format(chatsign.DateFormat)
	}
	md5hex := chatsign.ContentMD5(body)
	sig := s.signature(req.Method, md5hex, ContentTypeJSON, date, req.URL.EscapedPath())
	// Direct map writes: the keys are already canonical.
	req.Header["Date"] = []string{date}
	req.Header["Content-Type"] = []string{ContentTypeJSON}
	req.Header["Content-Md5"] = []string{md5hex} // canonical form of Content-MD5
	req.Header["X-Signature"] = []string{sig}
	return nil
}

// signature returns the X-Signature of the Chat API string to sign
// (chatsign.StringToSign), or "" for a Signer without a secret.
func (s *Signer) signature(method, contentMD5, contentType, date, path string) string {
	if s == nil || s.key == nil {
		return ""
	}
	return s.key.Signature(method, contentMD5, contentType, date, path)
}

// String redacts the secret.
func (s *Signer) String() string { return "kommo.Signer{secret:REDACTED}" }

// GoString redacts the secret in %#v.
func (s *Signer) GoString() string { return s.String() }

// Format prints what String does for every verb, also when a Signer is
// printed by value.
func (s Signer) Format(f fmt.State, verb rune) { redactedFormat(f, verb, s.String()) }

// LogValue redacts the secret in log/slog output.
func (s *Signer) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// SignWebhookBody returns the X-Signature Kommo puts on a webhook: the
// lowercase hex HMAC-SHA1 of the raw body keyed with the channel secret.
// Use it to sign fixtures in tests.
func SignWebhookBody(body []byte, secret string) string {
	return chatsign.SignWebhookBody(body, secret)
}

// VerifyWebhookSignature reports whether signature (hex, any case) is the
// HMAC-SHA1 of the raw body with secret. The comparison is constant time.
// An empty secret or signature never verifies.
func VerifyWebhookSignature(body []byte, signature, secret string) bool {
	return chatsign.VerifyWebhookSignature(body, signature, secret)
}
