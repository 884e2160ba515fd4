package kommo_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

// hostLog records the host of every request before passing it on.
type hostLog struct {
	mu    sync.Mutex
	hosts []string
	next  http.RoundTripper
}

func (h *hostLog) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.hosts = append(h.hosts, r.URL.Host)
	h.mu.Unlock()
	return h.next.RoundTrip(r)
}

// The base domain a subdomain change recorded on a token is saved with it
// by FileTokenStore, used by a token source that loads the token (after a
// restart, or in another process), and carried on to every token refreshed
// after it, so the account is never looked for at its old domain again.
func TestTokenBaseDomainPersists(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	srv := kommotest.New(t)
	_, rt := srv.IssueTokens(0) // expired: the first call refreshes
	path := filepath.Join(t.TempDir(), "token.json")
	store := kommo.NewFileTokenStore(path)
	moved := (&oauth2.Token{AccessToken: "old-access", RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).
		WithExtra(map[string]any{kommo.TokenBaseDomainKey: "renamed.kommo.com"})
	require.NoError(t, store.Save(ctx, moved))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"base_domain":"renamed.kommo.com"`)
	loaded, err := store.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "renamed.kommo.com", kommo.TokenBaseDomain(loaded))

	hosts := &hostLog{next: srv.RoutingClient().Transport}
	cfg := &kommo.OAuthConfig{ClientID: srv.OAuthClientID(), ClientSecret: srv.OAuthClientSecret(),
		RedirectURL: srv.OAuthRedirectURI(), BaseDomain: "old.kommo.com", HTTPClient: &http.Client{Transport: hosts}}
	ts, err := kommo.NewTokenSource(ctx, cfg, store)
	require.NoError(t, err)
	tok, err := ts.TokenContext(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, "old-access", tok.AccessToken, "refreshed")
	assert.Equal(t, []string{"renamed.kommo.com"}, hosts.hosts, "the refresh went to the recorded domain")
	assert.Equal(t, "renamed.kommo.com", kommo.TokenBaseDomain(tok), "the new token carries it on")
	saved, err := store.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, saved.AccessToken)
	assert.Equal(t, "renamed.kommo.com", kommo.TokenBaseDomain(saved), "and the store keeps it")
}

// jwtFor returns an unsigned JWT-shaped token with the claims (the SDK
// reads the claims of an access token without verifying them).
func jwtFor(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	require.NoError(t, err)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(b) + "." + enc([]byte("sig"))
}

// AccountSubdomain against kommotest: the request goes to the access
// token's api_domain (routed to the fake) with the refresh token in
// X-Refresh-Token, and the fake's account comes back.
func TestAccountSubdomainAgainstKommotest(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	srv := kommotest.New(t, kommotest.WithRequestLog(10))
	_, rt := srv.IssueTokens(time.Hour)
	hosts := &hostLog{next: srv.RoutingClient().Transport}
	cfg := &kommo.OAuthConfig{ClientID: srv.OAuthClientID(), ClientSecret: srv.OAuthClientSecret(),
		RedirectURL: srv.OAuthRedirectURI(), BaseDomain: "old.kommo.com", HTTPClient: &http.Client{Transport: hosts}}
	tok := &oauth2.Token{AccessToken: jwtFor(t, map[string]any{"api_domain": "api-c.kommo.com", "exp": 4102444800}), RefreshToken: rt}

	sub, err := cfg.AccountSubdomain(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, &kommo.AccountSubdomain{ID: srv.AccountID(), Subdomain: strings.TrimSuffix(srv.AccountDomain(), ".kommo.com"),
		Domain: srv.AccountDomain(), TopLevelDomain: "com"}, sub)
	assert.Equal(t, []string{"api-c.kommo.com"}, hosts.hosts)
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, http.MethodGet, reqs[0].Method)
	assert.Equal(t, "/oauth2/account/current/subdomain", reqs[0].Path)
	assert.Equal(t, rt, reqs[0].Header.Get("X-Refresh-Token"))

	// A spent or unknown refresh token is refused.
	_, err = cfg.AccountSubdomain(ctx, &oauth2.Token{AccessToken: tok.AccessToken, RefreshToken: "rt-unknown"})
	assert.ErrorIs(t, err, kommo.ErrUnauthorized)
	assert.NotContains(t, err.Error(), "rt-unknown", "the refresh token is not in the error")
}

// A renamed account end to end against kommotest: the refresh at the
// stored (old) domain is refused, the token source looks the account up
// at the access token's api_domain, refreshes at the domain the fake
// names, records it on the token and saves it.
func TestTokenSourceFollowsRenamedAccountOnKommotest(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	srv := kommotest.New(t)
	_, rt := srv.IssueTokensFor(srv.AccountDomain(), time.Hour) // bound to the account's current domain
	store := kommo.NewFileTokenStore(filepath.Join(t.TempDir(), "token.json"))
	require.NoError(t, store.Save(ctx, &oauth2.Token{
		AccessToken:  jwtFor(t, map[string]any{"api_domain": "api-c.kommo.com", "exp": 4102444800}),
		RefreshToken: rt, Expiry: time.Now().Add(-time.Minute),
	}))
	hosts := &hostLog{next: srv.RoutingClient().Transport}
	cfg := &kommo.OAuthConfig{ClientID: srv.OAuthClientID(), ClientSecret: srv.OAuthClientSecret(),
		RedirectURL: srv.OAuthRedirectURI(), BaseDomain: "before-rename.kommo.com", HTTPClient: &http.Client{Transport: hosts}}
	ts, err := kommo.NewTokenSource(ctx, cfg, store)
	require.NoError(t, err)

	tok, err := ts.TokenContext(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"before-rename.kommo.com", "api-c.kommo.com", srv.AccountDomain()}, hosts.hosts,
		"refused at the old domain, looked up at api_domain, refreshed at the new domain")
	assert.Equal(t, srv.AccountDomain(), kommo.TokenBaseDomain(tok))
	granted, _ := srv.Refreshes(srv.AccountDomain())
	_, refused := srv.Refreshes("before-rename.kommo.com")
	assert.Equal(t, [2]int{1, 1}, [2]int{granted, refused})
	saved, err := store.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, saved.AccessToken)
	assert.Equal(t, srv.AccountDomain(), kommo.TokenBaseDomain(saved), "the new domain is saved with the tokens")
}
