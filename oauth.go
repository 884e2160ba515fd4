package kommo

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Authorize pages. Kommo's exact authorize URL is not confirmed by its
// docs (amoCRM documents https://www.amocrm.ru/oauth); set
// OAuthConfig.AuthURL to override.
const (
	AuthURLKommo    = "https://www.kommo.com/oauth"
	AuthURLAmoCRMRU = "https://www.amocrm.ru/oauth"
)

// oauthTimeout bounds one token-endpoint request when the HTTP client has
// no timeout of its own.
const oauthTimeout = 30 * time.Second

// oauthMaxBody caps a token-endpoint response.
const oauthMaxBody = 1 << 20

// OAuthConfig describes the integration for Kommo's OAuth 2.0 flow. One
// config serves one account: ForAccount derives the config of another.
//
// No print path shows ClientSecret: fmt (every verb, of a config or a
// pointer to one, alone or inside a struct, slice or map: Format), slog
// (LogValue, and Format or MarshalJSON for a value) and json.Marshal
// (MarshalJSON). Only fmt of a struct that holds a config in an unexported
// field, which fmt reads without calling any method, still prints it.
type OAuthConfig struct {
	// ClientID is the integration id.
	ClientID string
	// ClientSecret is the integration's secret key.
	ClientSecret string
	// RedirectURL is the Redirect URI registered for the integration; Kommo
	// requires it to match exactly.
	RedirectURL string
	// BaseDomain is the account's domain, e.g. "example.kommo.com" (the
	// redirect's "referer"). The token endpoint is
	// https://{BaseDomain}/oauth2/access_token.
	BaseDomain string
	// AuthURL overrides the authorize page (default AuthURLKommo).
	AuthURL string
	// TokenURL overrides the token endpoint (for proxies and tests).
	TokenURL string
	// HTTPClient sends token requests (default: a client with a 30 s
	// timeout). Token requests never follow redirects: they use a copy of
	// it whose CheckRedirect stops at the first answer, and a 3xx is an
	// *OAuthError. The client itself is left unchanged.
	HTTPClient *http.Client
	// Clock computes token expiry (default SystemClock).
	Clock Clock
}

// String never shows the client secret.
func (c *OAuthConfig) String() string {
	if c == nil {
		return "kommo.OAuthConfig(nil)"
	}
	return fmt.Sprintf("kommo.OAuthConfig{ClientID:%s RedirectURL:%s BaseDomain:%s ClientSecret:REDACTED}", c.ClientID, c.RedirectURL, c.BaseDomain)
}

// GoString never shows the client secret.
func (c *OAuthConfig) GoString() string { return c.String() }

// Format prints what String does, for every verb. It has a value receiver
// so that fmt calls it for a config value too, and for a config inside a
// struct, slice or map, which String (pointer receiver, to stay nil-safe)
// does not reach.
func (c OAuthConfig) Format(f fmt.State, verb rune) { oauthFormat(f, verb, c.String()) }

// MarshalJSON shows the config without the client secret ("REDACTED"),
// the HTTP client and the clock. It is meant for logs: decoding JSON into
// an OAuthConfig still reads every field, ClientSecret included.
func (c OAuthConfig) MarshalJSON() ([]byte, error) {
	v := struct {
		ClientID     string
		ClientSecret string `json:",omitempty"`
		RedirectURL  string
		BaseDomain   string
		AuthURL      string `json:",omitempty"`
		TokenURL     string `json:",omitempty"`
	}{ClientID: c.ClientID, RedirectURL: c.RedirectURL, BaseDomain: c.BaseDomain, AuthURL: c.AuthURL, TokenURL: c.TokenURL}
	if c.ClientSecret != "" {
		v.ClientSecret = "REDACTED"
	}
	return json.Marshal(v)
}

// LogValue never shows the client secret.
func (c *OAuthConfig) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(
		slog.String("client_id", c.ClientID),
		slog.String("redirect_url", c.RedirectURL),
		slog.String("base_domain", c.BaseDomain),
		slog.String("client_secret", "REDACTED"),
	)
}

// ForAccount returns a copy of c for the account at baseDomain (the
// redirect's referer), e.g. to exchange a code of a newly installed
// account.
func (c *OAuthConfig) ForAccount(baseDomain string) *OAuthConfig {
	var cp OAuthConfig
	if c != nil {
		cp = *c
	}
	cp.BaseDomain = baseDomain
	return &cp
}

// AuthMode says how the authorize page hands over to the redirect URI.
type AuthMode string

// Authorize page modes.
const (
	// AuthModePopup closes the popup and opens the redirect URI in the
	// main window.
	AuthModePopup AuthMode = "popup"
	// AuthModePostMessage opens the redirect URI in the popup, which
	// reports back with window.postMessage.
	AuthModePostMessage AuthMode = "post_message"
)

