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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Authorize pages. Kommo's exact authorize URL is not confirmed by its
// docs (spec §5: amoCRM documents https://www.amocrm.ru/oauth); set
// OAuthConfig.AuthURL to override.
const (
	AuthURLKommo    = "https://www.kommo.com/oauth"
	AuthURLAmoCRMRU = "https://www.amocrm.ru/oauth"
)

// TokenExpiryDelta is how long before its expiry an access token is
// treated as expired and refreshed, as in x/oauth2.
const TokenExpiryDelta = 10 * time.Second

// oauthTimeout bounds one token-endpoint request when the HTTP client has
// no timeout of its own.
const oauthTimeout = 30 * time.Second

// oauthMaxBody caps a token-endpoint response.
const oauthMaxBody = 1 << 20

// ErrReauthorizationRequired means the stored grant can no longer be used:
// the token endpoint rejected the refresh token (revoked, already used,
// older than 3 months, or the integration was uninstalled), or the token
// expired and has no refresh token. The user must authorize the
// integration again.
var ErrReauthorizationRequired = errors.New("kommo: the user must authorize the integration again")

// OAuthConfig describes the integration for Kommo's OAuth 2.0 flow. One
// config serves one account: ForAccount derives the config of another.
// Its String and LogValue never show ClientSecret.
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
	// timeout).
	HTTPClient *http.Client
	// Now is the clock used to compute token expiry (default time.Now).
	Now func() time.Time
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

// AuthWithMode sets the "mode" parameter of the authorize URL.
func AuthWithMode(m AuthMode) AuthCodeOption {
	return func(v url.Values) { v.Set("mode", string(m)) }
}

// AuthWithParam sets any other parameter of the authorize URL.
func AuthWithParam(key, value string) AuthCodeOption {
	return func(v url.Values) { v.Set(key, value) }
}

// AuthCodeURL returns the URL of the page where a user grants the
// integration access: {AuthURL}?client_id=…&state=…[&mode=…]. state is
// returned on the redirect; generate it randomly per attempt and check it
// with AuthRedirect.VerifyState.
//
//	http.Redirect(w, r, cfg.AuthCodeURL(state, kommo.AuthWithMode(kommo.AuthModePopup)), http.StatusFound)
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
// answered the authorize page (or when a widget is installed). Its String
// and LogValue never show Code.
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
}

// String never shows the code.
func (r *AuthRedirect) String() string {
	if r == nil {
		return "kommo.AuthRedirect(nil)"
	}
	return fmt.Sprintf("kommo.AuthRedirect{Referer:%s State:%s FromWidget:%t Platform:%d Code:REDACTED}", r.Referer, r.State, r.FromWidget, r.Platform)
}

// GoString never shows the code.
func (r *AuthRedirect) GoString() string { return r.String() }

// LogValue never shows the code.
func (r *AuthRedirect) LogValue() slog.Value {
	if r == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(
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

// AuthError is returned by ParseRedirect when the user denied access
// (Code "access_denied"), when the redirect is malformed (Code
// "invalid_redirect"), and by AuthRedirect.VerifyState (Code
// "state_mismatch").
type AuthError struct {
	// Code is the OAuth error code.
	Code string
	// Description says what is wrong.
	Description string
	// State is the redirect's state, when present.
	State string
}

// Error describes the failure.
func (e *AuthError) Error() string {
	s := "kommo: authorization failed: " + e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// oauthDomainSuffixes are the account domains a referer may name. The
// token exchange sends the client secret to the referer's host, so a
// forged redirect must not be able to point it elsewhere.
var oauthDomainSuffixes = []string{".kommo.com", ".amocrm.ru", ".amocrm.com"}

// ParseRedirect reads the GET parameters Kommo sends to the redirect URI:
// code, referer, state, from_widget and platform. A denial
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
	if c.Now != nil {
		return c.Now()
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

// Refresh trades a refresh token for a new pair. Kommo's refresh tokens are
// single use: the old one is spent once this returns, so the new token
// must be saved before anything else (NewTokenSource does this). A
// rejected refresh token (400 or 401) is an *OAuthError matching
// ErrReauthorizationRequired.
//
// POST https://{BaseDomain}/oauth2/access_token
//
// Kommo API docs: https://developers.kommo.com/reference/get-token
func (c *OAuthConfig) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	if err := c.oauthCheck("OAuthConfig.Refresh"); err != nil {
		return nil, err
	}
	if refreshToken == "" {
		return nil, fmt.Errorf("kommo: no refresh token: %w", ErrReauthorizationRequired)
	}
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
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: oauthTimeout}
	}
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
		return nil, newOAuthError(resp.StatusCode, body.GrantType, redactURL(req.URL), data, c.ClientSecret, secret)
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

// oauthScrub removes secrets from an error's text.
func oauthScrub(err error, secrets ...string) error {
	msg := err.Error()
	clean := oauthScrubString(msg, secrets...)
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

func oauthScrubString(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "REDACTED")
		}
	}
	return s
}

