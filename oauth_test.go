package kommo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo/internal/testkit"
)

const (
	oauthTestTokenURL = "https://example.kommo.com/oauth2/access_token"
	oauthTestSecret   = "client-secret-value"
)

var oauthTestNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newOAuthTestConfig returns a config whose token requests go through mock
// and whose clock is fixed at oauthTestNow.
func newOAuthTestConfig(mock *httpmock.MockTransport) *OAuthConfig {
	return &OAuthConfig{
		ClientID:     "client-id",
		ClientSecret: oauthTestSecret,
		RedirectURL:  "https://app.example/oauth/callback",
		BaseDomain:   "example.kommo.com",
		HTTPClient:   &http.Client{Transport: mock},
		Clock:        testkit.NewClock(oauthTestNow),
	}
}

// oauthMemStore is an in-memory TokenStore that records saves and can be
// told to fail.
type oauthMemStore struct {
	mu       sync.Mutex
	tok      *oauth2.Token
	saved    []*oauth2.Token // successful saves
	attempts int
	saveErr  error
	loadErr  error
}

func (s *oauthMemStore) Load(context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	cp := *s.tok
	return &cp, nil
}

func (s *oauthMemStore) Save(_ context.Context, tok *oauth2.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if s.saveErr != nil {
		return s.saveErr
	}
	cp := *tok
	s.tok = &cp
	s.saved = append(s.saved, &cp)
	return nil
}

func (s *oauthMemStore) setSaveErr(err error) {
	s.mu.Lock()
	s.saveErr = err
	s.mu.Unlock()
}

func (s *oauthMemStore) snapshot() (saved []*oauth2.Token, attempts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*oauth2.Token(nil), s.saved...), s.attempts
}

// oauthTokenEndpoint answers the token endpoint with the fixture and
// records every request body.
type oauthTokenEndpoint struct {
	calls  atomic.Int32
	mu     sync.Mutex
	bodies []map[string]string
	hdrs   []http.Header
}

func (e *oauthTokenEndpoint) responder(t testing.TB, status int, fixture string, delay time.Duration) httpmock.Responder {
	t.Helper()
	body := testkit.Fixture(t, "crm", fixture)
	return func(req *http.Request) (*http.Response, error) {
		e.calls.Add(1)
		raw, _ := io.ReadAll(req.Body)
		var m map[string]string
		_ = json.Unmarshal(raw, &m)
		e.mu.Lock()
		e.bodies = append(e.bodies, m)
		e.hdrs = append(e.hdrs, req.Header.Clone())
		e.mu.Unlock()
		if delay > 0 {
			// Keep the refresh in flight so that the other goroutines
			// pile up behind it.
			time.Sleep(delay)
		}
		resp := httpmock.NewBytesResponse(status, body)
		resp.Header.Set("Content-Type", "application/json")
		return resp, nil
	}
}

func TestAuthCodeURL(t *testing.T) {
	cfg := &OAuthConfig{ClientID: "client-id"}
	u, err := url.Parse(cfg.AuthCodeURL("st8", AuthCodeMode(AuthModePostMessage)))
	require.NoError(t, err)
	assert.Equal(t, "https", u.Scheme)
	assert.Equal(t, "www.kommo.com", u.Host)
	assert.Equal(t, "/oauth", u.Path)
	assert.Equal(t, url.Values{"client_id": {"client-id"}, "state": {"st8"}, "mode": {"post_message"}}, u.Query())

	cfg.AuthURL = AuthURLAmoCRMRU
	got := cfg.AuthCodeURL("", AuthCodeMode(AuthModePopup), AuthCodeParam("x", "y&z"))
	assert.Equal(t, "https://www.amocrm.ru/oauth?client_id=client-id&mode=popup&x=y%26z", got)
}

