package kommo

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo/internal/chatsign"
	"github.com/kommo-go/kommo/internal/testkit"
)

func urlValues(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func TestSignedChatRequestHeadersAndBody(t *testing.T) {
	t.Parallel()
	at := time.Date(2021, 12, 16, 16, 1, 21, 0, time.UTC)
	h := newHarness(t, WithClock(testkit.NewClock(at)), WithAppInfo("bridge", "1.2.3", "https://bridge.example"))
	path := "v2/origin/custom/344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81/typing"
	h.mux.HandleFunc("POST /"+path, h.reply(http.StatusNoContent))

	body := struct {
		ConversationID string `json:"conversation_id"`
		Sender         struct {
			ID string `json:"id"`
		} `json:"sender"`
		Note string `json:"note"`
	}{ConversationID: "my_int-d5a421f7f218", Note: "<a&b>"}
	body.Sender.ID = "my_int-1376265f-86df-4c49-a0c3-a4816df41af8"
	resp, err := h.client.do(t.Context(), &call{api: chatAPI, method: http.MethodPost, path: path, body: body})
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, 1, resp.Attempts)
	r := h.only()
	// Exact bytes: compact JSON, HTML escaping off, no trailing newline.
	wantBody := `{"conversation_id":"my_int-d5a421f7f218","sender":{"id":"my_int-1376265f-86df-4c49-a0c3-a4816df41af8"},"note":"<a&b>"}`
	assert.Equal(t, wantBody, string(r.Body))
	assert.Equal(t, "/"+path, r.Path)
	assert.Equal(t, harnessChatPath+"/"+path, r.EscapedPath)
	assert.Equal(t, "Thu, 16 Dec 2021 16:01:21 +0000", r.Header.Get("Date"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, chatsign.ContentMD5([]byte(wantBody)), r.Header.Get("Content-MD5"))
	// The signature covers the path as sent, the base URL's path included.
	assert.Equal(t, chatsign.NewKey(testSecret).Signature("POST", chatsign.ContentMD5([]byte(wantBody)), "application/json", "Thu, 16 Dec 2021 16:01:21 +0000", harnessChatPath+"/"+path), r.Header.Get("X-Signature"))
	assert.Empty(t, r.Header.Get("Authorization"), "no bearer token on Chat API calls")
	assert.Equal(t, "application/json", r.Header.Get("Accept"))
	assert.True(t, strings.HasPrefix(r.Header.Get("User-Agent"), "kommo-go/"+Version+" ("), r.Header.Get("User-Agent"))
	assert.True(t, strings.HasSuffix(r.Header.Get("User-Agent"), " bridge/1.2.3 (+https://bridge.example)"), r.Header.Get("User-Agent"))
}

// TestSignedVectorBodyBytesSentAsIs runs on newRootChatHarness: the
// vectors sign paths at amojo's root.
func TestSignedVectorBodyBytesSentAsIs(t *testing.T) {
	t.Parallel()
	reqs := testkit.Vectors(t).Requests
	for _, v := range reqs {
		if v.Body == "" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			at, err := time.Parse(chatsign.DateFormat, v.Date)
			require.NoError(t, err)
			h := newRootChatHarness(t, WithClock(testkit.NewClock(at)), WithChannel("344a5002-f8ca-454d-af3d-396180102ac7", v.Secret))
			h.mux.HandleFunc(v.Method+" "+v.Path, h.replyBody(200, `{}`))
			_, err = h.client.do(t.Context(), &call{api: chatAPI, method: v.Method, path: strings.TrimPrefix(v.Path, "/"), body: []byte(v.Body)})
			require.NoError(t, err)
			r := h.only()
			assert.Equal(t, v.Body, string(r.Body))
			assert.Equal(t, v.ContentMD5, r.Header.Get("Content-MD5"))
			assert.Equal(t, v.Signature, r.Header.Get("X-Signature"))
		})
	}
}

