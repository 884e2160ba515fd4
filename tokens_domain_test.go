package kommo_test

import (
	"net/http"
	"os"
	"path/filepath"
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
