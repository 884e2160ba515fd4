package kommo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo/internal/testkit"
)

const observeScope = harnessChannel + "_52e591f7-c98f-4255-8495-827210138c81"

// observeRecorder is an Observer that records every event in order.
type observeRecorder struct {
	mu     sync.Mutex
	events []any
}

type observeCallStart struct{ Info CallInfo }
type observeLimiterWait struct {
	Info CallInfo
	Wait time.Duration
}

func (r *observeRecorder) add(ev any) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *observeRecorder) list() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]any(nil), r.events...)
}

func (r *observeRecorder) observer() *Observer {
	return &Observer{
		CallStart: func(ctx context.Context, info CallInfo) context.Context {
			r.add(observeCallStart{info})
			return ctx
		},
		CallDone: func(_ context.Context, ev CallDone) { r.add(ev) },
		AttemptStart: func(ctx context.Context, ev AttemptStart) context.Context {
			r.add(ev)
			return ctx
		},
		AttemptDone:         func(_ context.Context, ev AttemptDone) { r.add(ev) },
		LimiterWait:         func(_ context.Context, info CallInfo, d time.Duration) { r.add(observeLimiterWait{info, d}) },
		DeliveryStatus:      func(_ context.Context, ev DeliveryStatusReport) { r.add(ev) },
		TokenRefresh:        func(_ context.Context, ev TokenRefresh) { r.add(ev) },
		WebhookReceived:     func(_ context.Context, ev WebhookReceived) { r.add(ev) },
		WebhookCallbackDone: func(_ context.Context, ev WebhookCallbackDone) { r.add(ev) },
		WebhookHandled:      func(_ context.Context, ev WebhookHandled) { r.add(ev) },
	}
}

func observeSendRequest() *SendMessageRequest {
	return &SendMessageRequest{MsgID: "m-1", ConversationID: "c-1",
		Sender: &Participant{ID: "u-1", Name: "Client"}, Message: TextMessage("secret text")}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

func TestObserverRetriedSend(t *testing.T) {
	rec := &observeRecorder{}
	var seen []CallInfo
	spy := func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
		info, ok := CallInfoFromContext(req.Context())
		require.True(t, ok)
		seen = append(seen, info)
		return next(req)
	}
	h := newHarness(t, WithRetryPolicy(RetryPolicy{MaxAttempts: 3, BaseBackoff: time.Second, MaxBackoff: time.Second}),
		WithObserver(rec.observer()), WithMiddleware(spy))
	path := "/v2/origin/custom/" + observeScope
	h.mux.HandleFunc("POST "+path, h.sequence(
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3")
			h.replyBody(429, `{"title":"Too Many Requests"}`)(w, r)
		},
		h.reply(200, "chat", "send_response.json")))

	_, resp, err := h.client.Messages.Send(t.Context(), observeScope, observeSendRequest())
	require.NoError(t, err)

	info := CallInfo{Operation: "Messages.Send", API: APIChat, AccountKey: observeScope}
	assert.Equal(t, info, resp.Call)
	assert.Equal(t, []CallInfo{info, info}, seen, "middleware sees the call on the request context")
	u := mustURL(t, h.server.URL+harnessChatPath+path)
	first := AttemptStart{Info: info, Attempt: 1, Method: "POST", URL: u}
	second := AttemptStart{Info: info, Attempt: 2, Method: "POST", URL: u, RetryReason: "429", RetryWait: 3 * time.Second}
	assert.Equal(t, []any{
		observeCallStart{info},
		first,
		AttemptDone{AttemptStart: first, StatusCode: 429},
		second,
		AttemptDone{AttemptStart: second, StatusCode: 200},
		CallDone{Info: info, Method: "POST", Attempts: 2, StatusCode: 200, Duration: 3 * time.Second},
	}, rec.list())
}

func TestObserverCallDoneAlone(t *testing.T) {
	var got []CallDone
	h := newHarness(t, WithRetryPolicy(RetryPolicy{MaxAttempts: 2}),
		WithObserver(&Observer{CallDone: func(_ context.Context, ev CallDone) { got = append(got, ev) }}))
	h.mux.HandleFunc("POST /v2/origin/custom/"+observeScope, h.sequence(
		h.replyBody(503, ""), h.reply(200, "chat", "send_response.json")))
	_, _, err := h.client.Messages.Send(t.Context(), observeScope, observeSendRequest())
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, 2, got[0].Attempts, "attempts are counted without attempt hooks")
}