func TestRetryGetsFreshSignature(t *testing.T) {
	t.Parallel()
	// Now steps forward on every read, like wall time between attempts.
	clk := testkit.NewClock(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), testkit.AdvanceOnNow(2*time.Second))
	p := DefaultRetryPolicy()
	p.Jitter = 0
	h := newHarness(t, WithClock(clk), WithRetryPolicy(p))
	path := "v2/origin/custom/scope"
	h.mux.HandleFunc("POST /"+path, h.sequence(h.replyBody(503, "busy"), h.replyBody(200, `{"new_message":{"msgid":"a","ref_id":"b"}}`)))
	var out map[string]any
	resp, err := h.client.do(t.Context(), &call{api: chatAPI, method: http.MethodPost, path: path, body: map[string]string{"msgid": "m-1"}, out: &out})
	require.NoError(t, err)
	assert.Equal(t, 2, resp.Attempts)
	got := h.requests()
	require.Len(t, got, 2)
	assert.Equal(t, got[0].Body, got[1].Body, "the same body bytes on every attempt")
	assert.NotEqual(t, got[0].Header.Get("Date"), got[1].Header.Get("Date"), "a fresh Date per attempt")
	assert.NotEqual(t, got[0].Header.Get("X-Signature"), got[1].Header.Get("X-Signature"))
	for _, r := range got {
		assert.Equal(t, chatsign.NewKey(testSecret).Signature("POST", chatsign.ContentMD5(r.Body), "application/json", r.Header.Get("Date"), harnessChatPath+"/"+path), r.Header.Get("X-Signature"))
	}
	assert.Equal(t, []time.Duration{time.Second}, clk.Waits(), "one backoff wait of BaseBackoff")
	assert.Equal(t, map[string]any{"new_message": map[string]any{"msgid": "a", "ref_id": "b"}}, out)
}

func TestCRMRequestsCarryBearerNotSignature(t *testing.T) {
	t.Parallel()
	h := newHarness(t, WithAccessToken(testToken))
	h.mux.HandleFunc("PATCH /api/v4/sources/7", h.replyBody(200, `{"id":7,"unknown_field":{"x":1}}`))
	h.mux.HandleFunc("GET /api/v4/account", h.replyBody(200, `{"id":1}`))
	var out struct {
		ID int `json:"id"`
	}
	_, err := h.client.do(t.Context(), &call{api: crmAPI, method: http.MethodPatch, path: "api/v4/sources/7", body: map[string]string{"name": "A"}, out: &out})
	require.NoError(t, err)
	assert.Equal(t, 7, out.ID, "unknown fields are tolerated")
	_, err = h.client.do(t.Context(), &call{api: crmAPI, method: http.MethodGet, path: "api/v4/account", query: urlValues("with", "amojo_id"), out: &out})
	require.NoError(t, err)
	got := h.requests()
	require.Len(t, got, 2)
	for _, r := range got {
		assert.Equal(t, "Bearer "+testToken, r.Header.Get("Authorization"))
		assert.Empty(t, r.Header.Get("X-Signature"))
		assert.Empty(t, r.Header.Get("Content-MD5"))
		assert.Empty(t, r.Header.Get("Date"))
	}
	assert.Equal(t, `{"name":"A"}`, string(got[0].Body))
	assert.Equal(t, "application/json", got[0].Header.Get("Content-Type"))
	assert.Equal(t, "with=amojo_id", got[1].RawQuery)
	assert.Empty(t, got[1].Body)
	assert.Empty(t, got[1].Header.Get("Content-Type"), "no content type without a body")
}

func TestNoContentLeavesOutUntouched(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/sources", h.reply(204))
	out := []int{1}
	resp, err := h.client.do(t.Context(), &call{api: crmAPI, method: http.MethodGet, path: "api/v4/sources", out: &out})
	require.NoError(t, err)
	assert.Equal(t, 204, resp.StatusCode)
	assert.Equal(t, []int{1}, out)
}

func TestDecodeErrorOnWrongShape(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/account", h.replyBody(200, `{"id":"not-a-number"}`))
	var out struct {
		ID int `json:"id"`
	}
	_, err := h.client.do(t.Context(), &call{api: crmAPI, method: http.MethodGet, path: "api/v4/account", out: &out})
	var de *DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 200, de.StatusCode)
}