func TestParseRedirect(t *testing.T) {
	r := httptest.NewRequest("GET", "/oauth/callback?code=auth-code-123&referer=Example.Kommo.com&state=st8&from_widget=1&platform=2&client_id=8f1e2c3d-4b5a", nil)
	red, err := ParseRedirect(r)
	require.NoError(t, err)
	assert.Equal(t, &AuthRedirect{Code: "auth-code-123", Referer: "example.kommo.com", State: "st8", FromWidget: true, Platform: 2, ClientID: "8f1e2c3d-4b5a"}, red)
	require.NoError(t, red.VerifyState("st8"))

	var ae *AuthError
	require.ErrorAs(t, red.VerifyState("other"), &ae)
	assert.Equal(t, "state_mismatch", ae.Code)
	require.ErrorAs(t, red.VerifyState(""), &ae, "an empty expected state never matches")

	// A referer with a scheme is normalised; no from_widget means false.
	red, err = ParseRedirect(httptest.NewRequest("GET", "/cb?code=c&referer=https://acme.amocrm.ru/", nil))
	require.NoError(t, err)
	assert.Equal(t, "acme.amocrm.ru", red.Referer)
	assert.False(t, red.FromWidget)
	assert.Zero(t, red.Platform)
	assert.Empty(t, red.ClientID, "no client_id in the redirect")
}

// TestAuthRedirectClientID: the redirect's client_id is kept, and every
// print path shows it while hiding the code.
func TestAuthRedirectClientID(t *testing.T) {
	const code, clientID = "ACaaa111/ACbbb222", "8f1e2c3d-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
	red, err := ParseRedirect(httptest.NewRequest("GET", "/cb?code="+url.QueryEscape(code)+"&referer=example.kommo.com&state=st8&client_id="+clientID, nil))
	require.NoError(t, err)
	assert.Equal(t, clientID, red.ClientID)
	assert.Equal(t, code, red.Code)

	// The client id survives a denial, like the state.
	denied, err := ParseRedirect(httptest.NewRequest("GET", "/cb?error=access_denied&client_id="+clientID, nil))
	require.Error(t, err)
	assert.Equal(t, clientID, denied.ClientID)

	want := "kommo.AuthRedirect{ClientID:" + clientID + " Referer:example.kommo.com State:st8 FromWidget:false Platform:0 Code:REDACTED}"
	assert.Equal(t, want, red.String())
	assert.Equal(t, want, red.GoString())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		assert.Equal(t, want, fmt.Sprintf(verb, red), verb)
		assert.Equal(t, want, fmt.Sprintf(verb, *red), verb+" of a value")
	}
	data, err := json.Marshal(red)
	require.NoError(t, err)
	assert.Equal(t, `{"Code":"REDACTED","Referer":"example.kommo.com","State":"st8","FromWidget":false,"Platform":0,"ClientID":"`+clientID+`"}`, string(data))

	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})).Info("redirect", "red", red)
	assert.Equal(t, "level=INFO msg=redirect red.client_id="+clientID+" red.referer=example.kommo.com red.from_widget=false red.platform=0 red.code=REDACTED\n", buf.String())
	printAll(t, "AuthRedirect with client_id", red)
}

func TestParseRedirectDenied(t *testing.T) {
	red, err := ParseRedirect(httptest.NewRequest("GET", "/cb?error=access_denied&state=st8", nil))
	var ae *AuthError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "access_denied", ae.Code)
	assert.Equal(t, "st8", ae.State)
	assert.Equal(t, "st8", red.State)
}

func TestParseRedirectMalformed(t *testing.T) {
	for name, tc := range map[string]struct {
		query string
		want  []string
	}{
		"empty":           {"", []string{"missing code", "missing referer"}},
		"foreign referer": {"code=c&referer=evil.example", []string{`referer "evil.example" is not a Kommo or amoCRM account domain`}},
		"suffix trick":    {"code=c&referer=evilkommo.com", []string{"not a Kommo or amoCRM account domain"}},
		"bare suffix":     {"code=c&referer=.kommo.com", []string{"not a Kommo or amoCRM account domain"}},
		"path in referer": {"code=c&referer=" + url.QueryEscape("a.kommo.com/x@evil"), []string{"is not a host name"}},
		"port":            {"code=c&referer=" + url.QueryEscape("a.kommo.com:8443"), []string{"is not a host name"}},
		"bad platform":    {"code=c&referer=a.kommo.com&platform=x", []string{`platform "x" is not a number`}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseRedirect(httptest.NewRequest("GET", "/cb?"+tc.query, nil))
			var ae *AuthError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, "invalid_redirect", ae.Code)
			for _, w := range tc.want {
				assert.Contains(t, ae.Description, w)
			}
		})
	}
	_, err := ParseRedirect(nil)
	require.Error(t, err)
}