// AuthCodeOption adds a parameter to the authorize URL.
type AuthCodeOption func(url.Values)

// AuthCodeMode sets the "mode" parameter of the authorize URL.
func AuthCodeMode(m AuthMode) AuthCodeOption {
	return func(v url.Values) { v.Set("mode", string(m)) }
}

// AuthCodeParam sets any other parameter of the authorize URL.
func AuthCodeParam(key, value string) AuthCodeOption {
	return func(v url.Values) { v.Set(key, value) }
}

// AuthCodeURL returns the URL of the page where a user grants the
// integration access: {AuthURL}?client_id=…&state=…[&mode=…]. state is
// returned on the redirect; generate it randomly per attempt and check it
// with AuthRedirect.VerifyState.
//
//	http.Redirect(w, r, cfg.AuthCodeURL(state, kommo.AuthCodeMode(kommo.AuthModePopup)), http.StatusFound)
func (c *OAuthConfig) AuthCodeURL(state string, opts ...AuthCodeOption) string {
	if c == nil {
		c = &OAuthConfig{}
	}
	base := c.AuthURL
	if base == "" {
		base = AuthURLKommo
	}
	v := url.Values{}
	v.Set("client_id", c.ClientID)
	if state != "" {
		v.Set("state", state)
	}
	for _, o := range opts {
		if o != nil {
			o(v)
		}
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + v.Encode()
}

// AuthRedirect holds what Kommo passes to the redirect URI after the user
// answered the authorize page (or when a widget is installed). No print
// path shows Code: fmt (Format, every verb, value or pointer), slog
// (LogValue) and json.Marshal (MarshalJSON), as for OAuthConfig.
type AuthRedirect struct {
	// Code is the authorization code, valid for 20 minutes; pass it to
	// Exchange.
	Code string
	// Referer is the account's domain, e.g. "example.kommo.com": the base
	// domain for Exchange and for API calls (WithBaseDomain).
	Referer string
	// State is the state given to AuthCodeURL ("" when none was given).
	State string
	// FromWidget is set when the redirect comes from a widget install.
	FromWidget bool
	// Platform is 1 for amocrm.ru and 2 for amocrm.com/kommo.com (0 when
	// absent).
	Platform int
	// ClientID is the integration id the redirect names (Kommo's OAuth
	// page: the redirect also carries client_id); "" when absent. It is
	// not secret and is shown by every print path. Compare it with
	// OAuthConfig.ClientID when one redirect URI serves several
	// integrations.
	ClientID string
}

// String never shows the code.
func (r *AuthRedirect) String() string {
	if r == nil {
		return "kommo.AuthRedirect(nil)"
	}
	return fmt.Sprintf("kommo.AuthRedirect{ClientID:%s Referer:%s State:%s FromWidget:%t Platform:%d Code:REDACTED}", r.ClientID, r.Referer, r.State, r.FromWidget, r.Platform)
}

// GoString never shows the code.
func (r *AuthRedirect) GoString() string { return r.String() }

// Format prints what String does, for every verb; a value receiver, so
// that fmt of a value or of a struct holding one never shows the code.
func (r AuthRedirect) Format(f fmt.State, verb rune) { oauthFormat(f, verb, r.String()) }

// MarshalJSON shows the redirect with Code "REDACTED".
func (r AuthRedirect) MarshalJSON() ([]byte, error) {
	type plain AuthRedirect
	p := plain(r)
	if p.Code != "" {
		p.Code = "REDACTED"
	}
	return json.Marshal(p)
}

// LogValue never shows the code.
func (r *AuthRedirect) LogValue() slog.Value {
	if r == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(
		slog.String("client_id", r.ClientID),
		slog.String("referer", r.Referer),
		slog.Bool("from_widget", r.FromWidget),
		slog.Int("platform", r.Platform),
		slog.String("code", "REDACTED"),
	)
}

// VerifyState compares the redirect's state with the one sent, in
// constant time. A mismatch is an *AuthError with Code "state_mismatch".
func (r *AuthRedirect) VerifyState(expected string) error {
	if expected == "" || subtle.ConstantTimeCompare([]byte(r.State), []byte(expected)) != 1 {
		return &AuthError{Code: "state_mismatch", Description: "state does not match the one sent to the authorize page", State: r.State}
	}
	return nil
}

// oauthDomainSuffixes are the account domains a referer may name. The
// token exchange sends the client secret to the referer's host, so a
// forged redirect must not be able to point it elsewhere.
var oauthDomainSuffixes = []string{".kommo.com", ".amocrm.ru", ".amocrm.com"}

// ParseRedirect reads the GET parameters Kommo sends to the redirect URI:
// code, referer, state, from_widget, platform and client_id. A denial
// (error=access_denied) and a redirect without code or with a referer that
// is not a Kommo/amoCRM account domain (*.kommo.com, *.amocrm.ru,
// *.amocrm.com) return an *AuthError. Check the state with VerifyState.
//
//	red, err := kommo.ParseRedirect(r)
//	if err == nil { err = red.VerifyState(sessionState) }
//	tok, err := cfg.ForAccount(red.Referer).Exchange(ctx, red.Code)
func ParseRedirect(r *http.Request) (*AuthRedirect, error) {
	if r == nil || r.URL == nil {
		return nil, &AuthError{Code: "invalid_redirect", Description: "no request"}
	}
	q := r.URL.Query()
	red := &AuthRedirect{
		Code:       q.Get("code"),
		State:      q.Get("state"),
		FromWidget: q.Has("from_widget") && q.Get("from_widget") != "0",
		ClientID:   q.Get("client_id"),
	}
	if e := q.Get("error"); e != "" {
		return red, &AuthError{Code: e, Description: "the user did not grant access", State: red.State}
	}
	var problems []string
	if red.Code == "" {
		problems = append(problems, "missing code")
	}
	if ref := q.Get("referer"); ref == "" {
		problems = append(problems, "missing referer")
	} else if d, err := oauthRefererDomain(ref); err != nil {
		problems = append(problems, err.Error())
	} else {
		red.Referer = d
	}
	if p := q.Get("platform"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("platform %q is not a number", p))
		}
		red.Platform = n
	}
	if len(problems) > 0 {
		return red, &AuthError{Code: "invalid_redirect", Description: strings.Join(problems, "; "), State: red.State}
	}
	return red, nil
}