// TestMissingCredentials and TestChatHostFollowsBaseDomain check the
// hosts WithBaseDomain picks, so their clients keep those real hosts and
// run on a mock transport that never reaches the network.
func TestMissingCredentials(t *testing.T) {
	mock := httpmock.NewMockTransport()
	chatOnly, err := NewClient(WithChannel("c", "s"), WithHTTPClient(&http.Client{Transport: mock}))
	require.NoError(t, err)
	_, err = chatOnly.do(t.Context(), &call{api: crmAPI, method: http.MethodGet, path: "api/v4/account"})
	assert.ErrorIs(t, err, ErrNoCredentials)

	crmOnly, err := NewClient(WithBaseDomain("example.kommo.com"), WithAccessToken("t"), WithHTTPClient(&http.Client{Transport: mock}))
	require.NoError(t, err)
	_, err = crmOnly.do(t.Context(), &call{api: chatAPI, method: http.MethodGet, path: "v2/origin/custom/x"})
	assert.ErrorIs(t, err, ErrNoChannel)
	assert.Equal(t, "https://example.kommo.com/", crmOnly.CRMBaseURL())
	assert.Equal(t, DefaultChatBaseURL, crmOnly.ChatBaseURL())

	noToken, err := NewClient(WithBaseDomain("example.kommo.com"), WithHTTPClient(&http.Client{Transport: mock}))
	require.NoError(t, err)
	_, err = noToken.do(t.Context(), &call{api: crmAPI, method: http.MethodGet, path: "api/v4/account"})
	assert.ErrorIs(t, err, ErrNoCredentials)
	assert.Zero(t, mock.GetTotalCallCount(), "nothing was sent")
}

type failingTokens struct{ err error }

func (f failingTokens) Token() (*oauth2.Token, error) { return nil, f.err }

func TestTokenSourceErrorIsWrapped(t *testing.T) {
	t.Parallel()
	sentinel := errors.New("store offline")
	h := newHarness(t, WithTokenSource(failingTokens{sentinel}))
	_, err := h.client.do(t.Context(), &call{api: crmAPI, method: http.MethodGet, path: "api/v4/account"})
	assert.ErrorIs(t, err, sentinel)
	assert.Empty(t, h.requests())
}

func TestAmoCRMRUDomainPicksRUChatHost(t *testing.T) {
	c, err := NewClient(WithBaseDomain("shop.amocrm.ru"), WithAccessToken("t"))
	require.NoError(t, err)
	assert.Equal(t, ChatBaseURLAmoCRMRU, c.ChatBaseURL())
	c, err = NewClient(WithBaseDomain("shop.amocrm.ru"), WithChatBaseURL("https://proxy.example/amojo"))
	require.NoError(t, err)
	assert.Equal(t, "https://proxy.example/amojo/", c.ChatBaseURL(), "a trailing slash is added")
}

// TestChatHostFollowsBaseDomain: the Chat API host is picked from the
// account's domain ([RU-REF], [AMO-COM-METHODS]: amojo.amocrm.com for
// accounts on *.amocrm.com), and the Chat API calls really go there.
func TestChatHostFollowsBaseDomain(t *testing.T) {
	for _, tc := range []struct{ domain, chat string }{
		{"example.kommo.com", "https://amojo.kommo.com/"},
		{"shop.amocrm.ru", "https://amojo.amocrm.ru/"},
		{"legacy.amocrm.com", "https://amojo.amocrm.com/"},
		{"HTTPS://Legacy.AmoCRM.com/", "https://amojo.amocrm.com/"}, // normalised first
		{"amocrm.com.example.org", "https://amojo.kommo.com/"},      // a suffix, not a substring
	} {
		t.Run(tc.domain, func(t *testing.T) {
			mock := httpmock.NewMockTransport()
			c, err := NewClient(WithBaseDomain(tc.domain), WithChannel("chan", testSecret),
				WithHTTPClient(&http.Client{Transport: mock}), WithRetryPolicy(NoRetries()), WithRateLimit(0, 0))
			require.NoError(t, err)
			assert.Equal(t, tc.chat, c.ChatBaseURL())

			var got []string
			mock.RegisterResponder(http.MethodDelete, tc.chat+"v2/origin/custom/chan/disconnect", func(r *http.Request) (*http.Response, error) {
				got = append(got, r.URL.Path)
				return httpmock.NewStringResponse(200, ""), nil
			})
			_, err = c.Channels.Disconnect(t.Context(), "acc")
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Equal(t, "/v2/origin/custom/chan/disconnect", got[0])
		})
	}
	assert.Equal(t, "https://amojo.amocrm.com/", ChatBaseURLAmoCRMCOM)

	c, err := NewClient(WithBaseDomain("legacy.amocrm.com"), WithChatBaseURL("https://amojo.amocrm.ru/"))
	require.NoError(t, err)
	assert.Equal(t, ChatBaseURLAmoCRMRU, c.ChatBaseURL(), "WithChatBaseURL wins")
}

