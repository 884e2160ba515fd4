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
			return crmFail(http.StatusUnauthorized, "refresh token is invalid or was already used")
		}
		delete(s.refresh, req.RefreshToken) // single use
		if !now.Before(exp) {
			return crmFail(http.StatusUnauthorized, "refresh token has expired")
		}
	}
	at, rt := s.issueLocked(s.tokenLifetime)
	return reply{status: http.StatusOK, ctype: "application/json", body: map[string]any{
		"token_type": "Bearer", "expires_in": int64(s.tokenLifetime / time.Second), "server_time": now.Unix(),
		"access_token": at, "refresh_token": rt,
	}}
}
