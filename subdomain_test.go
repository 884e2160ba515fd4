package kommo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// testJWT builds an unsigned token with the given claims (the SDK only
// decodes access tokens).
func testJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(payload) + ".c2ln"
}

func TestParseAccessTokenClaims(t *testing.T) {
	t.Parallel()
	c, err := ParseAccessTokenClaims(testJWT(t, map[string]any{"account_id": 31089582, "base_domain": "amocrm.ru",
		"api_domain": "api-b.amocrm.ru", "scopes": []string{"crm", "notifications"}, "version": 2, "exp": 1700086400, "iat": 1700000000}))
	require.NoError(t, err)
	assert.Equal(t, &AccessTokenClaims{AccountID: 31089582, BaseDomain: "amocrm.ru", APIDomain: "api-b.amocrm.ru",
		Scopes: []string{"crm", "notifications"}, Version: 2, ExpiresAt: 1700086400, IssuedAt: 1700000000}, c)
	host, err := c.apiHost()
	require.NoError(t, err)
	assert.Equal(t, "api-b.amocrm.ru", host)

	bare := &AccessTokenClaims{APIDomain: "api-a", BaseDomain: "amocrm.ru"}
	host, err = bare.apiHost()
	require.NoError(t, err)
	assert.Equal(t, "api-a.amocrm.ru", host, "a bare api_domain is completed with base_domain")
	_, err = (&AccessTokenClaims{}).apiHost()
	assert.ErrorIs(t, err, ErrNoAPIDomain)
	_, err = (&AccessTokenClaims{APIDomain: "evil.example/x"}).apiHost()
	assert.ErrorIs(t, err, ErrInvalidJWT)

	for _, bad := range []string{"kommotest-access-token", "a.b", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("not json")) + ".c"} {
		_, err := ParseAccessTokenClaims(bad)
		assert.ErrorIs(t, err, ErrInvalidJWT, bad)
		if err != nil {
			assert.NotContains(t, err.Error(), bad)
		}
	}
}

// subdomainServers are the old and new account domains and the API
// domain, as loopback TLS servers.
type subdomainServers struct {
	old, moved, api *httptest.Server
	mu              sync.Mutex
	refreshTokens   []string // X-Refresh-Token values seen by the API domain
	oldHits         int
}

// The servers' names; client() dials them on loopback.
const (
	oldDomain   = "old-name.kommo.com"
	movedDomain = "new-name.kommo.com"
	apiDomain   = "api-c.kommo.com"
)

// client returns an HTTP client that reaches the three names on their
// loopback servers (verifying the test certificate as example.com).
func (ss *subdomainServers) client() *http.Client {
	tr := ss.api.Client().Transport.(*http.Transport).Clone()
	addrs := map[string]string{oldDomain + ":443": ss.old.Listener.Addr().String(),
		movedDomain + ":443": ss.moved.Listener.Addr().String(), apiDomain + ":443": ss.api.Listener.Addr().String()}
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		a, ok := addrs[addr]
		if !ok {
			return nil, fmt.Errorf("test dialer: unknown host %s", addr)
		}
		return d.DialContext(ctx, network, a)
	}
	tr.TLSClientConfig.ServerName = "example.com"
	return &http.Client{Transport: tr}
}