func TestExchange(t *testing.T) {
	mock := httpmock.NewMockTransport()
	var ep oauthTokenEndpoint
	mock.RegisterResponder("POST", oauthTestTokenURL, ep.responder(t, 200, "token.json", 0))
	cfg := newOAuthTestConfig(mock)

	tok, err := cfg.Exchange(t.Context(), "auth-code-123")
	require.NoError(t, err)

	require.Len(t, ep.bodies, 1)
	assert.Equal(t, map[string]string{
		"client_id":     "client-id",
		"client_secret": oauthTestSecret,
		"grant_type":    "authorization_code",
		"code":          "auth-code-123",
		"redirect_uri":  "https://app.example/oauth/callback",
	}, ep.bodies[0])
	assert.Equal(t, "application/json", ep.hdrs[0].Get("Content-Type"))

	assert.Equal(t, "new-access-jwt", tok.AccessToken)
	assert.Equal(t, "new-refresh-token", tok.RefreshToken)
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.Equal(t, int64(86400), tok.ExpiresIn)
	assert.Equal(t, oauthTestNow.Add(24*time.Hour), tok.Expiry)
	assert.EqualValues(t, 1751621727, tok.Extra("server_time"))
}

func TestExchangeForAccountAndTokenURL(t *testing.T) {
	mock := httpmock.NewMockTransport()
	var ep oauthTokenEndpoint
	mock.RegisterResponder("POST", "https://acme.amocrm.ru/oauth2/access_token", ep.responder(t, 200, "token.json", 0))
	mock.RegisterResponder("POST", "https://proxy.test/token", ep.responder(t, 200, "token.json", 0))
	base := newOAuthTestConfig(mock)
	base.BaseDomain = ""

	_, err := base.ForAccount("acme.amocrm.ru").Exchange(t.Context(), "c")
	require.NoError(t, err)
	assert.Empty(t, base.BaseDomain, "ForAccount copies")

	base.TokenURL = "https://proxy.test/token"
	_, err = base.Exchange(t.Context(), "c")
	require.NoError(t, err)
	assert.Equal(t, int32(2), ep.calls.Load())
}

func TestExchangeErrors(t *testing.T) {
	mock := httpmock.NewMockTransport()
	var ep oauthTokenEndpoint
	mock.RegisterResponder("POST", oauthTestTokenURL, ep.responder(t, 400, "token_error_400.json", 0))
	cfg := newOAuthTestConfig(mock)

	_, err := cfg.Exchange(t.Context(), "auth-code-123")
	var oe *OAuthError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, 400, oe.StatusCode)
	assert.Equal(t, "authorization_code", oe.GrantType)
	assert.Equal(t, "Token has been revoked", oe.Hint)
	assert.ErrorIs(t, err, ErrBadRequest)
	assert.False(t, errors.Is(err, ErrReauthorizationRequired), "only a rejected refresh token means re-authorize")
	assert.NotContains(t, err.Error(), "auth-code-123")
	assert.NotContains(t, err.Error(), oauthTestSecret)

	// every missing setting at once, before any request
	_, err = (&OAuthConfig{BaseDomain: "a/b"}).Exchange(t.Context(), "")
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Len(t, ve.Problems, 4)
	_, err = cfg.Exchange(t.Context(), " ")
	require.ErrorAs(t, err, &ve)
	var nilCfg *OAuthConfig
	_, err = nilCfg.Exchange(t.Context(), "c")
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, int32(1), ep.calls.Load())

	// a 200 without an access token is an error
	mock.RegisterResponder("POST", oauthTestTokenURL, httpmock.NewStringResponder(200, `{"token_type":"Bearer"}`))
	_, err = cfg.Exchange(t.Context(), "c")
	require.ErrorContains(t, err, "no access_token")

	// transport errors do not leak the secret either
	mock.RegisterResponder("POST", oauthTestTokenURL, httpmock.NewErrorResponder(errors.New("dial failed")))
	_, err = cfg.Exchange(t.Context(), "auth-code-123")
	require.ErrorContains(t, err, "dial failed")
	assert.NotContains(t, err.Error(), oauthTestSecret)
}