func TestObserverFailedCall(t *testing.T) {
	rec := &observeRecorder{}
	h := newHarness(t, WithObserver(rec.observer()))
	h.mux.HandleFunc("GET /api/v4/talks/117", h.reply(404, "crm", "problem_404.json"))
	_, _, err := h.client.Talks.Get(t.Context(), 117)
	var ae *APIError
	require.ErrorAs(t, err, &ae)

	info := CallInfo{Operation: "Talks.Get", API: APICRM, AccountKey: h.host()}
	events := rec.list()
	require.Len(t, events, 4)
	done, ok := events[3].(CallDone)
	require.True(t, ok)
	assert.Same(t, err, done.Err)
	done.Err = nil
	assert.Equal(t, CallDone{Info: info, Method: "GET", Attempts: 1, StatusCode: 404}, done)
	start, ok := events[1].(AttemptStart)
	require.True(t, ok)
	assert.Equal(t, AttemptDone{AttemptStart: start, StatusCode: 404}, events[2])
	assert.Equal(t, AttemptStart{Info: info, Attempt: 1, Method: "GET", URL: start.URL}, start)
	assert.Equal(t, h.server.URL+harnessCRMPath+"/api/v4/talks/117", start.URL.String())
	assert.Equal(t, "404", ErrorKind(err))
}

func TestCallInfoWithoutObserver(t *testing.T) {
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/talks/117", h.reply(200, "crm", "talk_get.json"))
	_, resp, err := h.client.Talks.Get(t.Context(), 117)
	require.NoError(t, err)
	assert.Equal(t, CallInfo{Operation: "Talks.Get", API: APICRM, AccountKey: h.host()}, resp.Call)
	_, ok := CallInfoFromContext(t.Context())
	assert.False(t, ok)
}

func TestObserverLimiterWait(t *testing.T) {
	rec := &observeRecorder{}
	h := newHarness(t, WithRateLimit(1, 1), WithObserver(&Observer{LimiterWait: rec.observer().LimiterWait}))
	h.mux.HandleFunc("GET /api/v4/talks/117", h.reply(200, "crm", "talk_get.json"))
	for range 2 {
		_, _, err := h.client.Talks.Get(t.Context(), 117)
		require.NoError(t, err)
	}
	info := CallInfo{Operation: "Talks.Get", API: APICRM, AccountKey: h.host()}
	assert.Equal(t, []any{observeLimiterWait{info, 0}, observeLimiterWait{info, time.Second}}, rec.list())
}

func TestObserverDeliveryStatus(t *testing.T) {
	rec := &observeRecorder{}
	h := newHarness(t, WithObserver(&Observer{DeliveryStatus: rec.observer().DeliveryStatus}))
	h.mux.HandleFunc("POST /v2/origin/custom/"+observeScope+"/amojo-1/delivery_status", h.reply(200, "chat", "delivery_status_status_code.json"))
	_, err := h.client.Messages.UpdateDeliveryStatus(t.Context(), observeScope, "amojo-1",
		&DeliveryStatusRequest{Status: DeliveryStatusError, ErrorCode: DeliveryErrorCannotCreateConversation})
	require.NoError(t, err)
	assert.Equal(t, []any{DeliveryStatusReport{
		Info:   CallInfo{Operation: "Messages.UpdateDeliveryStatus", API: APIChat, AccountKey: observeScope},
		Status: DeliveryStatusError, ErrorCode: DeliveryErrorCannotCreateConversation,
	}}, rec.list())
}

func TestObserverLogAttributes(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newHarness(t, WithLogger(logger), WithRetryPolicy(RetryPolicy{MaxAttempts: 2}))
	h.mux.HandleFunc("POST /v2/origin/custom/"+observeScope, h.sequence(
		h.replyBody(503, ""), h.reply(200, "chat", "send_response.json")))
	_, _, err := h.client.Messages.Send(t.Context(), observeScope, observeSendRequest())
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3)
	for _, l := range lines {
		assert.Contains(t, l, "operation=Messages.Send api=chat account="+observeScope, l)
		assert.NotContains(t, l, "secret text")
	}
	assert.Contains(t, lines[1], `msg="kommo: retrying"`)
}

