package kommotest

import (
	"crypto/hmac"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/kommo-go/kommo/internal/chatsign"
)

// parseDate accepts the RFC 2822 forms clients send ("+0000" or "GMT").
func parseDate(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 -0700", time.RFC850, time.ANSIC} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// verifyChat checks a Chat API request like Kommo: the four signing headers,
// a JSON content type, the Date window, Content-MD5 against the body and
// X-Signature against the channel secret. It returns 0 when all pass.
func (s *Server) verifyChat(r *http.Request, body []byte) (int, string, string) {
	h := r.Header
	var missing []string
	for _, k := range []string{chatsign.HeaderDate, chatsign.HeaderContentType, chatsign.HeaderContentMD5, chatsign.HeaderSignature} {
		if h.Get(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return http.StatusForbidden, "signature", "missing required headers: " + strings.Join(missing, ", ")
	}
	ctype := h.Get(chatsign.HeaderContentType)
	if mt, _, err := mime.ParseMediaType(ctype); err != nil || mt != chatsign.ContentTypeJSON {
		return http.StatusBadRequest, "content_type", "Content-Type must be application/json"
	}
	date := h.Get(chatsign.HeaderDate)
	d, ok := parseDate(date)
	if !ok {
		return http.StatusForbidden, "date", "Date header is not an RFC 2822 date"
	}
	if now := s.now(); d.Before(now.Add(-SignatureWindow)) || d.After(now.Add(SignatureWindow)) {
		return http.StatusForbidden, "date", "Date header is outside the 15-minute signature window"
	}
	md5 := h.Get(chatsign.HeaderContentMD5)
	if md5 != chatsign.ContentMD5(body) {
		return http.StatusForbidden, "content_md5", "Content-MD5 does not match the request body"
	}
	want := s.signKey.Signature(r.Method, md5, ctype, date, r.URL.EscapedPath())
	if !hmac.Equal([]byte(strings.ToLower(h.Get(chatsign.HeaderSignature))), []byte(want)) {
		return http.StatusForbidden, "signature", "X-Signature does not match"
	}
	return 0, "", ""
}

func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkBearer returns "" for a valid bearer token, else why it is not.
func (s *Server) checkBearer(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "Bearer ") || strings.TrimSpace(auth[7:]) == "" {
		return "missing bearer token"
	}
	tok := strings.TrimSpace(auth[7:])
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	switch {
	case !ok:
		return "invalid or revoked access token"
	case !exp.IsZero() && !s.now().Before(exp):
		return "access token expired"
	case s.acct.otherAccount(tok, r):
		return "access token of another account"
	}
	return ""
}

// RevokeAccessToken makes the CRM endpoints reject tok with 401, as after
// the integration is uninstalled or a long-lived token is revoked.
func (s *Server) RevokeAccessToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, tok)
}