// TestWithBaseDomainNormalises: what users paste is reduced to the bare
// host, and what cannot be an account host is an *OptionError naming the
// problem.
func TestWithBaseDomainNormalises(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string // the host, when accepted
		err  string // the exact OptionError.Problem, when refused
	}{
		{in: "example.kommo.com", host: "example.kommo.com"},
		{in: "  example.kommo.com\t\n", host: "example.kommo.com"},
		{in: "https://example.kommo.com", host: "example.kommo.com"},
		{in: "https://example.kommo.com/", host: "example.kommo.com"},
		{in: "http://example.kommo.com/", host: "example.kommo.com"},
		{in: "HTTPS://Example.KOMMO.com/", host: "example.kommo.com"},
		{in: "example.kommo.com/", host: "example.kommo.com"},
		{in: " Shop-1.AmoCRM.ru ", host: "shop-1.amocrm.ru"},

		{in: "", err: "empty domain"},
		{in: "   ", err: "empty domain"},
		{in: "https://", err: `"https://" is not an account host: no host`},
		{in: "example", err: `"example" is not an account host: no dot (an account host looks like "example.kommo.com")`},
		{in: "https://example/", err: `"https://example/" is not an account host: no dot (an account host looks like "example.kommo.com")`},
		{in: "example.kommo.com/api/v4", err: `"example.kommo.com/api/v4" is not an account host: it has a path (use WithCRMBaseURL for a full URL)`},
		{in: "example.kommo.com//", err: `"example.kommo.com//" is not an account host: it has a path (use WithCRMBaseURL for a full URL)`},
		{in: `example.kommo.com\x`, err: `"example.kommo.com\\x" is not an account host: it has a path (use WithCRMBaseURL for a full URL)`},
		{in: "example.kommo.com:8443", err: `"example.kommo.com:8443" is not an account host: it has a port (use WithCRMBaseURL for a full URL)`},
		{in: "example.kommo.com?x=1", err: `"example.kommo.com?x=1" is not an account host: it has a query (use WithCRMBaseURL for a full URL)`},
		{in: "example.kommo.com/#top", err: `"example.kommo.com/#top" is not an account host: it has a fragment (use WithCRMBaseURL for a full URL)`},
		{in: "user@example.kommo.com", err: `"user@example.kommo.com" is not an account host: it has user info (use WithCRMBaseURL for a full URL)`},
		{in: "exa mple.kommo.com", err: `"exa mple.kommo.com" is not an account host: it contains spaces`},
		{in: "ftp://example.kommo.com", err: `"ftp://example.kommo.com" is not an account host: scheme "ftp" is not http(s)`},
		{in: "exam_ple.kommo.com", err: `"exam_ple.kommo.com" is not an account host: character '_' is not allowed in a host name`},
		{in: "пример.kommo.com", err: `"пример.kommo.com" is not an account host: character 'п' is not allowed in a host name`},
		{in: "example..kommo.com", err: `"example..kommo.com" is not an account host: empty label (leading, trailing or double dot)`},
		{in: ".kommo.com", err: `".kommo.com" is not an account host: empty label (leading, trailing or double dot)`},
		{in: "example.kommo.com.", err: `"example.kommo.com." is not an account host: empty label (leading, trailing or double dot)`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			c, err := NewClient(WithBaseDomain(tc.in), WithAccessToken("t"))
			if tc.err == "" {
				require.NoError(t, err)
				assert.Equal(t, "https://"+tc.host+"/", c.CRMBaseURL())
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidOption)
			var oe *OptionError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, "WithBaseDomain", oe.Option)
			assert.Equal(t, tc.err, oe.Problem)
			assert.Nil(t, c)
		})
	}
}

