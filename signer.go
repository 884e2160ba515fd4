package kommo

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// ContentTypeJSON is the only content type the Chat API accepts; it is part
// of every request signature.
const ContentTypeJSON = "application/json"

// DateFormat is the layout of the Date header on signed Chat API requests
// (RFC 2822 in UTC, e.g. "Tue, 13 Dec 2022 11:00:00 +0000").
const DateFormat = time.RFC1123Z

// Header names used by Chat API request signing.
const (
	HeaderDate        = "Date"
	HeaderContentType = "Content-Type"
	HeaderContentMD5  = "Content-MD5"
	HeaderSignature   = "X-Signature"
)

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
	secret []byte
	now    func() time.Time
	pool   sync.Pool // of *signState
}

type signState struct {
	mac  hash.Hash
	md5  hash.Hash
	buf  []byte
	sum  [sha1.Size]byte
	md5s [md5.Size]byte
	hex  [2 * sha1.Size]byte
}

// SignerOption configures a Signer.
type SignerOption func(*Signer)

// WithSignerClock makes the Signer take the Date header from now instead of
// time.Now. Tests use it to produce deterministic signatures.
func WithSignerClock(now func() time.Time) SignerOption {
	return func(s *Signer) {
		if now != nil {
			s.now = now
		}
	}
}

// NewSigner returns a Signer for the channel secret issued when the channel
// was registered.
func NewSigner(secret string, opts ...SignerOption) *Signer {
	s := &Signer{secret: []byte(secret), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.pool.New = func() any {
		return &signState{mac: hmac.New(sha1.New, s.secret), md5: md5.New()}
	}
	return s
}

// ErrEmptySecret is returned when a channel secret is required but empty.
var ErrEmptySecret = errors.New("kommo: empty channel secret")

// Sign sets Date (unless the request already has one, which is then signed
// as is), Content-Type, Content-MD5 and X-Signature on req. body must be the
// exact bytes that will be sent (nil or empty for GET); the signed path is
// req.URL's escaped path without the query.
func (s *Signer) Sign(req *http.Request, body []byte) error {
	if s == nil || len(s.secret) == 0 || s.pool.New == nil {
		return ErrEmptySecret
	}
	if req == nil || req.URL == nil {
		return errors.New("kommo: Sign: nil request or URL")
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	date := req.Header.Get(HeaderDate)
	if date == "" {
		date = s.now().UTC().Format(DateFormat)
	}
	st := s.pool.Get().(*signState)
	defer s.pool.Put(st)
	md5hex := st.contentMD5(body)
	sig := st.signature(req.Method, md5hex, ContentTypeJSON, date, req.URL.EscapedPath())
	// Direct map writes: the keys are already canonical.
	req.Header["Date"] = []string{date}
	req.Header["Content-Type"] = []string{ContentTypeJSON}
	req.Header["Content-Md5"] = []string{md5hex} // canonical form of Content-MD5
	req.Header["X-Signature"] = []string{sig}
	return nil
}

// Signature returns the lowercase hex HMAC-SHA1 of the Chat API string to
// sign: method, contentMD5, contentType, date and path joined by "\n".
// Servers (such as kommotest) use it to check a request.
func (s *Signer) Signature(method, contentMD5, contentType, date, path string) string {
	if s == nil || s.pool.New == nil {
		return ""
	}
	st := s.pool.Get().(*signState)
	defer s.pool.Put(st)
	return st.signature(method, contentMD5, contentType, date, path)
}

func (st *signState) contentMD5(body []byte) string {
	st.md5.Reset()
	st.md5.Write(body)
	sum := st.md5.Sum(st.md5s[:0])
	var out [2 * md5.Size]byte
	hex.Encode(out[:], sum)
	return string(out[:])
}

func (st *signState) signature(method, contentMD5, contentType, date, path string) string {
	b := st.buf[:0]
	b = appendUpper(b, method)
	b = append(b, '\n')
	b = append(b, contentMD5...)
	b = append(b, '\n')
	b = append(b, contentType...)
	b = append(b, '\n')
	b = append(b, date...)
	b = append(b, '\n')
	b = append(b, path...)
	st.buf = b
	st.mac.Reset()
	st.mac.Write(b)
	sum := st.mac.Sum(st.sum[:0])
	hex.Encode(st.hex[:], sum)
	return string(st.hex[:])
}

func appendUpper(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// String redacts the secret.
func (s *Signer) String() string { return "kommo.Signer{secret:REDACTED}" }

// GoString redacts the secret in %#v.
func (s *Signer) GoString() string { return s.String() }

// LogValue redacts the secret in log/slog output.
func (s *Signer) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// ContentMD5 returns the lowercase hex MD5 of body, the Content-MD5 value
// the Chat API expects (MD5 of "" for an empty body).
func ContentMD5(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// SignWebhookBody returns the X-Signature Kommo puts on a webhook: the
// lowercase hex HMAC-SHA1 of the raw body keyed with the channel secret.
// Use it to sign fixtures in tests.
func SignWebhookBody(body []byte, secret string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifyWebhookSignature reports whether signature (hex, any case) is the
// HMAC-SHA1 of the raw body with secret. The comparison is constant time.
// An empty secret or signature never verifies.
func VerifyWebhookSignature(body []byte, signature, secret string) bool {
	if secret == "" || len(signature) != 2*sha1.Size {
		return false
	}
	got := make([]byte, sha1.Size)
	if _, err := hex.Decode(got, []byte(signature)); err != nil {
		return false
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return subtle.ConstantTimeCompare(mac.Sum(nil), got) == 1
}
