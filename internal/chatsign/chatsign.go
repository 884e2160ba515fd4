// Package chatsign holds the signing primitives of the Kommo Chat API
// (amojo): the header names and Date layout, Content-MD5, the string to
// sign, the request X-Signature and the webhook body signature.
//
// It is the one implementation shared by the SDK's kommo.Signer, the fake
// server kommotest and the command-line tool (cmd/kommo sign prints
// StringToSign), so that the client, the server that checks it and the tool
// that explains it can never disagree.
//
// Request signing (spec §1): every Chat API request carries Date,
// Content-Type, Content-MD5 (lowercase hex MD5 of the exact body) and
// X-Signature, the lowercase hex HMAC-SHA1, keyed with the channel secret,
// of StringToSign(method, Content-MD5, Content-Type, Date, path). The path
// is the URL's escaped path without the query string.
//
// Webhook signing (spec §3): Kommo's X-Signature on a webhook is the
// lowercase hex HMAC-SHA1 of the raw body keyed with the channel secret.
package chatsign

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"log/slog"
	"sync"
	"time"
)

// Header names used by Chat API request signing. HeaderSignature is also
// the header that carries a webhook's signature.
const (
	// HeaderDate carries the request date; it is signed as sent.
	HeaderDate = "Date"
	// HeaderContentType carries the body's media type; it is signed as sent.
	HeaderContentType = "Content-Type"
	// HeaderContentMD5 carries ContentMD5 of the body.
	HeaderContentMD5 = "Content-MD5"
	// HeaderSignature carries the hex HMAC-SHA1 signature.
	HeaderSignature = "X-Signature"
)

// ContentTypeJSON is the only content type the Chat API accepts; it is part
// of every request signature.
const ContentTypeJSON = "application/json"

// DateFormat is the layout of the Date header on signed Chat API requests
// (RFC 2822 in UTC, e.g. "Tue, 13 Dec 2022 11:00:00 +0000"). Format a time
// in UTC with it to get the "+0000" form.
const DateFormat = time.RFC1123Z

// ContentMD5 returns the lowercase hex MD5 of body, the Content-MD5 value
// the Chat API expects (MD5 of "" for an empty or nil body). It is hex, not
// the RFC 1864 base64 form.
func ContentMD5(body []byte) string {
	sum := md5.Sum(body)
	var out [2 * md5.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// StringToSign returns the Chat API string to sign: the upper-cased
// method, contentMD5, contentType, date and path joined by "\n", with no
// trailing newline. The values are used exactly as they are sent in the
// headers; path is the URL's escaped path without the query string.
func StringToSign(method, contentMD5, contentType, date, path string) string {
	return string(AppendStringToSign(nil, method, contentMD5, contentType, date, path))
}

// AppendStringToSign appends StringToSign(method, contentMD5, contentType,
// date, path) to dst and returns the extended buffer.
func AppendStringToSign(dst []byte, method, contentMD5, contentType, date, path string) []byte {
	dst = appendUpper(dst, method)
	dst = append(dst, '\n')
	dst = append(dst, contentMD5...)
	dst = append(dst, '\n')
	dst = append(dst, contentType...)
	dst = append(dst, '\n')
	dst = append(dst, date...)
	dst = append(dst, '\n')
	dst = append(dst, path...)
	return dst
}

// appendUpper appends s to b with ASCII lowercase letters upper-cased.
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

// Sign returns the X-Signature of stringToSign: its lowercase hex
// HMAC-SHA1 keyed with secret. It builds a new HMAC on every call; use a
// Key to sign many requests with the same secret.
func Sign(secret, stringToSign string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(stringToSign))
	var sum [sha1.Size]byte
	var out [2 * sha1.Size]byte
	hex.Encode(out[:], mac.Sum(sum[:0]))
	return string(out[:])
}

// Key signs Chat API requests with one channel secret. It keeps a pool of
// HMAC-SHA1 states and buffers, so signing allocates only the result.
//
// A Key must be made with NewKey. It is safe for concurrent use and never
// prints its secret: String, GoString and LogValue are redacted.
type Key struct {
	pool sync.Pool // of *keyState
}

// keyState is one pooled signing state of a Key.
type keyState struct {
	mac hash.Hash
	buf []byte
	sum [sha1.Size]byte
	hex [2 * sha1.Size]byte
}

// NewKey returns a Key for the channel secret.
func NewKey(secret string) *Key {
	k := &Key{}
	b := []byte(secret)
	k.pool.New = func() any { return &keyState{mac: hmac.New(sha1.New, b)} }
	return k
}

// Sign returns the X-Signature of stringToSign, like the package-level
// Sign with the Key's secret.
func (k *Key) Sign(stringToSign string) string {
	st := k.pool.Get().(*keyState)
	defer k.pool.Put(st)
	st.buf = append(st.buf[:0], stringToSign...)
	return st.sign()
}

// Signature returns the X-Signature of a request: the lowercase hex
// HMAC-SHA1 of StringToSign(method, contentMD5, contentType, date, path)
// keyed with the Key's secret. It does not build the string to sign as a
// string, so it allocates only the result.
func (k *Key) Signature(method, contentMD5, contentType, date, path string) string {
	st := k.pool.Get().(*keyState)
	defer k.pool.Put(st)
	st.buf = AppendStringToSign(st.buf[:0], method, contentMD5, contentType, date, path)
	return st.sign()
}

// sign returns the lowercase hex HMAC-SHA1 of st.buf.
func (st *keyState) sign() string {
	st.mac.Reset()
	st.mac.Write(st.buf)
	hex.Encode(st.hex[:], st.mac.Sum(st.sum[:0]))
	return string(st.hex[:])
}

// String redacts the secret.
func (k *Key) String() string { return "chatsign.Key{secret:REDACTED}" }

// GoString redacts the secret in %#v.
func (k *Key) GoString() string { return k.String() }

// LogValue redacts the secret in log/slog output.
func (k *Key) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// SignWebhookBody returns the X-Signature Kommo puts on a webhook: the
// lowercase hex HMAC-SHA1 of the raw body keyed with the channel secret.
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