func newSubdomainServers(t *testing.T) *subdomainServers {
	t.Helper()
	ss := &subdomainServers{}
	ss.old = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss.mu.Lock()
		ss.oldHits++
		ss.mu.Unlock()
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"title":"Not Found","status":404,"detail":"account not found"}`))
	}))
	ss.moved = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/oauth2/access_token" {
			http.Error(w, "unexpected", http.StatusTeapot)
			return
		}
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["refresh_token"] != "rt-1" || body["grant_type"] != "refresh_token" {
			http.Error(w, `{"title":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":86400,"server_time":1700000000,"access_token":"at-2","refresh_token":"rt-2"}`))
	}))
	ss.api = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/oauth2/account/current/subdomain" {
			http.Error(w, "unexpected", http.StatusTeapot)
			return
		}
		ss.mu.Lock()
		ss.refreshTokens = append(ss.refreshTokens, r.Header.Get("X-Refresh-Token"))
		ss.mu.Unlock()
		if r.Header.Get("X-Refresh-Token") != "rt-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":31089582,"subdomain":"renamed","domain":"` + movedDomain + `","top_level_domain":"com"}`))
	}))
	t.Cleanup(ss.old.Close)
	t.Cleanup(ss.moved.Close)
	t.Cleanup(ss.api.Close)
	return ss
}

func (ss *subdomainServers) token(t *testing.T, expiry time.Time) *oauth2.Token {
	return &oauth2.Token{AccessToken: testJWT(t, map[string]any{"account_id": 31089582, "api_domain": apiDomain}),
		RefreshToken: "rt-1", TokenType: "Bearer", Expiry: expiry}
}

func TestOAuthConfigAccountSubdomain(t *testing.T) {
	t.Parallel()
	ss := newSubdomainServers(t)
	cfg := &OAuthConfig{ClientID: "id", ClientSecret: "secret", RedirectURL: "https://i.example/cb", BaseDomain: oldDomain, HTTPClient: ss.client()}
	sub, err := cfg.AccountSubdomain(t.Context(), ss.token(t, time.Now().Add(time.Hour)))
	require.NoError(t, err)
	assert.Equal(t, &AccountSubdomain{ID: 31089582, Subdomain: "renamed", Domain: movedDomain, TopLevelDomain: "com"}, sub)
	assert.Equal(t, []string{"rt-1"}, ss.refreshTokens)

	bad := ss.token(t, time.Time{})
	bad.RefreshToken = "rt-spent"
	_, err = cfg.AccountSubdomain(t.Context(), bad)
	assert.ErrorIs(t, err, ErrUnauthorized)

	_, err = cfg.AccountSubdomain(t.Context(), &oauth2.Token{AccessToken: "opaque", RefreshToken: "rt"})
	assert.ErrorIs(t, err, ErrInvalidJWT)
	_, err = cfg.AccountSubdomain(t.Context(), &oauth2.Token{AccessToken: "x"})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []string{"token.refresh_token: required"}, ve.Problems)
}

type recordingStore struct {
	mu    sync.Mutex
	tok   *oauth2.Token
	saved []*oauth2.Token
}

func (s *recordingStore) Load(context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, nil
}

func (s *recordingStore) Save(_ context.Context, tok *oauth2.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok = tok
	s.saved = append(s.saved, tok)
	return nil
}

func TestTokenSourceFollowsSubdomainChange(t *testing.T) {
	t.Parallel()
	ss := newSubdomainServers(t)
	store := &recordingStore{tok: ss.token(t, time.Now().Add(-time.Minute))} // expired: refresh at once
	cfg := &OAuthConfig{ClientID: "id", ClientSecret: "secret", RedirectURL: "https://i.example/cb", BaseDomain: oldDomain, HTTPClient: ss.client()}
	ts, err := NewTokenSource(t.Context(), cfg, store)
	require.NoError(t, err)

	tok, err := ts.TokenContext(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "at-2", tok.AccessToken)
	assert.Equal(t, movedDomain, TokenBaseDomain(tok))
	require.Len(t, store.saved, 1)
	assert.Equal(t, "rt-2", store.saved[0].RefreshToken)
	assert.Equal(t, movedDomain, TokenBaseDomain(store.saved[0]), "the new domain is saved with the tokens")
	assert.Equal(t, 1, ss.oldHits)
	assert.Equal(t, oldDomain, cfg.BaseDomain, "the caller's config is left as it was")
}

func TestTokenSourceNoMoveOnOtherErrors(t *testing.T) {
	t.Parallel()
	ss := newSubdomainServers(t)
	// The API domain says the account lives where it is: nothing to follow.
	same := &recordingStore{tok: ss.token(t, time.Now().Add(-time.Minute))}
	cfg := &OAuthConfig{ClientID: "id", ClientSecret: "secret", RedirectURL: "https://i.example/cb", BaseDomain: movedDomain, HTTPClient: ss.client()}
	same.tok.RefreshToken = "rt-spent" // the moved domain answers 401; the lookup answers 401 too
	ts, err := NewTokenSource(t.Context(), cfg, same)
	require.NoError(t, err)
	_, err = ts.TokenContext(t.Context())
	assert.ErrorIs(t, err, ErrReauthorizationRequired)
	assert.Empty(t, same.saved)
	assert.Empty(t, TokenBaseDomain(nil))
}