func TestRefreshRejectedNeedsReauthorization(t *testing.T) {
	for _, st := range []struct {
		status  int
		fixture string
	}{{400, "token_error_400.json"}, {401, "token_error_401.json"}} {
		t.Run(fmt.Sprint(st.status), func(t *testing.T) {
			mock := httpmock.NewMockTransport()
			var ep oauthTokenEndpoint
			mock.RegisterResponder("POST", oauthTestTokenURL, ep.responder(t, st.status, st.fixture, 0))
			store := &oauthMemStore{tok: &oauth2.Token{AccessToken: "old-access", RefreshToken: "old-refresh-token", Expiry: oauthTestNow.Add(-time.Minute)}}
			ts, err := NewTokenSource(t.Context(), newOAuthTestConfig(mock), store)
			require.NoError(t, err)

			_, err = ts.Token()
			require.ErrorIs(t, err, ErrReauthorizationRequired)
			var oe *OAuthError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, st.status, oe.StatusCode)
			assert.Equal(t, "refresh_token", oe.GrantType)
			assert.Contains(t, err.Error(), "must authorize the integration again")
			assert.NotContains(t, err.Error(), "old-refresh-token")
			assert.NotContains(t, err.Error(), oauthTestSecret)
			assert.Equal(t, "old-refresh-token", ep.bodies[0]["refresh_token"])
			assert.Equal(t, "refresh_token", ep.bodies[0]["grant_type"])
			saved, _ := store.snapshot()
			assert.Empty(t, saved)
		})
	}
}

func TestRefreshErrorBodyIsScrubbed(t *testing.T) {
	mock := httpmock.NewMockTransport()
	mock.RegisterResponder("POST", oauthTestTokenURL, httpmock.NewStringResponder(400,
		`{"hint":"refresh token old-refresh-token is revoked","detail":"secret client-secret-value"}`))
	_, err := newOAuthTestConfig(mock).Refresh(t.Context(), "old-refresh-token")
	var oe *OAuthError
	require.ErrorAs(t, err, &oe)
	for _, s := range []string{err.Error(), oe.Body, oe.Hint, oe.Detail} {
		assert.NotContains(t, s, "old-refresh-token")
		assert.NotContains(t, s, oauthTestSecret)
	}
	assert.Contains(t, oe.Hint, "REDACTED")

	_, err = newOAuthTestConfig(mock).Refresh(t.Context(), "")
	assert.ErrorIs(t, err, ErrReauthorizationRequired)
}

func TestTokenSourceHandsOutValidToken(t *testing.T) {
	mock := httpmock.NewMockTransport()
	var ep oauthTokenEndpoint
	mock.RegisterResponder("POST", oauthTestTokenURL, ep.responder(t, 200, "token.json", 0))
	store := &oauthMemStore{tok: &oauth2.Token{AccessToken: "current", RefreshToken: "r", Expiry: oauthTestNow.Add(TokenExpiryDelta + time.Second)}}
	ts, err := NewTokenSource(t.Context(), newOAuthTestConfig(mock), store)
	require.NoError(t, err)

	tok, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, "current", tok.AccessToken)
	tok.AccessToken = "mutated by caller"
	tok, err = ts.Token()
	require.NoError(t, err)
	assert.Equal(t, "current", tok.AccessToken, "callers get copies")
	assert.Zero(t, ep.calls.Load())
}

