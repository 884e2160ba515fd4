package kommo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// AccessTokenClaims are the claims of a Kommo access token (a JWT) that
// the SDK reads. Kommo does not document the claim list; these are the
// ones seen in issued tokens and named by amoCRM's subdomain page
// (api_domain).
type AccessTokenClaims struct {
	// AccountID is the CRM account id.
	AccountID int `json:"account_id"`
	// BaseDomain is the account's top domain, e.g. "amocrm.ru" or
	// "kommo.com".
	BaseDomain string `json:"base_domain"`
	// APIDomain is the host of account-independent OAuth endpoints such as
	// the subdomain lookup, e.g. "api-b.amocrm.ru" (a bare "api-b" is
	// completed with BaseDomain).
	APIDomain string   `json:"api_domain"`
	Scopes    []string `json:"scopes"`
	Version   int      `json:"version"`
	// ExpiresAt and IssuedAt are the exp and iat claims, Unix seconds.
	ExpiresAt int64 `json:"exp"`
	IssuedAt  int64 `json:"iat"`
}

// ParseAccessTokenClaims decodes the claims of a Kommo access token
// WITHOUT VERIFYING IT: the SDK has no key to check Kommo's signature, and
// needs the claims only to find where to send the next request. Never use
// them to decide whom to trust. A token that is not a JWT with a JSON
// payload is an error matching ErrInvalidJWT; the token is never part of
// an error.
func ParseAccessTokenClaims(accessToken string) (*AccessTokenClaims, error) {
	parts := strings.Split(accessToken, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("kommo: access token is not a JWT (%d parts): %w", len(parts), ErrInvalidJWT)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("kommo: access token payload is not base64url: %w", ErrInvalidJWT)
	}
	c := new(AccessTokenClaims)
	if err := json.Unmarshal(payload, c); err != nil {
		return nil, fmt.Errorf("kommo: access token claims are not JSON: %w", ErrInvalidJWT)
	}
	return c, nil
}

// apiHost returns the host of the token's api_domain claim.
func (c *AccessTokenClaims) apiHost() (string, error) {
	d := strings.ToLower(strings.TrimSpace(c.APIDomain))
	switch {
	case d == "":
		return "", ErrNoAPIDomain
	case strings.ContainsAny(d, "/\\@?#"):
		return "", fmt.Errorf("kommo: api_domain %s is not a host: %w", quoteCapped(d), ErrInvalidJWT)
	case strings.Contains(d, "."):
		return d, nil
	case c.BaseDomain != "":
		return d + "." + strings.ToLower(strings.TrimSpace(c.BaseDomain)), nil
	}
	return "", fmt.Errorf("kommo: api_domain %s has no domain and the token no base_domain: %w", quoteCapped(d), ErrNoAPIDomain)
}

// AccountSubdomain is the account's current address (GET
// /oauth2/account/current/subdomain).
type AccountSubdomain struct {
	// ID is the CRM account id.
	ID int `json:"id"`
	// Subdomain is e.g. "example".
	Subdomain string `json:"subdomain"`
	// Domain is the full account domain, e.g. "example.amocrm.ru": the
	// base domain for API calls and the token endpoint.
	Domain string `json:"domain"`
	// TopLevelDomain is "ru" or "com".
	TopLevelDomain string `json:"top_level_domain"`
}

