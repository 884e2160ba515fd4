package kommotest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

func TestDeliverUninstall(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	client := srv.MustClient()
	_, _, err := client.Account.Get(t.Context(), nil)
	require.NoError(t, err)

	var got *kommo.UninstallHook
	hooks := httptest.NewServer(kommo.UninstallHandler(srv.OAuthClientID(), srv.OAuthClientSecret(), func(ctx context.Context, h *kommo.UninstallHook) error {
		got = h
		return nil
	}, nil))
	defer hooks.Close()

	require.NoError(t, srv.DeliverUninstall(t.Context(), hooks.URL+"/kommo/uninstall?tenant=a"))
	require.NotNil(t, got)
	assert.Equal(t, srv.AccountID(), got.AccountID)
	assert.Equal(t, srv.OAuthClientID(), got.ClientUUID)

	_, _, err = client.Account.Get(t.Context(), nil)
	assert.ErrorIs(t, err, kommo.ErrUnauthorized, "tokens are revoked on uninstall")

	// A receiver with another secret refuses it.
	bad := httptest.NewServer(kommo.UninstallHandler(srv.OAuthClientID(), "wrong", nil, nil))
	defer bad.Close()
	err = srv.DeliverUninstall(t.Context(), bad.URL)
	var we *kommotest.WebhookError
	require.True(t, errors.As(err, &we), "%v", err)
	assert.Equal(t, http.StatusUnauthorized, we.StatusCode)

	req, err := srv.NewUninstallRequest(t.Context(), "https://integration.example/u?x=1")
	require.NoError(t, err)
	q := req.URL.Query()
	assert.Equal(t, "1", q.Get("x"))
	assert.Equal(t, kommo.UninstallSignature(srv.OAuthClientID(), q.Get("account_id"), srv.OAuthClientSecret()), q.Get("signature"))
}

func TestAccountSubdomainEndpoint(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	_, rt := srv.IssueTokens(time.Hour)
	get := func(token string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+"/oauth2/account/current/subdomain", nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("X-Refresh-Token", token)
		}
		resp, err := srv.HTTPClient().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(rt)
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"id":30000001,"subdomain":"kommotest","domain":"kommotest.kommo.com","top_level_domain":"com"}`, body)
	code, _ = get("rt-unknown")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = get("")
	assert.Equal(t, http.StatusUnauthorized, code)
}
