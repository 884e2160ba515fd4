package kommo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo/internal/testkit"
)

// salesbotSecret signed the fixture's token (computed independently with
// Python's hmac: HS256 over header.payload).
const salesbotSecret = "kommotest-oauth-client-secret"

// signHS256 builds a token with header and claims, for the failure cases.
func signHS256(t *testing.T, header string, claims map[string]any, secret string) string {
	t.Helper()
	p, err := json.Marshal(claims)
	require.NoError(t, err)
	enc := base64.RawURLEncoding.EncodeToString
	in := enc([]byte(header)) + "." + enc(p)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + enc(m.Sum(nil))
}

func TestSalesbotParseRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t) // clock at 2022-12-13T11:00:00Z, the token's iat
	body := testkit.Fixture(t, "salesbot", "widget_request.json")
	r := httptest.NewRequest(http.MethodPost, "/kommo/salesbot", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	req, err := h.client.Salesbot.ParseRequest(r, salesbotSecret)
	require.NoError(t, err)
	assert.Equal(t, "https://example.kommo.com/api/v4/salesbot/321/continue/123", req.ReturnURL)
	assert.JSONEq(t, `{"contact":"Alice","from":"widget"}`, string(req.Data))
	c := req.Claims
	assert.Equal(t, 29420107, c.AccountID)
	assert.Equal(t, "example", c.Subdomain)
	assert.Equal(t, "lead", c.EntityType)
	assert.Equal(t, 4100001, c.EntityID)
	assert.Equal(t, "https://example.kommo.com", c.Issuer)
	assert.Equal(t, int64(1670932800), c.ExpiresAt)

	// An hour and a minute later the token has expired (by the client's clock).
	h.clock.Advance(time.Hour + time.Minute)
	r = httptest.NewRequest(http.MethodPost, "/kommo/salesbot", bytes.NewReader(body))
	_, err = h.client.Salesbot.ParseRequest(r, salesbotSecret)
	assert.ErrorIs(t, err, ErrInvalidJWT)
	assert.Contains(t, err.Error(), "expired")
}