func TestObserverTokenRefresh(t *testing.T) {
	body := testkit.Fixture(t, "crm", "token.json")
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if fail {
			w.WriteHeader(401)
			_, _ = w.Write(testkit.Fixture(t, "crm", "token_error_401.json"))
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	rec := &observeRecorder{}
	cfg := &OAuthConfig{ClientID: "id", ClientSecret: "s", RedirectURL: "https://app.example/cb",
		BaseDomain: "example.kommo.com", TokenURL: srv.URL, HTTPClient: srv.Client(), Clock: testkit.NewClock(harnessStart)}
	ctx := ContextWithObserver(t.Context(), rec.observer())

	_, err := cfg.Refresh(ctx, "refresh-1")
	require.NoError(t, err)
	fail = true
	_, ferr := cfg.Refresh(ctx, "refresh-2")
	require.Error(t, ferr)
	_, err = cfg.Refresh(t.Context(), "refresh-3") // no observer: nothing recorded
	require.Error(t, err)

	events := rec.list()
	require.Len(t, events, 2)
	assert.Equal(t, TokenRefresh{AccountKey: "example.kommo.com"}, events[0])
	got := events[1].(TokenRefresh)
	assert.Same(t, ferr, got.Err)
	assert.ErrorIs(t, got.Err, ErrReauthorizationRequired)
}

func TestObserverTokenSourceRefresh(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(testkit.Fixture(t, "crm", "token.json"))
	}))
	t.Cleanup(srv.Close)
	rec := &observeRecorder{}
	cfg := &OAuthConfig{ClientID: "id", ClientSecret: "s", RedirectURL: "https://app.example/cb",
		BaseDomain: "example.kommo.com", TokenURL: srv.URL, HTTPClient: srv.Client(), Clock: testkit.NewClock(harnessStart)}
	store := &oauthMemStore{tok: &oauth2.Token{AccessToken: "old", RefreshToken: "r-1", Expiry: harnessStart.Add(-time.Minute)}}
	ts, err := NewTokenSource(ContextWithObserver(t.Context(), rec.observer()), cfg, store)
	require.NoError(t, err)
	tok, err := ts.Token()
	require.NoError(t, err)
	require.NotEqual(t, "old", tok.AccessToken)
	_, err = ts.Token() // still valid: no refresh
	require.NoError(t, err)
	assert.Equal(t, []any{TokenRefresh{AccountKey: "example.kommo.com"}}, rec.list())
}

// A client's observer counts the refreshes its calls start, from a token
// source given no observer; a source given one keeps reporting to its own.
func TestObserverClientCountsItsRefreshes(t *testing.T) {
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(testkit.Fixture(t, "crm", "token.json"))
	}))
	t.Cleanup(tokens.Close)
	cfg := &OAuthConfig{ClientID: "id", ClientSecret: "s", RedirectURL: "https://app.example/cb",
		BaseDomain: "example.kommo.com", TokenURL: tokens.URL, HTTPClient: tokens.Client(), Clock: testkit.NewClock(harnessStart)}
	expired := func() *oauthMemStore {
		return &oauthMemStore{tok: &oauth2.Token{AccessToken: "old", RefreshToken: "r-1", Expiry: harnessStart.Add(-time.Minute)}}
	}

	plain, err := NewTokenSource(t.Context(), cfg, expired())
	require.NoError(t, err)
	rec := &observeRecorder{}
	h := newHarness(t, WithTokenSource(plain), WithObserver(rec.observer()))
	h.mux.HandleFunc("GET /api/v4/talks/117", h.reply(404, "crm", "problem_404.json"))
	_, _, err = h.client.Talks.Get(t.Context(), 117)
	require.Error(t, err)
	_, _, err = h.client.Talks.Get(t.Context(), 117) // the new token is valid: no refresh
	require.Error(t, err)
	events := rec.list()
	require.Len(t, events, 9, "two calls of four events, and one refresh")
	assert.Equal(t, TokenRefresh{AccountKey: "example.kommo.com"}, events[1], "the refresh is reported between the call's start and its attempt")
	assert.IsType(t, AttemptStart{}, events[2])
	for _, r := range h.requests() {
		assert.Equal(t, "Bearer new-access-jwt", r.Header.Get("Authorization"))
	}

	own := &observeRecorder{}
	ts, err := NewTokenSource(ContextWithObserver(t.Context(), own.observer()), cfg, expired())
	require.NoError(t, err)
	rec2 := &observeRecorder{}
	h2 := newHarness(t, WithTokenSource(ts), WithObserver(rec2.observer()))
	h2.mux.HandleFunc("GET /api/v4/talks/117", h2.reply(404, "crm", "problem_404.json"))
	_, _, err = h2.client.Talks.Get(t.Context(), 117)
	require.Error(t, err)
	assert.Equal(t, []any{TokenRefresh{AccountKey: "example.kommo.com"}}, own.list())
	assert.Len(t, rec2.list(), 4, "the client's observer saw the call, not the refresh")
}

