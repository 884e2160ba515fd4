package kommotest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
)

func TestSalesbotRequestAndContinue(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	c := e.srv.MustClient(kommo.WithClock(e.clock))
	req, err := e.srv.NewSalesbotRequest(t.Context(), "https://integration.example/salesbot", 42, nil)
	require.NoError(t, err)
	parsed, err := c.Salesbot.ParseRequest(req, e.srv.OAuthClientSecret())
	require.NoError(t, err)
	assert.Equal(t, e.srv.AccountID(), parsed.Claims.AccountID)
	assert.Equal(t, "kommotest", parsed.Claims.Subdomain)
	assert.Equal(t, 42, parsed.Claims.EntityID)
	assert.JSONEq(t, `{}`, string(parsed.Data))

	// Signed with the client secret: another secret fails.
	req2, err := e.srv.NewSalesbotRequest(t.Context(), "https://integration.example/salesbot", 42, nil)
	require.NoError(t, err)
	_, err = c.Salesbot.ParseRequest(req2, "wrong")
	assert.ErrorIs(t, err, kommo.ErrInvalidJWT)

	_, err = c.Salesbot.Continue(t.Context(), parsed.ReturnURL, &kommo.SalesbotContinueRequest{Data: map[string]any{"ok": true}})
	require.NoError(t, err)
	got := e.srv.SalesbotContinues()
	require.Len(t, got, 1)
	assert.JSONEq(t, `{"data":{"ok":true}}`, string(got[0].Body))
	_, err = c.Salesbot.Continue(t.Context(), parsed.ReturnURL, nil)
	assert.ErrorIs(t, err, kommo.ErrNotFound, "one continue per widget_request")

	// The token expires by the server clock.
	req3, err := e.srv.NewSalesbotRequest(t.Context(), "https://integration.example/salesbot", 42, nil)
	require.NoError(t, err)
	e.clock.Advance(11 * time.Minute)
	_, err = c.Salesbot.ParseRequest(req3, e.srv.OAuthClientSecret())
	assert.ErrorIs(t, err, kommo.ErrInvalidJWT)
}

func TestDeliverSalesbotRequest(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	var body []byte
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer hooks.Close()
	err := e.srv.DeliverSalesbotRequest(t.Context(), hooks.URL, 1, map[string]any{"a": "b"})
	require.Error(t, err)
	assert.Contains(t, string(body), `"data":{"a":"b"}`)
}