func TestTokenSourceRefreshesWithinExpiryDelta(t *testing.T) {
	mock := httpmock.NewMockTransport()
	var ep oauthTokenEndpoint
	mock.RegisterResponder("POST", oauthTestTokenURL, ep.responder(t, 200, "token.json", 0))
	store := &oauthMemStore{tok: &oauth2.Token{AccessToken: "old", RefreshToken: "old-refresh", Expiry: oauthTestNow.Add(5 * time.Second)}}
	ts, err := NewTokenSource(t.Context(), newOAuthTestConfig(mock), store)
	require.NoError(t, err)

	tok, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, "new-access-jwt", tok.AccessToken)
	assert.Equal(t, int32(1), ep.calls.Load())
	saved, _ := store.snapshot()
	require.Len(t, saved, 1)
	assert.Equal(t, "new-refresh-token", saved[0].RefreshToken)
	assert.Equal(t, oauthTestNow.Add(24*time.Hour), saved[0].Expiry)
}

func TestTokenSourceLongLivedToken(t *testing.T) {
	mock := httpmock.NewMockTransport()
	// No refresh token and no expiry: handed out as is.
	ts, err := NewTokenSource(t.Context(), newOAuthTestConfig(mock), &oauthMemStore{tok: &oauth2.Token{AccessToken: "llt"}})
	require.NoError(t, err)
	tok, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, "llt", tok.AccessToken)

	// Expired and no refresh token: the user must authorize again.
	ts, err = NewTokenSource(t.Context(), newOAuthTestConfig(mock), &oauthMemStore{tok: &oauth2.Token{AccessToken: "llt", Expiry: oauthTestNow.Add(-time.Hour)}})
	require.NoError(t, err)
	_, err = ts.Token()
	require.ErrorIs(t, err, ErrReauthorizationRequired)
	assert.Zero(t, mock.GetTotalCallCount())
}

func TestNewTokenSourceErrors(t *testing.T) {
	mock := httpmock.NewMockTransport()
	cfg := newOAuthTestConfig(mock)
	_, err := NewTokenSource(t.Context(), cfg, nil)
	require.Error(t, err)

	loadErr := errors.New("disk on fire")
	_, err = NewTokenSource(t.Context(), cfg, &oauthMemStore{loadErr: loadErr})
	require.ErrorIs(t, err, loadErr)

	_, err = NewTokenSource(t.Context(), &OAuthConfig{}, &oauthMemStore{tok: &oauth2.Token{}})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []string{"ClientID: required", "ClientSecret: required", "RedirectURL: required", "BaseDomain: required (or TokenURL)"}, ve.Problems)

	_, err = NewTokenSource(t.Context(), cfg, NewFileTokenStore(filepath.Join(t.TempDir(), "missing.json")))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

// TestTokenSourceSaveFailure: the new pair is not handed out until it is
// saved; the save error is returned; the pair is kept and saved on the next
// call without spending another refresh.
func TestTokenSourceSaveFailure(t *testing.T) {
	mock := httpmock.NewMockTransport()
	var ep oauthTokenEndpoint
	mock.RegisterResponder("POST", oauthTestTokenURL, ep.responder(t, 200, "token.json", 0))
	saveErr := errors.New("store unavailable")
	store := &oauthMemStore{tok: &oauth2.Token{AccessToken: "old", RefreshToken: "old-refresh", Expiry: oauthTestNow.Add(-time.Minute)}, saveErr: saveErr}
	ts, err := NewTokenSource(t.Context(), newOAuthTestConfig(mock), store)
	require.NoError(t, err)

	// Through the client: the API call fails with the save error and is
	// never sent.
	c, apiMock := newCRMTestClient(t, WithTokenSource(ts))
	_, _, err = c.Account.Get(t.Context(), nil)
	require.ErrorIs(t, err, saveErr)
	assert.Contains(t, err.Error(), "could not be saved")
	assert.NotContains(t, err.Error(), "new-access-jwt")
	assert.NotContains(t, err.Error(), "new-refresh-token")
	assert.Zero(t, apiMock.GetTotalCallCount())

	_, err = ts.Token()
	require.ErrorIs(t, err, saveErr, "still unsaved: still an error")
	assert.Equal(t, int32(1), ep.calls.Load(), "the spent refresh token is not used again")

	store.setSaveErr(nil)
	tok, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, "new-access-jwt", tok.AccessToken)
	assert.Equal(t, int32(1), ep.calls.Load())
	saved, attempts := store.snapshot()
	require.Len(t, saved, 1)
	assert.Equal(t, "new-refresh-token", saved[0].RefreshToken)
	assert.Equal(t, 3, attempts)
}