func TestWebhookObserver(t *testing.T) {
	rec := &observeRecorder{}
	cbErr := errors.New("queue full")
	var fail bool
	h, err := NewWebhookHandler(webhookTestSecret, func(context.Context, WebhookEvent) error {
		if fail {
			return cbErr
		}
		return nil
	}, WithWebhookObserver(rec.observer()))
	require.NoError(t, err)
	body := testkit.Fixture(t, "webhooks", "message_text.json")
	post := func(sig string) int {
		req := httptest.NewRequest("POST", "/kommo/"+observeScope, bytes.NewReader(body))
		req.Header.Set("X-Signature", sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	sentAt := time.Unix(1700000005, 0).UTC()

	before := time.Now()
	require.Equal(t, 200, post(SignWebhookBody(body, webhookTestSecret)))
	after := time.Now()
	events := rec.list()
	require.Len(t, events, 3)
	got := events[0].(WebhookReceived)
	assert.True(t, got.Lag >= before.Sub(sentAt) && got.Lag <= after.Sub(sentAt), "lag %s", got.Lag)
	got.Lag = 0
	assert.Equal(t, WebhookReceived{Kind: WebhookKindMessage, ScopeID: observeScope, SentAt: sentAt}, got)
	cb := events[1].(WebhookCallbackDone)
	assert.Equal(t, WebhookCallbackDone{Kind: WebhookKindMessage, ScopeID: observeScope}, WebhookCallbackDone{Kind: cb.Kind, ScopeID: cb.ScopeID, Err: cb.Err})
	handled := events[2].(WebhookHandled)
	assert.True(t, handled.Latency > 0 && handled.Latency <= after.Sub(before))
	handled.Latency = 0
	assert.Equal(t, WebhookHandled{Kind: WebhookKindMessage, ScopeID: observeScope, StatusCode: 200}, handled)

	// A failing callback (a new body, so not a replay).
	rec.events = nil
	fail = true
	body = bytes.Replace(body, []byte(`"time":1700000005`), []byte(`"time":1700000006`), 1)
	require.Equal(t, 500, post(SignWebhookBody(body, webhookTestSecret)))
	events = rec.list()
	require.Len(t, events, 3)
	cb = events[1].(WebhookCallbackDone)
	assert.ErrorIs(t, cb.Err, ErrWebhookCallback)
	assert.ErrorIs(t, cb.Err, cbErr)
	assert.Equal(t, 500, events[2].(WebhookHandled).StatusCode)

	// A bad signature is answered before the hook is decoded: no kind.
	rec.events = nil
	require.Equal(t, 401, post("00"))
	events = rec.list()
	require.Len(t, events, 1)
	handled = events[0].(WebhookHandled)
	handled.Latency = 0
	assert.Equal(t, WebhookHandled{ScopeID: observeScope, StatusCode: 401}, handled)
}

func TestObserverOptionsRefuseNil(t *testing.T) {
	_, err := NewClient(WithObserver(nil))
	var oe *OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "WithObserver", oe.Option)
	_, err = NewWebhookHandler(webhookTestSecret, func(context.Context, WebhookEvent) error { return nil }, WithWebhookObserver(nil))
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "WithWebhookObserver", oe.Option)
}
