package kommo

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// TestTokenRequestsDoNotFollowRedirects: a token endpoint that answers
// 307 or 308 would have the client secret and the code or refresh token
// re-sent to another host, and the tokens it answers accepted. The second
// server gets no request; the error carries the status and the Location
// without its query; the caller's HTTP client is left unchanged.
func TestTokenRequestsDoNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":86400,"access_token":"evil-access","refresh_token":"evil-refresh"}`))
	}))
	defer other.Close()

	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/steal?client_secret=leak&code=c#frag", status)
		}))
		userClient := &http.Client{Timeout: 5 * time.Second}
		cfg := &OAuthConfig{ClientID: "client-id", ClientSecret: oauthTestSecret, RedirectURL: "https://app.example/cb",
			TokenURL: redirector.URL + "/oauth2/access_token", HTTPClient: userClient}

		check := func(name string, err error) {
			t.Helper()
			var oe *OAuthError
			if !errors.As(err, &oe) {
				t.Errorf("%d %s: got %v, want an *OAuthError", status, name, err)
				return
			}
			assert.Equal(t, status, oe.StatusCode, name)
			assert.Equal(t, other.URL+"/steal", oe.Location, name)
			assert.Contains(t, err.Error(), other.URL+"/steal", name)
			assert.NotContains(t, err.Error(), "leak", name)
			assert.NotContains(t, err.Error(), "frag", name)
			assert.NotContains(t, err.Error(), oauthTestSecret, name)
		}
		tok, err := cfg.Exchange(t.Context(), "auth-code")
		check("Exchange", err)
		assert.Nil(t, tok, "%d: tokens from the redirect target are not accepted", status)
		_, err = cfg.Refresh(t.Context(), "refresh-token")
		check("Refresh", err)
		assert.NotErrorIs(t, err, ErrReauthorizationRequired, "a redirect does not mean the grant is gone")

		ts, err := NewTokenSource(context.Background(), cfg, &oauthMemStore{tok: &oauth2.Token{AccessToken: "a0", RefreshToken: "r0", Expiry: time.Now().Add(-time.Hour)}})
		require.NoError(t, err)
		_, err = ts.Token()
		check("token source", err)

		assert.Zero(t, elsewhere.Load(), "%d: the other server got a request", status)
		assert.Nil(t, userClient.CheckRedirect, "the caller's client is not changed")
		redirector.Close()
	}
}