// oauthRefererDomain normalises a referer ("example.kommo.com", possibly
// with a scheme) to a host name and checks it is an account domain.
func oauthRefererDomain(ref string) (string, error) {
	h := strings.TrimSpace(ref)
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	h = strings.TrimSuffix(strings.ToLower(h), "/")
	if h == "" || strings.ContainsAny(h, "/:?#@ \\") {
		return "", fmt.Errorf("referer %q is not a host name", ref)
	}
	for _, s := range oauthDomainSuffixes {
		if strings.HasSuffix(h, s) && len(h) > len(s) {
			return h, nil
		}
	}
	return "", fmt.Errorf("referer %q is not a Kommo or amoCRM account domain", ref)
}

// oauthCheck reports every missing setting of c.
func (c *OAuthConfig) oauthCheck(op string) error {
	v := validator{op: op}
	if c == nil {
		v.addf("config: nil")
		return v.err()
	}
	v.require(c.ClientID, "ClientID")
	v.require(c.ClientSecret, "ClientSecret")
	v.require(c.RedirectURL, "RedirectURL")
	if c.TokenURL == "" {
		d := strings.TrimSpace(c.BaseDomain)
		if d == "" {
			v.addf("BaseDomain: required (or TokenURL)")
		} else if strings.ContainsAny(d, "/:?#@ \\") {
			v.addf("BaseDomain: %q is not a host name", c.BaseDomain)
		}
	} else if u, err := url.Parse(c.TokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.addf("TokenURL: %q is not an absolute http(s) URL", c.TokenURL)
	}
	return v.err()
}

func (c *OAuthConfig) tokenURL() string {
	if c.TokenURL != "" {
		return c.TokenURL
	}
	return "https://" + strings.ToLower(strings.TrimSpace(c.BaseDomain)) + "/oauth2/access_token"
}

func (c *OAuthConfig) now() time.Time {
	if c.Clock != nil {
		return c.Clock.Now()
	}
	return time.Now()
}

// oauthRequest is the JSON body of POST /oauth2/access_token.
type oauthRequest struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	GrantType    string `json:"grant_type"`
	Code         string `json:"code,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	RedirectURI  string `json:"redirect_uri"`
}

// oauthResponse is the token endpoint's answer.
type oauthResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ServerTime   int64  `json:"server_time"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// Exchange trades an authorization code for an access and refresh token.
// Kommo documents a JSON body, which is what is sent (x/oauth2 would send
// a form). Save the returned token in a TokenStore before using it: the
// refresh token is the only way to get the next one.
//
// POST https://{BaseDomain}/oauth2/access_token
//
//	tok, err := cfg.ForAccount(red.Referer).Exchange(ctx, red.Code)
//	if err == nil { err = store.Save(ctx, tok) }
//
// Kommo API docs: https://developers.kommo.com/reference/get-token
func (c *OAuthConfig) Exchange(ctx context.Context, code string) (*oauth2.Token, error) {
	if err := c.oauthCheck("OAuthConfig.Exchange"); err != nil {
		return nil, err
	}
	if strings.TrimSpace(code) == "" {
		return nil, &ValidationError{Op: "OAuthConfig.Exchange", Problems: []string{"code: required"}}
	}
	return c.retrieve(ctx, &oauthRequest{GrantType: "authorization_code", Code: code}, code)
}

