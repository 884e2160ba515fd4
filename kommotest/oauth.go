package kommotest

import (
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// IssueAuthCode returns a fresh authorization code, as Kommo would pass to
// the redirect URI after the user installs the integration. It can be
// exchanged once, within AuthCodeLifetime.
func (s *Server) IssueAuthCode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := "code-" + compactID(s.newID())
	s.codes[code] = s.now().Add(AuthCodeLifetime)
	return code
}

// IssueTokens issues an access/refresh token pair directly (as if a code had
// been exchanged) with the given access-token lifetime; a lifetime <= 0
// gives an already expired access token, to test refreshing.
func (s *Server) IssueTokens(lifetime time.Duration) (accessToken, refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked(lifetime)
}

// IssueTokensFor issues an access/refresh token pair of the account at
// host (its domain, "example.kommo.com", as the requests' Host header
// gives it: see RoutingClient), as IssueTokens does. Both tokens are bound
// to the account: the CRM endpoints refuse the access token with 401 when
// a request's Host is another account's, and the token endpoint refuses
// the refresh token (401, not using it up) when it is presented at another
// account's host. A refresh at the right host uses it up and issues the
// next pair, bound to the same account, with WithTokenLifetime's
// lifetime; Refreshes counts them per account.
func (s *Server) IssueTokensFor(host string, lifetime time.Duration) (accessToken, refreshToken string) {
	host = strings.ToLower(strings.TrimSpace(host))
	s.mu.Lock()
	defer s.mu.Unlock()
	at, rt := s.issueLocked(lifetime)
	s.acct.bind(host, at, rt)
	return at, rt
}

// Refreshes reports how many refresh grants the token endpoint granted at
// host (the request's Host header; the URL's host for requests straight
// to URL) and how many it refused there (a refresh token used before,
// expired, unknown or another account's).
func (s *Server) Refreshes(host string) (granted, refused int) {
	host = strings.ToLower(strings.TrimSpace(host))
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acct.refreshes[host], s.acct.refused[host]
}

// accountTokens is the per-account side of the OAuth state (under s.mu).
type accountTokens struct {
	host      map[string]string // access or refresh token → the account host it is bound to
	refreshes map[string]int    // host → refresh grants granted there
	refused   map[string]int    // host → refresh grants refused there
}

func (a *accountTokens) bind(host string, tokens ...string) {
	if a.host == nil {
		a.host = map[string]string{}
	}
	for _, t := range tokens {
		a.host[t] = host
	}
}

func (a *accountTokens) count(host string, granted bool) {
	if a.refreshes == nil {
		a.refreshes, a.refused = map[string]int{}, map[string]int{}
	}
	if granted {
		a.refreshes[host]++
	} else {
		a.refused[host]++
	}
}

// otherAccount reports whether tok is bound to an account other than
// r's host.
func (a *accountTokens) otherAccount(tok string, r *http.Request) bool {
	h, ok := a.host[tok]
	return ok && h != requestHost(r)
}

func compactID(id string) string { return strings.ReplaceAll(id, "-", "") }

func (s *Server) issueLocked(lifetime time.Duration) (string, string) {
	now := s.now()
	at, rt := "at-"+compactID(s.newID()), "rt-"+compactID(s.newID())
	exp := now.Add(lifetime)
	if lifetime <= 0 {
		exp = now.Add(-time.Second)
	}
	s.tokens[at] = exp
	s.refresh[rt] = now.Add(RefreshTokenLifetime)
	return at, rt
}

// POST /oauth2/access_token (JSON, or a form as x/oauth2 sends it)
func (s *Server) oauthToken(r *http.Request) reply {
	var req struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		GrantType    string `json:"grant_type"`
		Code         string `json:"code"`
		RefreshToken string `json:"refresh_token"`
		RedirectURI  string `json:"redirect_uri"`
	}
	body := bodyOf(r)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		f, err := url.ParseQuery(string(body))
		if err != nil {
			return crmFail(http.StatusBadRequest, "malformed form body")
		}
		req.ClientID, req.ClientSecret, req.GrantType = f.Get("client_id"), f.Get("client_secret"), f.Get("grant_type")
		req.Code, req.RefreshToken, req.RedirectURI = f.Get("code"), f.Get("refresh_token"), f.Get("redirect_uri")
		if u, p, ok := r.BasicAuth(); ok && req.ClientID == "" {
			req.ClientID, req.ClientSecret = u, p
		}
	} else if p := decodeJSON(body, &req); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	if req.GrantType != "authorization_code" && req.GrantType != "refresh_token" {
		return crmFail(http.StatusBadRequest, "grant_type must be authorization_code or refresh_token")
	}
	if req.ClientID != s.oauthClientID || req.ClientSecret != s.oauthSecret {
		return crmFail(http.StatusUnauthorized, "client authentication failed")
	}
	now := s.now()
	switch req.GrantType {
	case "authorization_code":
		if req.Code == "" {
			return crmFail(http.StatusBadRequest, "code is required")
		}
		if req.RedirectURI != s.oauthRedirect {
			return crmFail(http.StatusBadRequest, "redirect_uri does not match the integration's")
		}
		exp, ok := s.codes[req.Code]
		if !ok {
			return crmFail(http.StatusBadRequest, "authorization code is invalid or was already used")
		}
		delete(s.codes, req.Code)
		if !now.Before(exp) {
			return crmFail(http.StatusBadRequest, "authorization code has expired")
		}
	case "refresh_token":
		if req.RefreshToken == "" {
			return crmFail(http.StatusBadRequest, "refresh_token is required")
		}
		if req.RedirectURI != "" && req.RedirectURI != s.oauthRedirect {
			return crmFail(http.StatusBadRequest, "redirect_uri does not match the integration's")
		}
		exp, ok := s.refresh[req.RefreshToken]
		if !ok {
			s.acct.count(requestHost(r), false)
			return crmFail(http.StatusUnauthorized, "refresh token is invalid or was already used")
		}
		if s.acct.otherAccount(req.RefreshToken, r) {
			s.acct.count(requestHost(r), false)
			return crmFail(http.StatusUnauthorized, "refresh token was issued for another account")
		}
		delete(s.refresh, req.RefreshToken) // single use
		if !now.Before(exp) {
			s.acct.count(requestHost(r), false)
			return crmFail(http.StatusUnauthorized, "refresh token has expired")
		}
		s.acct.count(requestHost(r), true)
	}
	at, rt := s.issueLocked(s.tokenLifetime)
	if host, ok := s.acct.host[req.RefreshToken]; ok && req.GrantType == "refresh_token" {
		delete(s.acct.host, req.RefreshToken)
		s.acct.bind(host, at, rt)
	}
	return reply{status: http.StatusOK, ctype: "application/json", body: map[string]any{
		"token_type": "Bearer", "expires_in": int64(s.tokenLifetime / time.Second), "server_time": now.Unix(),
		"access_token": at, "refresh_token": rt,
	}}
}