// TestTokenSourceConcurrentRefresh: 50 goroutines call the API while the
// token is expired. Exactly one refresh reaches the token endpoint, the new
// pair is saved once, and every call carries the new token.
func TestTokenSourceConcurrentRefresh(t *testing.T) {
	mock := httpmock.NewMockTransport()
	var ep oauthTokenEndpoint
	mock.RegisterResponder("POST", oauthTestTokenURL, ep.responder(t, 200, "token.json", 50*time.Millisecond))
	var good, bad atomic.Int32
	account := testkit.Fixture(t, "crm", "account.json")
	mock.RegisterResponder("GET", crmBase+"api/v4/account", func(req *http.Request) (*http.Response, error) {
		if req.Header.Get("Authorization") != "Bearer new-access-jwt" {
			bad.Add(1)
			return httpmock.NewBytesResponse(401, testkit.Fixture(t, "crm", "problem_401.json")), nil
		}
		good.Add(1)
		return httpmock.NewBytesResponse(200, account), nil
	})

	store := &oauthMemStore{tok: &oauth2.Token{AccessToken: "expired-access", TokenType: "Bearer", RefreshToken: "old-refresh", Expiry: oauthTestNow.Add(-time.Second)}}
	ts, err := NewTokenSource(context.Background(), newOAuthTestConfig(mock), store)
	require.NoError(t, err)
	c, err := NewClient(
		WithCRMBaseURL(crmBase),
		WithTokenSource(ts),
		WithHTTPClient(&http.Client{Transport: mock}),
		WithRetryPolicy(NoRetries()),
		WithRateLimit(0, 0),
	)
	require.NoError(t, err)

	const n = 50
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			acc, _, err := c.Account.Get(t.Context(), nil)
			if err == nil && acc.ID != 1231414 {
				err = fmt.Errorf("unexpected account %d", acc.ID)
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		assert.NoError(t, err, "call %d", i)
	}
	assert.Equal(t, int32(1), ep.calls.Load(), "exactly one refresh request")
	assert.Equal(t, "old-refresh", ep.bodies[0]["refresh_token"])
	assert.Equal(t, int32(n), good.Load())
	assert.Zero(t, bad.Load())
	saved, attempts := store.snapshot()
	assert.Equal(t, 1, attempts, "saved once")
	require.Len(t, saved, 1)
	assert.Equal(t, "new-access-jwt", saved[0].AccessToken)
	assert.Equal(t, "new-refresh-token", saved[0].RefreshToken)
}

func TestFileTokenStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token.json")
	// an old, world-readable file is replaced
	require.NoError(t, os.WriteFile(path, []byte(`{"access_token":"old"}`), 0o644))
	store := NewFileTokenStore(path)

	want := &oauth2.Token{AccessToken: "a", TokenType: "Bearer", RefreshToken: "r", Expiry: oauthTestNow}
	require.NoError(t, store.Save(t.Context(), want))

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.JSONEq(t, `{"access_token":"a","token_type":"Bearer","refresh_token":"r","expiry":"2026-03-01T12:00:00Z"}`, string(raw))

	got, err := store.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "a", got.AccessToken)
	assert.Equal(t, "r", got.RefreshToken)
	assert.Equal(t, "Bearer", got.TokenType)
	assert.True(t, got.Expiry.Equal(oauthTestNow))

	// overwrite
	require.NoError(t, store.Save(t.Context(), &oauth2.Token{AccessToken: "b", RefreshToken: "r2"}))
	got, err = store.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "b", got.AccessToken)
	assert.True(t, got.Expiry.IsZero())
	assert.NotContains(t, store.String(), "r2")
}

func TestFileTokenStoreErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := NewFileTokenStore(filepath.Join(dir, "none.json")).Load(t.Context())
	require.ErrorIs(t, err, fs.ErrNotExist)

	require.Error(t, NewFileTokenStore(filepath.Join(dir, "no", "such", "dir.json")).Save(t.Context(), &oauth2.Token{AccessToken: "a"}))
	require.Error(t, NewFileTokenStore(filepath.Join(dir, "x.json")).Save(t.Context(), nil))

	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte("refresh-secret-garbage"), 0o600))
	_, err = NewFileTokenStore(bad).Load(t.Context())
	require.ErrorContains(t, err, "malformed")
	assert.NotContains(t, err.Error(), "refresh-secret-garbage")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, NewFileTokenStore(bad).Save(ctx, &oauth2.Token{}), context.Canceled)
}

// TestFileTokenStoreWithTokenSource runs a refresh through the file store.
func TestFileTokenStoreWithTokenSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	store := NewFileTokenStore(path)
	require.NoError(t, store.Save(t.Context(), &oauth2.Token{AccessToken: "old", RefreshToken: "old-refresh", Expiry: oauthTestNow.Add(-time.Hour)}))

	mock := httpmock.NewMockTransport()
	var ep oauthTokenEndpoint
	mock.RegisterResponder("POST", oauthTestTokenURL, ep.responder(t, 200, "token.json", 0))
	ts, err := NewTokenSource(t.Context(), newOAuthTestConfig(mock), store)
	require.NoError(t, err)
	_, err = ts.Token()
	require.NoError(t, err)

	got, err := NewFileTokenStore(path).Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "new-refresh-token", got.RefreshToken)
	assert.Equal(t, "new-access-jwt", got.AccessToken)
}

func TestOAuthSecretsNeverPrinted(t *testing.T) {
	cfg := newOAuthTestConfig(httpmock.NewMockTransport())
	red := &AuthRedirect{Code: "auth-code-123", Referer: "example.kommo.com", State: "s"}

	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("oauth", "cfg", cfg, "redirect", red)
	out := buf.String() + fmt.Sprintf("%v %+v %s %#v %v %+v %#v", cfg, cfg, cfg, cfg, red, red, red)
	assert.NotContains(t, out, oauthTestSecret)
	assert.NotContains(t, out, "auth-code-123")
	assert.Contains(t, out, "client-id")
	assert.Contains(t, out, "example.kommo.com")
	assert.True(t, strings.Contains(out, "REDACTED"))
}

func TestTokenSourceKeepsRefreshTokenWhenNotRotated(t *testing.T) {
	mock := httpmock.NewMockTransport()
	mock.RegisterResponder("POST", oauthTestTokenURL, httpmock.NewStringResponder(200,
		`{"token_type":"Bearer","expires_in":60,"access_token":"fresh"}`))
	store := &oauthMemStore{tok: &oauth2.Token{AccessToken: "old", RefreshToken: "keep-me", Expiry: oauthTestNow.Add(-time.Minute)}}
	ts, err := NewTokenSource(t.Context(), newOAuthTestConfig(mock), store)
	require.NoError(t, err)
	tok, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, "fresh", tok.AccessToken)
	assert.Equal(t, oauthTestNow.Add(time.Minute), tok.Expiry)
	saved, _ := store.snapshot()
	require.Len(t, saved, 1)
	assert.Equal(t, "keep-me", saved[0].RefreshToken)
}

func TestOAuthConfigNilSafety(t *testing.T) {
	var cfg *OAuthConfig
	assert.Equal(t, "acme.kommo.com", cfg.ForAccount("acme.kommo.com").BaseDomain)
	assert.Equal(t, "https://www.kommo.com/oauth?client_id=&state=s", cfg.AuthCodeURL("s"))
	assert.Equal(t, "kommo.OAuthConfig(nil)", cfg.String())
}
