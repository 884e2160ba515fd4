package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

var start = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)

// matchLines checks out line by line against regular expressions.
func matchLines(t *testing.T, out string, want []string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, len(want), "output:\n%s", out)
	for i, re := range want {
		assert.Regexp(t, "^"+re+"$", lines[i], "line %d", i+1)
	}
	return lines
}

func TestOAuthInstallEmbedded(t *testing.T) {
	t.Parallel()
	clk := &clock{t: start}
	srv := kommotest.New(t, kommotest.WithClock(clk))
	path := filepath.Join(t.TempDir(), "token.json")
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(testkit.Context(t), config{state: path, server: srv, clock: clk}, &stdout, &stderr), "stderr:\n%s", &stderr)
	assert.Empty(t, stderr.String())

	q := regexp.QuoteMeta
	lines := matchLines(t, stdout.String(), []string{
		`mode: embedded kommotest server at ` + q(srv.URL()) + ` \(set KOMMO_CLIENT_ID to use a real integration\)`,
		`1\. authorize URL: https://www\.kommo\.com/oauth\?client_id=` + q(srv.OAuthClientID()) + `&state=[A-Z2-7]{26}`,
		`2\. kommotest played the user: access allowed, redirect to https://integration\.example/oauth/callback with a code, the state and referer kommotest\.kommo\.com`,
		`3\. state checked, code exchanged with kommotest\.kommo\.com, token saved to ` + q(path) + ` \(mode 0600\): access token expires 2024-03-02T09:00:00Z`,
		`4\. account kommotest \(id 30000001\)`,
		`5\. kommotest: the clock moved 24h0m0s on: the access token has expired`,
		`6\. account kommotest \(id 30000001\): the token source refreshed the token before the call`,
		`7\. reloaded ` + q(path) + ` \(mode 0600\): a new pair, access token expires 2024-03-03T09:00:00Z`,
		`done`,
	})

	// What reached the fake: the code exchanged, then one refresh, and no
	// call with an expired token.
	var grants, calls []string
	for _, r := range srv.Requests() {
		switch r.Path {
		case "/oauth2/access_token":
			var body struct {
				GrantType string `json:"grant_type"`
			}
			require.NoError(t, json.Unmarshal(r.Body, &body))
			grants = append(grants, body.GrantType)
		case "/api/v4/account":
			calls = append(calls, r.Method+" "+http.StatusText(r.Status))
		}
		assert.Equal(t, http.StatusOK, r.Status, "%s %s", r.Method, r.Path)
	}
	assert.Equal(t, []string{"authorization_code", "refresh_token"}, grants)
	assert.Equal(t, []string{"GET OK", "GET OK"}, calls)

	// The saved file: mode 0600, the refreshed pair, which the fake accepts.
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	tok, err := kommo.NewFileTokenStore(path).Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, start.Add(48*time.Hour), tok.Expiry.UTC())
	assert.Regexp(t, `^at-`, tok.AccessToken)
	assert.Regexp(t, `^rt-`, tok.RefreshToken)
	_, _, err = srv.MustClient(kommo.WithAccessToken(tok.AccessToken)).Account.Get(t.Context(), nil)
	assert.NoError(t, err)

	// Nothing secret was printed.
	for _, secret := range []string{tok.AccessToken, tok.RefreshToken, srv.OAuthClientSecret(), "code-", "at-", "rt-"} {
		assert.NotContains(t, stdout.String(), secret)
	}
	assert.NotContains(t, lines[1], "redirect_uri", "the authorize URL carries only client_id and state")
}

func TestOAuthInstallDefaultFileIsTemporary(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(testkit.Context(t), config{}, &stdout, &stderr), "stderr:\n%s", &stderr)
	m := regexp.MustCompile(`(?m)^3\. .* token saved to (.+/kommo-oauth-[^/]+/kommotest\.kommo\.com\.json) \(mode 0600\)`).FindStringSubmatch(stdout.String())
	require.NotNil(t, m, "stdout:\n%s", &stdout)
	_, err := os.Stat(filepath.Dir(m[1]))
	assert.ErrorIs(t, err, os.ErrNotExist, "the temporary directory is removed")
	assert.True(t, strings.HasSuffix(stdout.String(), "\ndone\n"))
}

