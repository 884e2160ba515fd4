package kommotest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// slowRate refills a bucket once in 1000 s: within a test, a bucket holds
// exactly its burst, however loaded the machine.
const slowRate = 0.001

const otherAmojo = "11111111-2222-4333-8444-555555555555"

// TestScopeRateLimitPerScope: each scope has its own bucket; past it the
// server answers 429 in the Chat API's shape with Retry-After, and the
// other scope is not affected.
func TestScopeRateLimitPerScope(t *testing.T) {
	e := newKTEnv(t, kommotest.WithExtraAccounts(otherAmojo), kommotest.WithScopeRateLimit(slowRate, 2))
	a := e.srv.Connect(e.srv.AccountAmojoID())
	b := e.srv.Connect(otherAmojo)
	typing := map[string]any{"conversation_id": "c", "sender": map[string]any{"id": "u"}}

	for i := range 2 {
		resp, body := e.chat(http.MethodPost, "/v2/origin/custom/"+a+"/typing", typing)
		assert.NotEqual(t, http.StatusTooManyRequests, resp.StatusCode, "request %d of the burst: %s", i, body)
	}
	resp, body := e.chat(http.MethodPost, "/v2/origin/custom/"+a+"/typing", typing)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(body))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "1000", resp.Header.Get("Retry-After"))
	assert.JSONEq(t, `{"error_code":429,"error_type":"rate_limit","error_description":"Too many requests per second"}`, string(body))

	resp, body = e.chat(http.MethodPost, "/v2/origin/custom/"+b+"/typing", typing)
	assert.NotEqual(t, http.StatusTooManyRequests, resp.StatusCode, "another scope has its own bucket: %s", body)
	// CRM requests are not under the scope limit.
	for range 3 {
		resp, _ = e.crm(http.MethodGet, "/api/v4/account", nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}

	assert.Equal(t, map[string]kommotest.RateLimitCount{
		"chat:" + a: {Requests: 3, Limited: 1},
		"chat:" + b: {Requests: 1},
	}, e.srv.RateLimitCounts())
	assert.Equal(t, []string{"chat:" + a}, e.srv.RateLimited())
	last := e.srv.Requests()
	var limited int
	for _, r := range last {
		if r.Status == http.StatusTooManyRequests {
			limited++
			assert.Equal(t, "rate_limit", r.Fault)
		}
	}
	assert.Equal(t, 1, limited, "the request log records the 429")
}

// TestScopeRateLimitConnectCountsAgainstChannel: connect has no scope; it
// counts against "chat:<channel id>", the SDK limiter's key for it.
func TestScopeRateLimitConnectCountsAgainstChannel(t *testing.T) {
	e := newKTEnv(t, kommotest.WithScopeRateLimit(slowRate, 1))
	e.connect()
	resp, body := e.chat(http.MethodPost, "/v2/origin/custom/"+e.srv.ChannelID()+"/connect",
		map[string]any{"account_id": e.srv.AccountAmojoID(), "hook_api_version": "v2"})
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(body))
	assert.Equal(t, map[string]kommotest.RateLimitCount{"chat:" + e.srv.ChannelID(): {Requests: 2, Limited: 1}}, e.srv.RateLimitCounts())
}

// get sends a GET with a bearer token through hc to rawURL.
func get(t *testing.T, hc *http.Client, rawURL, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestAccountRateLimitPerHost: the CRM limit keys by Host, which
// RoutingClient keeps from the URL; the token endpoint is not limited.
func TestAccountRateLimitPerHost(t *testing.T) {
	srv := kommotest.New(t, kommotest.WithAccountRateLimit(slowRate, 1))
	hc := srv.RoutingClient()
	resp, body := get(t, hc, "https://a.kommo.com/api/v4/account", srv.AccessToken())
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, body, `"href":"http://a.kommo.com/api/v4/account"`, "the server saw the account's Host")
	resp, body = get(t, hc, "https://a.kommo.com/api/v4/account", srv.AccessToken())
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.Contains(t, body, `"status":429`)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	resp, body = get(t, hc, "https://B.kommo.com/api/v4/account", srv.AccessToken())
	assert.Equal(t, http.StatusOK, resp.StatusCode, "another account has its own bucket: %s", body)

	for range 3 { // token requests are never limited
		resp, err := hc.PostForm("https://a.kommo.com/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}})
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	assert.Equal(t, map[string]kommotest.RateLimitCount{
		"crm:a.kommo.com": {Requests: 2, Limited: 1},
		"crm:b.kommo.com": {Requests: 1},
	}, srv.RateLimitCounts())
}

func TestKeyRateLimitOptions(t *testing.T) {
	for name, o := range map[string]kommotest.Option{
		"WithScopeRateLimit: rate must not be negative, got -1":   kommotest.WithScopeRateLimit(-1, 1),
		"WithScopeRateLimit: burst 0 must be at least 1":          kommotest.WithScopeRateLimit(7, 0),
		"WithAccountRateLimit: rate must not be negative, got -1": kommotest.WithAccountRateLimit(-1, 1),
		"WithAccountRateLimit: burst 0 must be at least 1":        kommotest.WithAccountRateLimit(7, 0),
	} {
		assert.PanicsWithError(t, "kommotest: invalid options: "+name, func() { kommotest.NewServer(o) }, name)
	}
	srv := kommotest.New(t, kommotest.WithScopeRateLimit(0, 0), kommotest.WithAccountRateLimit(0, 0))
	for range 3 {
		resp, _ := get(t, srv.HTTPClient(), srv.URL()+"/api/v4/account", srv.AccessToken())
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Empty(t, srv.RateLimitCounts(), "rate 0 is off")
}

// refresh posts a refresh grant for rt at host and returns the status and
// the new pair.
func refresh(t *testing.T, srv *kommotest.Server, host, rt string) (int, string, string) {
	t.Helper()
	resp, err := srv.RoutingClient().PostForm("https://"+host+"/oauth2/access_token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {srv.OAuthClientID()}, "client_secret": {srv.OAuthClientSecret()},
	})
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(body, &out))
	}
	return resp.StatusCode, out.AccessToken, out.RefreshToken
}