func TestOptionsValidationReportsEveryProblem(t *testing.T) {
	_, err := NewClient(
		WithChannel("", ""),
		WithBaseDomain("example"),
		WithAccessToken(" "),
		WithTokenSource(nil),
		WithChatBaseURL("amojo.kommo.com"),
		WithCRMBaseURL("https://x.example/?a=1"),
		WithHTTPClient(nil),
		WithRetryPolicy(RetryPolicy{MaxAttempts: 0, Jitter: 2}),
		WithRateLimit(-1, 0),
		WithCRMRateLimiter(nil),
		WithChatRateLimiter(nil),
		WithLogger(nil),
		WithAppInfo("", "", ""),
		WithClock(nil),
		WithRequestTimeout(-time.Second),
		WithMiddleware(nil),
		nil,
	)
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"WithChannel: empty channel id", "WithChannel: empty channel secret", "WithBaseDomain", "WithAccessToken: empty token",
		"WithTokenSource: nil", "WithChatBaseURL", "WithCRMBaseURL", "WithHTTPClient: nil", "MaxAttempts 0", "jitter 2",
		"WithRateLimit: negative", "WithCRMRateLimiter: nil", "WithChatRateLimiter: nil", "WithLogger: nil", "WithAppInfo: empty name",
		"WithClock: nil", "WithRequestTimeout: negative", "WithMiddleware: nil", "nil option",
	} {
		assert.Contains(t, msg, want)
	}
	assert.Len(t, strings.Split(msg, "\n"), 19, msg)

	// Option errors are typed: errors.As finds each, errors.Is matches
	// ErrInvalidOption and the specific sentinel.
	_, err = NewClient(WithChannel("chan", ""))
	assert.ErrorIs(t, err, ErrEmptySecret)
	assert.ErrorIs(t, err, ErrInvalidOption)
	var oe *OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "WithChannel", oe.Option)
	assert.Equal(t, "empty channel secret", oe.Problem)
	assert.EqualError(t, err, "kommo: invalid options: WithChannel: empty channel secret")

	_, err = NewClient(WithRateLimit(5, 0))
	assert.ErrorContains(t, err, "burst 0")
	_, err = NewClient(WithAppInfo("a\r\nX-Evil: 1", "", ""))
	assert.ErrorContains(t, err, "line breaks")

	c, err := NewClient()
	require.NoError(t, err, "an empty client is valid; calls then fail with typed errors")
	assert.NotNil(t, c.Messages)
}

func TestMiddlewareOrderAndVisibility(t *testing.T) {
	var order []string
	mw := func(name string) Middleware {
		return func(r *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
			order = append(order, name+":"+r.Header.Get("Authorization"))
			resp, err := next(r)
			order = append(order, name+" done")
			return resp, err
		}
	}
	h := newHarness(t, WithAccessToken(testToken), WithMiddleware(mw("outer"), mw("inner")))
	h.mux.HandleFunc("GET /api/v4/account", h.replyBody(200, `{}`))
	_, err := h.client.do(t.Context(), &call{api: crmAPI, method: http.MethodGet, path: "api/v4/account"})
	require.NoError(t, err)
	assert.Equal(t, []string{"outer:Bearer " + testToken, "inner:Bearer " + testToken, "inner done", "outer done"}, order)
}

func TestScopeIDAndStringRedaction(t *testing.T) {
	assert.Equal(t, "344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81",
		ScopeID("344a5002-f8ca-454d-af3d-396180102ac7", "52e591f7-c98f-4255-8495-827210138c81"))
	// ScopeID cannot return a broken id: bad ids give "" (it returned "_").
	assert.Equal(t, "", ScopeID("", ""))
	assert.Equal(t, "", ScopeID("chan", "a/../b"))
	assert.Equal(t, "", ScopeID("ch_an", "acc"))
	c := newHarness(t, WithAccessToken(testToken)).client
	assert.NotContains(t, c.String(), testSecret)
	assert.NotContains(t, c.String(), testToken)
}

func TestNilContext(t *testing.T) {
	h := newHarness(t)
	//lint:ignore SA1012 checking the guard
	_, err := h.client.do(nil, &call{api: crmAPI, method: http.MethodGet, path: "api/v4/account"}) //nolint:staticcheck
	assert.Error(t, err)
}