// Refresh trades a refresh token for a new pair. A refresh token is valid
// for three months, and the docs differ on reusing one: amoCRM's OAuth
// guide says it is single use (each refresh returns a new pair and the old
// refresh token stops working), an amocrm-api-php maintainer reports a
// reused one is answered 401 "Token has been revoked" (issue #123), while
// Kommo's OAuth page says the old one keeps working until the new pair is
// first used. The SDK takes the strict reading: it treats every refresh
// token as spent once this returns, so the new token must be saved before
// anything else, and it never loses the newest pair (NewTokenSource saves
// it before handing out the access token, keeps it in memory when the save
// fails, and loads the store again before giving up on a rejected
// refresh). A rejected refresh token (400 or 401) is an *OAuthError
// matching ErrReauthorizationRequired.
//
// amoCRM OAuth guide: https://www.amocrm.ru/developers/content/oauth/step-by-step
// amocrm-api-php #123: https://github.com/amocrm/amocrm-api-php/issues/123
//
// POST https://{BaseDomain}/oauth2/access_token
//
// Kommo API docs: https://developers.kommo.com/reference/get-token
func (c *OAuthConfig) Refresh(ctx context.Context, refreshToken string) (tok *oauth2.Token, err error) {
	if err := c.oauthCheck("OAuthConfig.Refresh"); err != nil {
		return nil, err
	}
	if refreshToken == "" {
		return nil, fmt.Errorf("kommo: no refresh token: %w", ErrReauthorizationRequired)
	}
	defer c.observeRefresh(ctx, c.now(), &err)
	return c.retrieve(ctx, &oauthRequest{GrantType: "refresh_token", RefreshToken: refreshToken}, refreshToken)
}

// retrieve posts to the token endpoint. secret (the code or refresh
// token) is scrubbed from any error body.
func (c *OAuthConfig) retrieve(ctx context.Context, body *oauthRequest, secret string) (*oauth2.Token, error) {
	if ctx == nil {
		return nil, errors.New("kommo: nil context")
	}
	body.ClientID, body.ClientSecret, body.RedirectURI = c.ClientID, c.ClientSecret, c.RedirectURL
	payload, err := encodeJSON(body)
	if err != nil {
		return nil, fmt.Errorf("kommo: encode token request: %w", err)
	}
	// A shallow copy, so the caller's client is left as it was: token
	// requests never follow redirects, which would re-send the client
	// secret and the code or refresh token to another URL and accept the
	// tokens it answers. A 3xx is an *OAuthError.
	hc := &http.Client{Timeout: oauthTimeout}
	if c.HTTPClient != nil {
		cp := *c.HTTPClient
		hc = &cp
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if hc.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, oauthTimeout)
		defer cancel()
	}
	tokenURL := c.tokenURL()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("kommo: build token request: %w", err)
	}
	req.Header.Set("Content-Type", ContentTypeJSON)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kommo-go/"+Version)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kommo: POST %s: %w", redactURL(req.URL), oauthScrub(scrubURLError(err), c.ClientSecret, secret))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, oauthMaxBody))
	if err != nil {
		return nil, fmt.Errorf("kommo: POST %s: read token response: %w", redactURL(req.URL), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := newOAuthError(resp.StatusCode, body.GrantType, redactURL(req.URL), data, c.ClientSecret, secret)
		if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
			e.Location = oauthRedirectLocation(req.URL, resp.Header.Get("Location"), c.ClientSecret, secret)
		}
		return nil, e
	}
	var tr oauthResponse
	if err := json.Unmarshal(data, &tr); err != nil {
		return nil, fmt.Errorf("kommo: POST %s: decode token response: %w", redactURL(req.URL), err)
	}
	if tr.AccessToken == "" {
		return nil, fmt.Errorf("kommo: POST %s: token response has no access_token", redactURL(req.URL))
	}
	tok := &oauth2.Token{
		AccessToken:  tr.AccessToken,
		TokenType:    tr.TokenType,
		RefreshToken: tr.RefreshToken,
		ExpiresIn:    tr.ExpiresIn,
	}
	if tok.TokenType == "" {
		tok.TokenType = "Bearer"
	}
	if tr.ExpiresIn > 0 {
		tok.Expiry = c.now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	return tok.WithExtra(map[string]any{"server_time": tr.ServerTime}), nil
}
