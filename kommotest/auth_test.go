package kommotest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/chatsign"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

func TestChatAPIRejectsBadSigning(t *testing.T) {
	t.Parallel()
	connectBody := func(e *ktEnv) map[string]any {
		return map[string]any{"account_id": e.srv.AccountAmojoID(), "hook_api_version": "v2"}
	}
	cases := []struct {
		name     string
		tamper   func(e *ktEnv, req *http.Request, body []byte) *http.Request
		status   int
		errType  string
		contains string
	}{
		{
			name: "wrong signature (other secret)",
			tamper: func(e *ktEnv, req *http.Request, body []byte) *http.Request {
				req.Header.Del("X-Signature")
				req.Header.Del("Date")
				other := kommo.NewSigner("0000000000000000000000000000000000000000", kommo.WithSignerClock(e.clock))
				require.NoError(t, other.Sign(req, body))
				return req
			},
			status: 403, errType: "signature", contains: "X-Signature",
		},
		{
			name: "signature of another path",
			tamper: func(e *ktEnv, req *http.Request, body []byte) *http.Request {
				key := chatsign.NewKey(e.srv.ChannelSecret())
				req.Header.Set("X-Signature", key.Signature("POST", chatsign.ContentMD5(body), "application/json",
					req.Header.Get("Date"), "/v2/origin/custom/"+e.srv.ChannelID()+"/disconnect"))
				return req
			},
			status: 403, errType: "signature",
		},
		{
			name: "stale Date (16 minutes old), correctly signed",
			tamper: func(e *ktEnv, req *http.Request, body []byte) *http.Request {
				req.Header.Del("X-Signature")
				req.Header.Set("Date", e.clock.Now().Add(-16*time.Minute).Format(chatsign.DateFormat))
				require.NoError(t, kommo.NewSigner(e.srv.ChannelSecret()).Sign(req, body))
				return req
			},
			status: 403, errType: "date", contains: "15-minute",
		},
		{
			name: "Date 16 minutes in the future",
			tamper: func(e *ktEnv, req *http.Request, body []byte) *http.Request {
				req.Header.Set("Date", e.clock.Now().Add(16*time.Minute).Format(chatsign.DateFormat))
				require.NoError(t, kommo.NewSigner(e.srv.ChannelSecret()).Sign(req, body))
				return req
			},
			status: 403, errType: "date",
		},
		{
			name: "unparseable Date",
			tamper: func(e *ktEnv, req *http.Request, body []byte) *http.Request {
				req.Header.Set("Date", "yesterday")
				require.NoError(t, kommo.NewSigner(e.srv.ChannelSecret()).Sign(req, body))
				return req
			},
			status: 403, errType: "date",
		},
		{
			name: "Content-MD5 of another body",
			tamper: func(e *ktEnv, req *http.Request, body []byte) *http.Request {
				md5 := chatsign.ContentMD5([]byte(`{}`))
				req.Header.Set("Content-MD5", md5)
				// Re-sign with the wrong MD5 so only the MD5 check can fail.
				req.Header.Set("X-Signature", chatsign.NewKey(e.srv.ChannelSecret()).Signature("POST", md5,
					"application/json", req.Header.Get("Date"), req.URL.EscapedPath()))
				return req
			},
			status: 403, errType: "content_md5", contains: "Content-MD5",
		},
		{
			name: "upper-case Content-MD5",
			tamper: func(e *ktEnv, req *http.Request, body []byte) *http.Request {
				md5 := strings.ToUpper(req.Header.Get("Content-MD5"))
				require.NotEqual(t, md5, req.Header.Get("Content-MD5"))
				req.Header.Set("Content-MD5", md5)
				req.Header.Set("X-Signature", chatsign.NewKey(e.srv.ChannelSecret()).Signature("POST", md5,
					"application/json", req.Header.Get("Date"), req.URL.EscapedPath()))
				return req
			},
			status: 403, errType: "content_md5",
		},
		{
			name:   "missing Date",
			tamper: func(_ *ktEnv, req *http.Request, _ []byte) *http.Request { req.Header.Del("Date"); return req },
			status: 403, errType: "signature", contains: "Date",
		},
		{
			name:   "missing Content-MD5",
			tamper: func(_ *ktEnv, req *http.Request, _ []byte) *http.Request { req.Header.Del("Content-MD5"); return req },
			status: 403, errType: "signature", contains: "Content-MD5",
		},
		{
			name:   "missing X-Signature",
			tamper: func(_ *ktEnv, req *http.Request, _ []byte) *http.Request { req.Header.Del("X-Signature"); return req },
			status: 403, errType: "signature", contains: "X-Signature",
		},
		{
			name:   "missing Content-Type",
			tamper: func(_ *ktEnv, req *http.Request, _ []byte) *http.Request { req.Header.Del("Content-Type"); return req },
			status: 403, errType: "signature", contains: "Content-Type",
		},
		{
			name: "non-JSON Content-Type",
			tamper: func(e *ktEnv, req *http.Request, body []byte) *http.Request {
				req.Header.Set("Content-Type", "text/plain")
				return req
			},
			status: 400, errType: "content_type",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newKTEnv(t)
			req, body := e.chatRequest(http.MethodPost, "/v2/origin/custom/"+e.srv.ChannelID()+"/connect", connectBody(e))
			resp, data := e.do(tc.tamper(e, req, body))
			require.Equal(t, tc.status, resp.StatusCode, string(data))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			got := decode(t, data)
			assert.EqualValues(t, tc.status, got["error_code"])
			assert.Equal(t, tc.errType, got["error_type"])
			assert.Contains(t, got["error_description"], tc.contains)
			// A rejected request changes nothing.
			assert.False(t, e.srv.IsConnected(e.srv.ScopeID()))
			reqs := e.srv.Requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, tc.status, reqs[0].Status)
		})
	}
}