// TestNewScopeID: both ids are checked and every problem is reported, as
// a *ValidationError.
func TestNewScopeID(t *testing.T) {
	const ch, acc = "344a5002-f8ca-454d-af3d-396180102ac7", "52e591f7-c98f-4255-8495-827210138c81"
	scope, err := NewScopeID(ch, acc)
	require.NoError(t, err)
	assert.Equal(t, ch+"_"+acc, scope)
	scope, err = NewScopeID("chan", "acc_with_underscores")
	require.NoError(t, err)
	assert.Equal(t, "chan_acc_with_underscores", scope, "the account part may hold _")

	for _, tc := range []struct {
		name, channel, account string
		problems               []string
	}{
		{"both empty", "", "", []string{"channel_id: required", "account_id: required"}},
		{"blank account", ch, "  ", []string{"account_id: required"}},
		{"slash in channel", "a/b", acc, []string{"channel_id: must not contain / or \\"}},
		{"backslash in account", ch, `a\b`, []string{"account_id: must not contain / or \\"}},
		{"dot dot", "..", acc, []string{`channel_id: ".." is not an id`}},
		{"control character", ch, "a\nb", []string{"account_id: must not contain control characters"}},
		{"underscore in channel", "ch_an", acc, []string{"channel_id: must not contain _, which separates it from the account id in a scope id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scope, err := NewScopeID(tc.channel, tc.account)
			assert.Empty(t, scope)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.ErrorIs(t, err, ErrInvalidRequest)
			assert.Equal(t, "NewScopeID", ve.Op)
			assert.Equal(t, tc.problems, ve.Problems)
			assert.Empty(t, ScopeID(tc.channel, tc.account), "ScopeID agrees")
		})
	}
}

// TestParseScopeID splits at the first _ and checks both parts; a parsed
// scope id builds back to itself.
func TestParseScopeID(t *testing.T) {
	for _, tc := range []struct{ scope, channel, account string }{
		{"344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81", "344a5002-f8ca-454d-af3d-396180102ac7", "52e591f7-c98f-4255-8495-827210138c81"},
		{"chan_acc_x", "chan", "acc_x"},
	} {
		ch, acc, err := ParseScopeID(tc.scope)
		require.NoError(t, err, tc.scope)
		assert.Equal(t, [2]string{tc.channel, tc.account}, [2]string{ch, acc})
		back, err := NewScopeID(ch, acc)
		require.NoError(t, err)
		assert.Equal(t, tc.scope, back)
	}
	for _, tc := range []struct {
		scope    string
		problems []string
	}{
		{"", []string{`scope_id: "" has no "_" between the channel id and the account id`}},
		{"nounderscore", []string{`scope_id: "nounderscore" has no "_" between the channel id and the account id`}},
		{"_", []string{"channel_id: required", "account_id: required"}},
		{"chan_", []string{"account_id: required"}},
		{"_acc", []string{"channel_id: required"}},
		{"chan_a/b", []string{"account_id: must not contain / or \\"}},
		{"c/h_acc", []string{"channel_id: must not contain / or \\"}},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			ch, acc, err := ParseScopeID(tc.scope)
			assert.Empty(t, ch)
			assert.Empty(t, acc)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, "ParseScopeID", ve.Op)
			assert.Equal(t, tc.problems, ve.Problems)
		})
	}
}

// TestScopeAndChannelIDsCheckedBeforeSending: an id that cannot form a
// scope id is refused before any request: by WithChannel, by
// Channels.Connect and Disconnect (the account id becomes part of the
// scope id), and the "" that ScopeID gives for bad ids by every Chat API
// call.
func TestScopeAndChannelIDsCheckedBeforeSending(t *testing.T) {
	t.Parallel()
	_, err := NewClient(WithChannel("ch_an", "secret"))
	var oe *OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "WithChannel", oe.Option)
	assert.Equal(t, "channel id must not contain _, which separates it from the account id in a scope id", oe.Problem)
	_, err = NewClient(WithChannel("a/b", "secret"))
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "channel id must not contain / or \\", oe.Problem)

	runValidationCases(t, []validationCase{
		{name: "connect, slash in account", op: "Channels.Connect", problems: []string{"account_id: must not contain / or \\"},
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.Channels.Connect(ctx, &ConnectRequest{AccountID: "acc/../x"})
				return err
			}},
		{name: "connect, empty account", op: "Channels.Connect", problems: []string{"account_id: required"},
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.Channels.Connect(ctx, &ConnectRequest{})
				return err
			}},
		{name: "disconnect, control character", op: "Channels.Disconnect", problems: []string{"account_id: must not contain control characters"},
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Channels.Disconnect(ctx, "acc\r\n")
				return err
			}},
		{name: "history with ScopeID of bad ids", op: "History.List", contains: "scope_id: required",
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.History.List(ctx, ScopeID(c.ChannelID(), ""), "chat", nil)
				return err
			}},
	})
}