// OAuthError is a non-2xx answer of the token endpoint. A rejected refresh
// token (400 or 401 on a refresh) matches ErrReauthorizationRequired; any
// error also matches the status sentinel (ErrBadRequest,
// ErrUnauthorized, ...). It never contains a token, code or secret.
type OAuthError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// GrantType is "authorization_code" or "refresh_token".
	GrantType string
	// URL is the token endpoint.
	URL string
	// Title, Detail and Hint are taken from the JSON body when present.
	Title, Detail, Hint string
	// Body is the raw body (capped at 4 KiB, secrets removed).
	Body string
}

// Error describes the failure and, for a rejected refresh token, says that
// the user must authorize again.
func (e *OAuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kommo: token endpoint (%s) answered %d", e.GrantType, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	for _, s := range []string{e.Detail, e.Hint} {
		if s != "" {
			b.WriteString(": " + s)
		}
	}
	if e.reauth() {
		b.WriteString(": the refresh token was rejected; the user must authorize the integration again")
	}
	return b.String()
}

func (e *OAuthError) reauth() bool {
	return e.GrantType == "refresh_token" && (e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnauthorized)
}

// Is matches ErrReauthorizationRequired for a rejected refresh token and
// the sentinel of the status code.
func (e *OAuthError) Is(target error) bool {
	if target == ErrReauthorizationRequired {
		return e.reauth()
	}
	return (&APIError{StatusCode: e.StatusCode}).Is(target)
}

func newOAuthError(status int, grant, u string, body []byte, secrets ...string) *OAuthError {
	e := &OAuthError{StatusCode: status, GrantType: grant, URL: u}
	var eb struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Hint   string `json:"hint"`
	}
	if json.Unmarshal(body, &eb) == nil {
		e.Title = oauthScrubString(eb.Title, secrets...)
		e.Detail = oauthScrubString(eb.Detail, secrets...)
		e.Hint = oauthScrubString(eb.Hint, secrets...)
	}
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	e.Body = oauthScrubString(string(body), secrets...)
	return e
}

// TokenStore persists the token of one account. Kommo's refresh tokens are
// single use, so the token source saves every new pair before using it.
// Implementations must be safe for concurrent use. Two processes sharing
// one stored refresh token race on refresh and one of them loses the grant:
// run one refresher per account, or make Save/Load coordinate (a lock or a
// compare-and-swap in the store).
type TokenStore interface {
	// Load returns the stored token.
	Load(ctx context.Context) (*oauth2.Token, error)
	// Save stores tok, replacing the previous one. It must not return
	// before tok is durable.
	Save(ctx context.Context, tok *oauth2.Token) error
}

// FileTokenStore is a TokenStore backed by a JSON file. Save writes a
// temporary file in the same directory (mode 0600), syncs it and renames it
// over the old one, so a crash leaves either the old or the new token,
// never a torn file.
type FileTokenStore struct {
	path string
	mu   sync.Mutex
}

// NewFileTokenStore returns a store at path. The directory must exist.
func NewFileTokenStore(path string) *FileTokenStore { return &FileTokenStore{path: path} }

// String shows the path only.
func (s *FileTokenStore) String() string { return "kommo.FileTokenStore{" + s.path + "}" }

// oauthFileToken is the file format of FileTokenStore.
type oauthFileToken struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// Load reads the token. A missing file is an error matching fs.ErrNotExist.
func (s *FileTokenStore) Load(ctx context.Context) (*oauth2.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("kommo: load token: %w", err)
	}
	var ft oauthFileToken
	if err := json.Unmarshal(data, &ft); err != nil {
		return nil, fmt.Errorf("kommo: load token from %s: malformed file", s.path)
	}
	return &oauth2.Token{AccessToken: ft.AccessToken, TokenType: ft.TokenType, RefreshToken: ft.RefreshToken, Expiry: ft.Expiry}, nil
}