func TestOAuthInstallRealModeWaitsForTheRedirect(t *testing.T) {
	t.Parallel()
	// Nobody opens the URL: the example gives up after -timeout. No
	// request leaves the machine.
	cfg := config{clientID: "client-1", clientSecret: "secret", redirectURI: "https://integration.example/kommo/oauth",
		redirectAddr: "127.0.0.1:0", timeout: 50 * time.Millisecond}
	var stdout, stderr bytes.Buffer
	err := run(testkit.Context(t), cfg, &stdout, &stderr)
	require.ErrorIs(t, err, demo.ErrTimeout)
	assert.EqualError(t, err, "waiting for the redirect: timed out after 50ms")
	matchLines(t, stdout.String(), []string{
		`mode: real integration client-1`,
		`1\. authorize URL: https://www\.kommo\.com/oauth\?client_id=client-1&state=[A-Z2-7]{26}`,
		`2\. waiting up to 50ms for the redirect to https://integration\.example/kommo/oauth \(listening on 127\.0\.0\.1:\d+\)`,
	})
	assert.NotContains(t, stdout.String(), "secret")
}

func TestRedirectHandler(t *testing.T) {
	t.Parallel()
	clk := &clock{t: start}
	srv := kommotest.New(t, kommotest.WithClock(clk))
	var logs bytes.Buffer
	in := &installer{
		oauth: &kommo.OAuthConfig{ClientID: srv.OAuthClientID(), ClientSecret: srv.OAuthClientSecret(),
			RedirectURL: srv.OAuthRedirectURI(), TokenURL: srv.TokenURL(), HTTPClient: srv.HTTPClient(), Clock: clk},
		state: "state-1", dir: t.TempDir(), log: &logs, done: make(chan installed, 1),
	}
	serve := func(query string) int {
		rec := httptest.NewRecorder()
		in.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth/callback?"+query, nil))
		return rec.Code
	}
	pending := func() (installed, bool) {
		select {
		case res := <-in.done:
			return res, true
		default:
			return installed{}, false
		}
	}

	// A redirect with another state is refused and the wait goes on.
	assert.Equal(t, http.StatusBadRequest, serve("code=c&referer=kommotest.kommo.com&state=forged"))
	assert.Contains(t, logs.String(), "redirect: kommo: authorization failed: state_mismatch")
	_, ok := pending()
	assert.False(t, ok)

	// A denial or a foreign referer with the right state ends the attempt.
	var authErr *kommo.AuthError
	assert.Equal(t, http.StatusBadGateway, serve("error=access_denied&state=state-1"))
	res, ok := pending()
	require.True(t, ok)
	require.True(t, errors.As(res.err, &authErr))
	assert.Equal(t, "access_denied", authErr.Code)

	assert.Equal(t, http.StatusBadGateway, serve("code="+srv.IssueAuthCode()+"&referer=evil.example&state=state-1"))
	res, _ = pending()
	require.True(t, errors.As(res.err, &authErr))
	assert.Equal(t, "invalid_redirect", authErr.Code, "the code is never sent to evil.example")

	// A used code fails the exchange; nothing is saved.
	code := srv.IssueAuthCode()
	assert.Equal(t, http.StatusOK, serve("code="+code+"&referer=kommotest.kommo.com&state=state-1"))
	res, _ = pending()
	require.NoError(t, res.err)
	assert.Equal(t, filepath.Join(in.dir, "kommotest.kommo.com.json"), res.path)
	require.NoError(t, os.Remove(res.path))
	assert.Equal(t, http.StatusBadGateway, serve("code="+code+"&referer=kommotest.kommo.com&state=state-1"))
	res, _ = pending()
	assert.ErrorIs(t, res.err, kommo.ErrBadRequest)
	assert.ErrorContains(t, res.err, "exchange the code: ")
	assert.NoFileExists(t, filepath.Join(in.dir, "kommotest.kommo.com.json"))
}

func TestCancelStopsTheWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(testkit.Context(t))
	cancel()
	cfg := config{clientID: "client-1", clientSecret: "secret", redirectURI: "https://integration.example/cb",
		redirectAddr: "127.0.0.1:0", timeout: time.Minute}
	err := run(ctx, cfg, &bytes.Buffer{}, &bytes.Buffer{})
	assert.ErrorIs(t, err, context.Canceled)
}