// AccountSubdomain looks up the account's current domain, for an account
// whose subdomain changed (its old domain then answers the token endpoint
// and the API with 401 or 404). The request goes to the host in the access
// token's api_domain claim (read, not verified: see
// ParseAccessTokenClaims) with the refresh token in X-Refresh-Token; it
// does not spend the refresh token. NewTokenSource does this by itself when
// a refresh fails that way.
//
// GET https://{api_domain}/oauth2/account/current/subdomain
//
//	sub, err := cfg.AccountSubdomain(ctx, tok)
//	if err == nil { cfg = cfg.ForAccount(sub.Domain) }
//
// amoCRM docs: https://www.amocrm.ru/developers/content/oauth/account-subdomain-info
func (c *OAuthConfig) AccountSubdomain(ctx context.Context, tok *oauth2.Token) (*AccountSubdomain, error) {
	if ctx == nil {
		return nil, errors.New("kommo: nil context")
	}
	v := validator{op: "OAuthConfig.AccountSubdomain"}
	if tok == nil {
		v.addf("token: nil")
	} else {
		v.require(tok.AccessToken, "token.access_token")
		v.require(tok.RefreshToken, "token.refresh_token")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	claims, err := ParseAccessTokenClaims(tok.AccessToken)
	if err != nil {
		return nil, err
	}
	host, err := claims.apiHost()
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: oauthTimeout}
	if c.HTTPClient != nil {
		cp := *c.HTTPClient
		hc = &cp
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/oauth2/account/current/subdomain", nil)
	if err != nil {
		return nil, fmt.Errorf("kommo: build subdomain request: %w", err)
	}
	req.Header.Set("X-Refresh-Token", tok.RefreshToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kommo-go/"+Version)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kommo: GET %s: %w", redactURL(req.URL), oauthScrub(scrubURLError(err), tok.RefreshToken))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, oauthMaxBody))
	if err != nil {
		return nil, fmt.Errorf("kommo: GET %s: read answer: %w", redactURL(req.URL), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newAPIError(req, resp, []byte(oauthScrubString(string(data), tok.RefreshToken)), c.now())
	}
	sub := new(AccountSubdomain)
	if err := json.Unmarshal(data, sub); err != nil || sub.Domain == "" {
		if err == nil {
			err = errors.New("no domain")
		}
		return nil, &DecodeError{Method: http.MethodGet, URL: redactURL(req.URL), StatusCode: resp.StatusCode, Body: capBody(data), Err: err}
	}
	return sub, nil
}

// TokenBaseDomainKey is the oauth2.Token Extra key under which the token
// source records the account's new base domain after following a
// subdomain change (see NewTokenSource), on that token and every later
// one. FileTokenStore, MemoryTokenStore and kommoredis's TokenStore save
// it with the tokens, and a token source loading such a token uses that
// domain.
const TokenBaseDomainKey = "base_domain"

// TokenBaseDomain returns the base domain the token source recorded in
// tok after a subdomain change ("" when none): rebuild the Client with
// WithBaseDomain of it.
func TokenBaseDomain(tok *oauth2.Token) string {
	if tok == nil {
		return ""
	}
	d, _ := tok.Extra(TokenBaseDomainKey).(string)
	return d
}

// refreshAtNewDomain is the token source's recovery from an account's
// subdomain change: when refreshing at the configured domain failed with
// 401 or 404 (refreshErr), it looks up the account's current domain with
// AccountSubdomain and, if it differs, refreshes there. On success the
// source's config uses the new domain from then on and the returned token
// carries it under TokenBaseDomainKey, so saving the token persists it.
// ok is false when nothing was recovered (the caller then reports
// refreshErr). A config with TokenURL set is never moved.
func (s *oauthTokenSource) refreshAtNewDomain(rctx context.Context, cur *oauth2.Token, refreshErr error) (tok *oauth2.Token, ok bool) {
	var oe *OAuthError
	if !errors.As(refreshErr, &oe) || (oe.StatusCode != http.StatusUnauthorized && oe.StatusCode != http.StatusNotFound) {
		return nil, false
	}
	if s.cfg.TokenURL != "" || cur == nil || cur.RefreshToken == "" {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(s.ctx, oauthTimeout)
	defer cancel()
	sub, err := s.cfg.AccountSubdomain(ctx, cur)
	if err != nil || strings.EqualFold(sub.Domain, s.cfg.BaseDomain) {
		return nil, false
	}
	moved := s.cfg.ForAccount(sub.Domain)
	tok, err = moved.Refresh(rctx, cur.RefreshToken)
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	s.cfg = moved
	s.mu.Unlock()
	return withBaseDomain(tok, sub.Domain), true
}

// withBaseDomain returns tok recording the account's base domain under
// TokenBaseDomainKey (keeping the server_time Kommo sends).
func withBaseDomain(tok *oauth2.Token, domain string) *oauth2.Token {
	extra := map[string]any{TokenBaseDomainKey: domain}
	if st := tok.Extra("server_time"); st != nil {
		extra["server_time"] = st
	}
	return tok.WithExtra(extra)
}

// follow moves the source's config to the base domain a token recorded
// (a subdomain change followed by this source before a restart, or by
// another process sharing the store). A config with TokenURL set is never
// moved.
func (s *oauthTokenSource) follow(tok *oauth2.Token) {
	d := TokenBaseDomain(tok)
	if d == "" || s.cfg.TokenURL != "" || strings.EqualFold(d, s.cfg.BaseDomain) {
		return
	}
	s.mu.Lock()
	s.cfg = s.cfg.ForAccount(d)
	s.mu.Unlock()
}
