package kommotest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"strconv"
)

// NewUninstallRequest returns the GET Kommo sends to the integration's
// uninstall URL when the account disables the integration: query
// client_uuid (the OAuth client id), account_id (the CRM account id) and
// signature, the hex HMAC-SHA256 of "{client_id}|{account_id}" keyed with
// the OAuth client secret. It changes no state; DeliverUninstall also
// revokes the account's tokens.
func (s *Server) NewUninstallRequest(ctx context.Context, url string) (*http.Request, error) {
	if ctx == nil {
		return nil, errors.New("kommotest: nil context")
	}
	u, err := neturl.Parse(url)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("kommotest: uninstall URL %q is not an absolute URL", url)
	}
	account := strconv.Itoa(s.accountID)
	m := hmac.New(sha256.New, []byte(s.oauthSecret))
	m.Write([]byte(s.oauthClientID + "|" + account))
	q := u.Query()
	q.Set("client_uuid", s.oauthClientID)
	q.Set("account_id", account)
	q.Set("signature", hex.EncodeToString(m.Sum(nil)))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("kommotest: build uninstall request: %w", err)
	}
	req.Header.Set("User-Agent", "kommotest-webhooks/1.0")
	return req, nil
}

// DeliverUninstall disables the integration on the account as Kommo does:
// every access and refresh token it issued (the static one included) stops
// working, so CRM calls answer 401, and then the signed GET of
// NewUninstallRequest is sent to url, waiting at most WebhookTimeout. It
// returns a *WebhookError unless the receiver answered 2xx; the tokens
// stay revoked either way.
func (s *Server) DeliverUninstall(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, WebhookTimeout)
	defer cancel()
	req, err := s.NewUninstallRequest(ctx, url)
	if err != nil {
		return err
	}
	s.mu.Lock()
	clear(s.tokens)
	clear(s.refresh)
	s.mu.Unlock()
	return s.deliver(req, "uninstall hook", 200, 299)
}

// GET /oauth2/account/current/subdomain with X-Refresh-Token: the account's
// current address, for a valid (unspent, unexpired) refresh token; 401
// otherwise. (Kommo serves it on the access token's api_domain; the fake
// serves it on its one URL.)
func (s *Server) oauthAccountSubdomain(r *http.Request) reply {
	rt := r.Header.Get("X-Refresh-Token")
	exp, ok := s.refresh[rt]
	if rt == "" || !ok || !s.now().Before(exp) {
		return crmFail(http.StatusUnauthorized, "refresh token is invalid, spent or expired")
	}
	return reply{status: http.StatusOK, ctype: "application/json", body: map[string]any{
		"id": s.accountID, "subdomain": s.subdomain, "domain": s.AccountDomain(), "top_level_domain": "com",
	}}
}