// TestIssueTokensForBindsAccount: tokens issued for an account work only
// at its host; its refresh token is single use, is refused (and kept) at
// another account's host, and refreshing gives a pair bound to it again.
func TestIssueTokensForBindsAccount(t *testing.T) {
	srv := kommotest.New(t)
	hc := srv.RoutingClient()
	at, rt := srv.IssueTokensFor("A.kommo.com", time.Hour)

	resp, body := get(t, hc, "https://a.kommo.com/api/v4/account", at)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	resp, body = get(t, hc, "https://b.kommo.com/api/v4/account", at)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, body, "access token of another account")

	status, _, _ := refresh(t, srv, "b.kommo.com", rt)
	assert.Equal(t, http.StatusUnauthorized, status, "another account's refresh token")
	status, at2, rt2 := refresh(t, srv, "a.kommo.com", rt)
	require.Equal(t, http.StatusOK, status, "refused elsewhere, the token was not used up")
	status, _, _ = refresh(t, srv, "a.kommo.com", rt)
	assert.Equal(t, http.StatusUnauthorized, status, "single use")

	resp, _ = get(t, hc, "https://a.kommo.com/api/v4/account", at2)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = get(t, hc, "https://b.kommo.com/api/v4/account", at2)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the new pair is bound to the account too")
	status, _, _ = refresh(t, srv, "b.kommo.com", rt2)
	assert.Equal(t, http.StatusUnauthorized, status)

	granted, refused := srv.Refreshes("a.kommo.com")
	assert.Equal(t, [2]int{1, 1}, [2]int{granted, refused})
	granted, refused = srv.Refreshes("B.kommo.com")
	assert.Equal(t, [2]int{0, 2}, [2]int{granted, refused})

	// Unbound tokens (IssueTokens, the static token) work at any host, as before.
	at3, rt3 := srv.IssueTokens(time.Hour)
	resp, _ = get(t, hc, "https://c.kommo.com/api/v4/account", at3)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	status, _, _ = refresh(t, srv, "d.kommo.com", rt3)
	assert.Equal(t, http.StatusOK, status)
}

// TestAccountsAgainstManyAccountFake: kommo.Accounts serves two accounts
// of one fake through RoutingClient; each account's expired token is
// refreshed once, at its own host.
func TestAccountsAgainstManyAccountFake(t *testing.T) {
	srv := kommotest.New(t)
	hc := srv.RoutingClient()
	cfg := &kommo.OAuthConfig{ClientID: srv.OAuthClientID(), ClientSecret: srv.OAuthClientSecret(),
		RedirectURL: srv.OAuthRedirectURI(), HTTPClient: hc}
	store := kommo.NewMemoryTokenStore()
	ctx := context.Background()
	accounts, err := kommo.NewAccounts(ctx, cfg, store)
	require.NoError(t, err)
	hosts := []string{"one.kommo.com", "two.kommo.com"}
	for _, h := range hosts {
		at, rt := srv.IssueTokensFor(h, 0) // already expired: the first call refreshes
		require.NoError(t, accounts.Save(ctx, h, &oauth2.Token{AccessToken: at, RefreshToken: rt, Expiry: time.Now().Add(-time.Second)}))
	}
	for _, h := range hosts {
		c, err := accounts.Client(ctx, h, kommo.WithHTTPClient(hc))
		require.NoError(t, err)
		for range 3 {
			_, _, err := c.Account.Get(ctx, nil)
			require.NoError(t, err, h)
		}
		granted, refused := srv.Refreshes(h)
		assert.Equal(t, [2]int{1, 0}, [2]int{granted, refused}, h)
	}
}

// One fake serves many accounts: RoutingClient takes the client's
// requests for https://example.kommo.com to it, and the fake tells the
// account by the Host.
func ExampleServer_RoutingClient() {
	srv := kommotest.NewServer(kommotest.WithAccountRateLimit(kommo.DefaultRateLimit, kommo.DefaultRateLimit))
	defer srv.Close()
	at, _ := srv.IssueTokensFor("example.kommo.com", time.Hour)
	client, err := kommo.NewClient(kommo.WithBaseDomain("example.kommo.com"), kommo.WithAccessToken(at),
		kommo.WithHTTPClient(srv.RoutingClient()))
	if err != nil {
		panic(err)
	}
	acc, _, err := client.Account.Get(context.Background(), nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(acc.ID, srv.RateLimitCounts())
	// Output: 30000001 map[crm:example.kommo.com:{1 0}]
}