func TestSalesbotParseRequestForm(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok := signHS256(t, `{"alg":"HS256"}`, map[string]any{"exp": harnessStart.Add(time.Minute).Unix(), "account_id": "7", "entity_id": 9}, salesbotSecret)
	form := url.Values{"token": {tok}, "return_url": {"https://x.example/api/v4/salesbot/1/continue/2"}, "data[from]": {"widget"}}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req, err := h.client.Salesbot.ParseRequest(r, salesbotSecret)
	require.NoError(t, err)
	assert.JSONEq(t, `{"from":"widget"}`, string(req.Data))
	assert.Equal(t, 7, req.Claims.AccountID, "an id sent as a string")
	assert.Equal(t, 9, req.Claims.EntityID)

	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"token":"`+tok+`"}`))
	_, err = h.client.Salesbot.ParseRequest(r, salesbotSecret)
	assert.ErrorIs(t, err, ErrWebhookMalformed, "return_url is required")
}

func TestVerifySalesbotTokenRefuses(t *testing.T) {
	t.Parallel()
	now := harnessStart
	good := map[string]any{"exp": now.Add(time.Hour).Unix(), "nbf": now.Unix()}
	for name, tok := range map[string]string{
		"other secret":   signHS256(t, `{"alg":"HS256"}`, good, "another-secret"),
		"alg none":       signHS256(t, `{"alg":"none"}`, good, salesbotSecret),
		"alg hs256 case": signHS256(t, `{"alg":"hs256"}`, good, salesbotSecret),
		"alg HS512":      signHS256(t, `{"alg":"HS512"}`, good, salesbotSecret),
		"no alg":         signHS256(t, `{"typ":"JWT"}`, good, salesbotSecret),
		"expired":        signHS256(t, `{"alg":"HS256"}`, map[string]any{"exp": now.Add(-time.Minute).Unix()}, salesbotSecret),
		"no exp":         signHS256(t, `{"alg":"HS256"}`, map[string]any{"nbf": now.Unix()}, salesbotSecret),
		"not yet valid":  signHS256(t, `{"alg":"HS256"}`, map[string]any{"exp": now.Add(2 * time.Hour).Unix(), "nbf": now.Add(time.Hour).Unix()}, salesbotSecret),
		"two parts":      "a.b",
		"bad base64":     "a.b.!!",
		"empty sig": func() string {
			s := signHS256(t, `{"alg":"HS256"}`, good, salesbotSecret)
			return s[:strings.LastIndex(s, ".")+1]
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := VerifySalesbotToken(tok, salesbotSecret, now)
			require.ErrorIs(t, err, ErrInvalidJWT)
			assert.NotContains(t, err.Error(), salesbotSecret)
			if len(tok) > 20 {
				assert.NotContains(t, err.Error(), tok)
			}
		})
	}
	// Within the leeway both ways.
	edge := signHS256(t, `{"alg":"HS256"}`, map[string]any{"exp": now.Add(-10 * time.Second).Unix(), "nbf": now.Add(10 * time.Second).Unix()}, salesbotSecret)
	_, err := VerifySalesbotToken(edge, salesbotSecret, now)
	assert.NoError(t, err)
	_, err = VerifySalesbotToken(signHS256(t, `{"alg":"HS256"}`, good, ""), "", now)
	assert.ErrorIs(t, err, ErrInvalidJWT, "an empty secret verifies nothing")
}

func TestSalesbotContinue(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("POST /api/v4/salesbot/321/continue/123", h.reply(202))
	_, err := h.client.Salesbot.Continue(t.Context(), "http://"+h.host()+"/api/v4/salesbot/321/continue/123", &SalesbotContinueRequest{
		Data:            map[string]any{"status": "success"},
		ExecuteHandlers: []*SalesbotHandler{{Handler: "show", Params: map[string]any{"type": "text", "value": "Done"}}, {Handler: "goto", Params: map[string]any{"type": "question", "step": 5}}},
	})
	require.NoError(t, err)
	req := h.only()
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/api/v4/salesbot/321/continue/123", req.Path)
	assert.Equal(t, `{"data":{"status":"success"},"execute_handlers":[{"handler":"show","params":{"type":"text","value":"Done"}},{"handler":"goto","params":{"step":5,"type":"question"}}]}`, string(req.Body))
	assert.Equal(t, "Bearer "+harnessToken, req.Header.Get("Authorization"))
}

func TestSalesbotContinueValidation(t *testing.T) {
	t.Parallel()
	cont := func(u string, req *SalesbotContinueRequest) func(ctx context.Context, c *Client) error {
		return func(ctx context.Context, c *Client) error { _, err := c.Salesbot.Continue(ctx, u, req); return err }
	}
	many := make([]*SalesbotHandler, 11)
	for i := range many {
		many[i] = &SalesbotHandler{Handler: "show"}
	}
	runValidationCases(t, []validationCase{
		{name: "other host", op: "Salesbot.Continue", contains: "is not the account's", call: cont("https://evil.example/api/v4/salesbot/1/continue/2", nil)},
		{name: "relative", op: "Salesbot.Continue", contains: "is not an absolute URL", call: cont("/api/v4/salesbot/1/continue/2", nil)},
		{name: "handlers", op: "Salesbot.Continue", count: 2, call: cont("https://evil.example/x", &SalesbotContinueRequest{ExecuteHandlers: many})},
		{name: "handler name", op: "Salesbot.Continue", problems: []string{`return_url: "::" is not an absolute URL`, `execute_handlers[0].handler: "run" is not show or goto`}, call: cont("::", &SalesbotContinueRequest{ExecuteHandlers: []*SalesbotHandler{{Handler: "run"}}})},
	})
	// A path on the right host that is not a continue endpoint.
	h := newHarness(t)
	_, err := h.client.Salesbot.Continue(t.Context(), "http://"+h.host()+"/api/v4/leads", nil)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Contains(t, ve.Problems[0], "is not /api/v4/{salesbot|marketingbot}/{id}/continue/{id}")
	assert.Empty(t, h.requests())
}