// Save writes tok atomically (temporary file, fsync, rename) with mode
// 0600.
func (s *FileTokenStore) Save(ctx context.Context, tok *oauth2.Token) (err error) {
	if tok == nil {
		return errors.New("kommo: save token: nil token")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := json.Marshal(oauthFileToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry})
	if err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	if err = os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	// Make the rename itself durable; not every platform can sync a
	// directory, so this is best effort.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// NewTokenSource returns a token source for one account that loads the
// token from store, hands out the access token while it is valid (until
// TokenExpiryDelta before expiry), and refreshes it when it is not.
//
// A refresh happens once however many goroutines ask at the same moment:
// the others wait for it and share the result. The new pair is saved
// before the access token is handed out. If Save fails, Token returns an
// error that wraps the save error; the new pair stays in memory (the old
// refresh token is already spent, so dropping it would lose the grant) and
// the next Token call tries to save it again before handing it out.
//
// A rejected refresh token, or an expired token without one (a long-lived
// token), is an error matching ErrReauthorizationRequired.
//
// ctx is used for every refresh and save, as in x/oauth2: pass a
// long-lived context, not a request's. Use the source with WithTokenSource:
//
//	ts, err := kommo.NewTokenSource(context.Background(), cfg, kommo.NewFileTokenStore("token.json"))
//	client, err := kommo.NewClient(kommo.WithBaseDomain(cfg.BaseDomain), kommo.WithTokenSource(ts))
func NewTokenSource(ctx context.Context, cfg *OAuthConfig, store TokenStore) (oauth2.TokenSource, error) {
	if ctx == nil {
		return nil, errors.New("kommo: NewTokenSource: nil context")
	}
	if store == nil {
		return nil, errors.New("kommo: NewTokenSource: nil store")
	}
	if err := cfg.oauthCheck("NewTokenSource"); err != nil {
		return nil, err
	}
	tok, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("kommo: NewTokenSource: %w", err)
	}
	if tok == nil {
		return nil, errors.New("kommo: NewTokenSource: store returned no token")
	}
	cp := *cfg
	return &oauthTokenSource{ctx: ctx, cfg: &cp, store: store, tok: tok}, nil
}

// oauthTokenSource implements NewTokenSource.
type oauthTokenSource struct {
	ctx   context.Context
	cfg   *OAuthConfig
	store TokenStore

	mu      sync.Mutex
	tok     *oauth2.Token
	unsaved bool // tok was refreshed but Save has not succeeded yet
}

// Token returns a valid access token, refreshing and saving it first when
// needed.
func (s *oauthTokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsaved {
		if err := s.save(); err != nil {
			return nil, err
		}
	}
	if s.valid(s.tok) {
		return s.copyTok(), nil
	}
	if s.tok.RefreshToken == "" {
		return nil, fmt.Errorf("kommo: access token expired and there is no refresh token: %w", ErrReauthorizationRequired)
	}
	tok, err := s.cfg.Refresh(s.ctx, s.tok.RefreshToken)
	if err != nil {
		return nil, fmt.Errorf("kommo: refresh access token: %w", err)
	}
	if tok.RefreshToken == "" {
		// Kommo always rotates the pair; should it ever not, keep the old
		// refresh token as x/oauth2 does.
		tok.RefreshToken = s.tok.RefreshToken
	}
	s.tok, s.unsaved = tok, true
	if err := s.save(); err != nil {
		return nil, err
	}
	return s.copyTok(), nil
}

// save stores s.tok; the caller holds s.mu.
func (s *oauthTokenSource) save() error {
	// The old refresh token is already spent: finish saving the new one
	// even if the source's context has been cancelled meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), oauthTimeout)
	defer cancel()
	if err := s.store.Save(ctx, s.tok); err != nil {
		return errors.Join(errors.New("kommo: the access token was refreshed but the new token could not be saved (it is kept in memory and saving is retried on the next call)"), err)
	}
	s.unsaved = false
	return nil
}

func (s *oauthTokenSource) valid(t *oauth2.Token) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	if t.Expiry.IsZero() {
		return true
	}
	return s.cfg.now().Add(TokenExpiryDelta).Before(t.Expiry)
}

func (s *oauthTokenSource) copyTok() *oauth2.Token {
	cp := *s.tok
	return &cp
}