func TestChatAPIAcceptsGoodSigning(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)

	// The SDK's own format.
	resp, data := e.chat(http.MethodPost, "/v2/origin/custom/"+e.srv.ChannelID()+"/connect",
		map[string]any{"account_id": e.srv.AccountAmojoID(), "hook_api_version": "v2"})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	assert.True(t, e.srv.IsConnected(e.srv.ScopeID()))

	// A "GMT" Date (JavaScript toUTCString style), 14 minutes old, signed as sent.
	req, body := e.chatRequest(http.MethodPost, e.scopePath("/chats"), map[string]any{
		"conversation_id": "c1", "user": map[string]any{"id": "u1", "name": "Ann"}})
	req.Header.Del("X-Signature")
	req.Header.Set("Date", e.clock.Now().Add(-14*time.Minute).Format(time.RFC1123))
	require.NoError(t, kommo.NewSigner(e.srv.ChannelSecret()).Sign(req, body))
	resp, data = e.do(req)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))

	// GET with a query: the query is not part of the signed path.
	resp, _ = e.chat(http.MethodGet, e.scopePath("/chats/unknown/history")+"?offset=0&limit=50", nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)

	// The documented known-answer request signs to the documented value.
	key := chatsign.NewKey("fb50586ff7b68cd831fe0ef356345903f644c0d2")
	assert.Equal(t, "2a2593df86235c44943a40ce35409d18bda5778c", key.Signature("GET", "d41d8cd98f00b204e9800998ecf8427e",
		"application/json", "Tue, 13 Dec 2022 11:00:00 +0000",
		"/v2/origin/custom/f62a0162-46a7-430e-b06c-0ef798d76a21_52fd2a28-d2eb-4bd8-b862-a67934927b38/chats/30477717-9f3c-4d3f-8101-60327e14dc48/history"))
}

func TestChatAPIDocumentedVectorAccepted(t *testing.T) {
	t.Parallel()
	// The documented history vector: same secret, channel and account as the
	// defaults, and a server clock at the vector's Date.
	date := time.Date(2022, 12, 13, 11, 0, 0, 0, time.UTC)
	srv := kommotest.New(t, kommotest.WithClock(testkit.NewClock(date)))
	require.NotEmpty(t, srv.Connect(srv.AccountAmojoID()))
	req, err := http.NewRequest(http.MethodGet, srv.URL()+"/v2/origin/custom/f62a0162-46a7-430e-b06c-0ef798d76a21_52fd2a28-d2eb-4bd8-b862-a67934927b38/chats/30477717-9f3c-4d3f-8101-60327e14dc48/history?limit=50&offset=0", nil)
	require.NoError(t, err)
	req.Header.Set("Date", "Tue, 13 Dec 2022 11:00:00 +0000")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-MD5", "d41d8cd98f00b204e9800998ecf8427e")
	req.Header.Set("X-Signature", "2a2593df86235c44943a40ce35409d18bda5778c")
	resp, err := srv.HTTPClient().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode) // authenticated; the chat does not exist
}

func TestCRMRejectsBadTokens(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	expired, _ := e.srv.IssueTokens(0)
	revoked, _ := e.srv.IssueTokens(time.Hour)
	e.srv.RevokeAccessToken(revoked)

	cases := []struct{ name, header, detail string }{
		{"no header", "", "missing bearer token"},
		{"not bearer", "Basic dXNlcjpwYXNz", "missing bearer token"},
		{"empty bearer", "Bearer ", "missing bearer token"},
		{"unknown token", "Bearer nope", "invalid or revoked access token"},
		{"revoked token", "Bearer " + revoked, "invalid or revoked access token"},
		{"expired token", "Bearer " + expired, "access token expired"},
	}
	for _, tc := range cases {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL()+"/api/v4/account?with=amojo_id", nil)
		require.NoError(t, err)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, data := e.do(req)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, tc.name)
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), tc.name)
		assert.JSONEq(t, `{"title":"Unauthorized","type":"https://httpstatus.es/401","status":401,"detail":"`+tc.detail+`"}`, string(data), tc.name)
	}

	resp, data := e.crm(http.MethodGet, "/api/v4/account", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	assert.Equal(t, "application/hal+json", resp.Header.Get("Content-Type"))

	// An issued token works until it expires on the server clock.
	tok, _ := e.srv.IssueTokens(time.Hour)
	resp, _ = e.crmWithToken(tok, http.MethodGet, "/api/v4/account", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	e.clock.Advance(time.Hour)
	resp, _ = e.crmWithToken(tok, http.MethodGet, "/api/v4/account", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestUnknownEndpoints(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	resp, data := e.crm(http.MethodGet, "/api/v4/leads", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.Contains(t, string(data), "no such endpoint")

	// Chat API paths are authenticated before routing.
	req, err := http.NewRequest(http.MethodGet, e.srv.URL()+"/v2/origin/custom/x/y/z/w", nil)
	require.NoError(t, err)
	resp, _ = e.do(req)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, data = e.chat(http.MethodGet, "/v2/origin/custom/x/y/z/w", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "not_found", decode(t, data)["error_type"])

	resp, _ = e.crm(http.MethodGet, "/", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestOversizedBodyAndRequestIDs(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	resp, data := e.crm(http.MethodPost, "/api/v4/sources", make([]byte, kommotest.MaxRequestBody+1))
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.EqualValues(t, 413, decode(t, data)["status"])
	resp, _ = e.crm(http.MethodGet, "/api/v4/account", nil)
	assert.Equal(t, "kommotest-2", resp.Header.Get("X-Request-Id"))
}
