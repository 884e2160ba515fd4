package kommootel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommootel"
	"github.com/kommo-go/kommo/kommotest"
)

// otelFixture is a kommotest server, a client observed by kommootel, and
// the in-memory span recorder and metric reader it reports to.
type otelFixture struct {
	srv    *kommotest.Server
	client *kommo.Client
	obs    *kommootel.Observer
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	scope  string
	clock  *testkit.Clock
}

var otelStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newOTelFixture(t *testing.T, opts ...kommo.Option) *otelFixture {
	t.Helper()
	f := &otelFixture{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader(), clock: testkit.NewClock(otelStart)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader))
	obs, err := kommootel.NewObserver(kommootel.WithTracerProvider(tp), kommootel.WithMeterProvider(mp))
	require.NoError(t, err)
	f.obs = obs
	f.srv = kommotest.New(t, kommotest.WithClock(f.clock))
	f.scope = f.srv.Connect(f.srv.AccountAmojoID())
	f.client, err = f.srv.Client(append([]kommo.Option{obs.ClientOption()}, opts...)...)
	require.NoError(t, err)
	return f
}

func (f *otelFixture) send(t *testing.T) error {
	_, _, err := f.client.Messages.Send(t.Context(), f.scope, &kommo.SendMessageRequest{
		MsgID: "m-1", ConversationID: "chat-1",
		Sender:  &kommo.Participant{ID: "client-1", Name: "Client"},
		Message: kommo.TextMessage("private words"),
	})
	return err
}

// metrics collects every metric, by name.
func (f *otelFixture) metrics(t *testing.T) map[string]metricdata.Metrics {
	var rm metricdata.ResourceMetrics
	require.NoError(t, f.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, kommootel.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func attrsOf(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func sumOf(name string, points ...metricdata.DataPoint[int64]) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Data: metricdata.Sum[int64]{
		Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: points}}
}

func point(v int64, kvs ...attribute.KeyValue) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(kvs...), Value: v}
}

func assertSum(t *testing.T, got map[string]metricdata.Metrics, want metricdata.Metrics) {
	t.Helper()
	m, ok := got[want.Name]
	if !assert.True(t, ok, "metric %s", want.Name) {
		return
	}
	m.Description, m.Unit = "", ""
	metricdatatest.AssertEqual(t, want, m, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func (f *otelFixture) attemptAttrs(attempt int) map[attribute.Key]attribute.Value {
	u, _ := url.Parse(f.srv.URL())
	port, _ := strconv.Atoi(u.Port())
	return attrsOf([]attribute.KeyValue{
		kommootel.AttrOperation.String("Messages.Send"),
		kommootel.AttrAccount.String(f.scope),
		kommootel.AttrAttempt.Int(attempt),
		attribute.String("http.request.method", "POST"),
		attribute.String("url.full", f.srv.URL()+"/v2/origin/custom/"+f.scope),
		attribute.String("server.address", "127.0.0.1"),
		attribute.Int("server.port", port),
	})
}

func TestSend(t *testing.T) {
	f := newOTelFixture(t)
	require.NoError(t, f.send(t))

	spans := f.spans.Ended()
	require.Len(t, spans, 2)
	attempt, call := spans[0], spans[1]
	assert.Equal(t, "Messages.Send", call.Name())
	assert.Equal(t, trace.SpanKindInternal, call.SpanKind())
	assert.False(t, call.Parent().IsValid())
	assert.Equal(t, attrsOf([]attribute.KeyValue{
		kommootel.AttrOperation.String("Messages.Send"),
		kommootel.AttrAPI.String("chat"),
		kommootel.AttrAccount.String(f.scope),
		kommootel.AttrAttempts.Int(1),
		attribute.Int("http.response.status_code", 200),
	}), attrsOf(call.Attributes()))
	assert.Equal(t, codes.Unset, call.Status().Code)

	assert.Equal(t, "POST", attempt.Name())
	assert.Equal(t, trace.SpanKindClient, attempt.SpanKind())
	assert.Equal(t, call.SpanContext().SpanID(), attempt.Parent().SpanID())
	want := f.attemptAttrs(1)
	want["http.response.status_code"] = attribute.IntValue(200)
	assert.Equal(t, want, attrsOf(attempt.Attributes()))

	for _, s := range spans {
		for _, kv := range s.Attributes() {
			assert.NotContains(t, kv.Value.Emit(), "private words")
			assert.NotContains(t, kv.Value.Emit(), f.srv.ChannelSecret())
		}
	}

	ops := []attribute.KeyValue{kommootel.AttrOperation.String("Messages.Send"), kommootel.AttrAPI.String("chat"), kommootel.AttrAccount.String(f.scope)}
	m := f.metrics(t)
	assertSum(t, m, sumOf("kommo.client.requests", point(1, append(ops, kommootel.AttrStatusClass.String("2xx"))...)))
	for _, name := range []string{"kommo.client.retries", "kommo.client.rate_limited", "kommo.client.limiter.wait"} {
		assert.NotContains(t, m, name)
	}
}

func TestRetriedSend(t *testing.T) {
	f := newOTelFixture(t, kommo.WithRetryPolicy(kommo.RetryPolicy{MaxAttempts: 3, BaseBackoff: 2 * time.Second, MaxBackoff: 2 * time.Second}),
		kommo.WithRateLimit(1, 1))
	f.srv.FailNext(1, http.StatusServiceUnavailable, "")
	require.NoError(t, f.send(t))

	spans := f.spans.Ended()
	require.Len(t, spans, 3)
	first, second, call := spans[0], spans[1], spans[2]
	assert.Equal(t, "Messages.Send", call.Name())
	assert.Equal(t, int64(2), attrsOf(call.Attributes())[kommootel.AttrAttempts].AsInt64())

	want := f.attemptAttrs(1)
	want["http.response.status_code"] = attribute.IntValue(503)
	want["error.type"] = attribute.StringValue("503")
	assert.Equal(t, want, attrsOf(first.Attributes()))
	assert.Equal(t, codes.Error, first.Status().Code)
	assert.Equal(t, "503", first.Status().Description)

	want = f.attemptAttrs(2)
	want["http.response.status_code"] = attribute.IntValue(200)
	want["http.request.resend_count"] = attribute.IntValue(1)
	want["kommo.retry.reason"] = attribute.StringValue("503")
	assert.Equal(t, want, attrsOf(second.Attributes()))
	assert.Equal(t, call.SpanContext().SpanID(), second.Parent().SpanID())

	ops := []attribute.KeyValue{kommootel.AttrOperation.String("Messages.Send"), kommootel.AttrAPI.String("chat"), kommootel.AttrAccount.String(f.scope)}
	m := f.metrics(t)
	assertSum(t, m, sumOf("kommo.client.requests",
		point(1, append(ops, kommootel.AttrStatusClass.String("5xx"))...),
		point(1, append(ops, kommootel.AttrStatusClass.String("2xx"))...)))
	assertSum(t, m, sumOf("kommo.client.retries", point(1, append(ops, kommootel.AttrRetryReason.String("503"))...)))

	// The limiter (1 rps) let the first attempt through at once; the retry
	// came 2 s later, when a token was there again: two waits of 0 s.
	lw := m["kommo.client.limiter.wait"].Data.(metricdata.Histogram[float64])
	require.Len(t, lw.DataPoints, 1)
	assert.Equal(t, attribute.NewSet(ops...), lw.DataPoints[0].Attributes)
	assert.Equal(t, uint64(2), lw.DataPoints[0].Count)
	assert.Equal(t, 0.0, lw.DataPoints[0].Sum)
}

func TestRateLimited(t *testing.T) {
	f := newOTelFixture(t, kommo.WithRetryPolicy(kommo.NoRetries()))
	f.srv.FailNext(1, http.StatusTooManyRequests, "3")
	err := f.send(t)
	require.ErrorIs(t, err, kommo.ErrRateLimited)

	spans := f.spans.Ended()
	require.Len(t, spans, 2)
	call := spans[1]
	assert.Equal(t, attrsOf([]attribute.KeyValue{
		kommootel.AttrOperation.String("Messages.Send"),
		kommootel.AttrAPI.String("chat"),
		kommootel.AttrAccount.String(f.scope),
		kommootel.AttrAttempts.Int(1),
		attribute.Int("http.response.status_code", 429),
		attribute.String("error.type", "429"),
	}), attrsOf(call.Attributes()))
	assert.Equal(t, sdktrace.Status{Code: codes.Error, Description: "429"}, call.Status())

	ops := []attribute.KeyValue{kommootel.AttrOperation.String("Messages.Send"), kommootel.AttrAPI.String("chat"), kommootel.AttrAccount.String(f.scope)}
	m := f.metrics(t)
	assertSum(t, m, sumOf("kommo.client.rate_limited", point(1, ops...)))
	assertSum(t, m, sumOf("kommo.client.requests", point(1, append(ops, kommootel.AttrStatusClass.String("4xx"))...)))
}

func TestWebhook(t *testing.T) {
	f := newOTelFixture(t)
	sent := time.Now().Add(-20 * time.Second).Truncate(time.Second)
	f.clock.Set(sent)
	h, err := kommo.NewWebhookHandler(f.srv.ChannelSecret(), func(context.Context, kommo.WebhookEvent) error { return nil }, f.obs.WebhookOption())
	require.NoError(t, err)
	req, err := f.srv.NewWebhookRequest(t.Context(), "http://127.0.0.1/kommo/:scope_id", kommotest.WriteFirstMessage("+15550001111", "private words"))
	require.NoError(t, err)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, 200, w.Code)

	m := f.metrics(t)
	hookAttrs := []attribute.KeyValue{kommootel.AttrWebhookKind.String("message"), kommootel.AttrAccount.String(f.scope)}
	assertSum(t, m, sumOf("kommo.webhook.received", point(1, hookAttrs...)))
	assert.NotContains(t, m, "kommo.webhook.callback.failures")

	lag := m["kommo.webhook.lag"].Data.(metricdata.Histogram[float64])
	require.Len(t, lag.DataPoints, 1)
	p := lag.DataPoints[0]
	assert.Equal(t, attribute.NewSet(hookAttrs...), p.Attributes)
	assert.Equal(t, []float64{1, 2, 5, 10, 30, 60, 300, 900, 3600}, p.Bounds)
	assert.Equal(t, []uint64{0, 0, 0, 0, 1, 0, 0, 0, 0, 0}, p.BucketCounts, "a lag of 20 s (+ the test's own time)")

	dur := m["kommo.webhook.handler.duration"].Data.(metricdata.Histogram[float64])
	require.Len(t, dur.DataPoints, 1)
	assert.Equal(t, attribute.NewSet(kommootel.AttrWebhookKind.String("message"),
		attribute.Int("http.response.status_code", 200), kommootel.AttrWithinBudget.Bool(true)), dur.DataPoints[0].Attributes)
	assert.Equal(t, uint64(1), dur.DataPoints[0].Count)
}

func TestWebhookCallbackFailure(t *testing.T) {
	f := newOTelFixture(t)
	h, err := kommo.NewWebhookHandler(f.srv.ChannelSecret(), func(context.Context, kommo.WebhookEvent) error { return context.Canceled }, f.obs.WebhookOption())
	require.NoError(t, err)
	req, err := f.srv.NewWebhookRequest(t.Context(), "http://127.0.0.1/kommo/:scope_id", kommotest.WriteFirstMessage("+15550001111", "hi"))
	require.NoError(t, err)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, 500, w.Code)

	m := f.metrics(t)
	assertSum(t, m, sumOf("kommo.webhook.callback.failures", point(1, kommootel.AttrWebhookKind.String("message"),
		kommootel.AttrAccount.String(f.scope), attribute.String("error.type", "error"))))
	dur := m["kommo.webhook.handler.duration"].Data.(metricdata.Histogram[float64])
	require.Len(t, dur.DataPoints, 1)
	assert.Equal(t, attribute.NewSet(kommootel.AttrWebhookKind.String("message"),
		attribute.Int("http.response.status_code", 500), kommootel.AttrWithinBudget.Bool(true)), dur.DataPoints[0].Attributes)
}

func TestTokenRefreshAndDeliveryErrors(t *testing.T) {
	f := newOTelFixture(t)
	cfg := &kommo.OAuthConfig{ClientID: f.srv.OAuthClientID(), ClientSecret: f.srv.OAuthClientSecret(),
		RedirectURL: f.srv.OAuthRedirectURI(), BaseDomain: f.srv.AccountDomain(), TokenURL: f.srv.TokenURL(),
		HTTPClient: f.srv.HTTPClient()}
	_, err := cfg.Refresh(f.obs.Context(t.Context()), "no-such-refresh-token")
	require.Error(t, err)

	_, err = f.client.Messages.UpdateDeliveryStatus(t.Context(), f.scope, "unknown-msg",
		&kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorCannotCreateConversation})
	require.Error(t, err) // the fake does not know the message; the report was still made

	m := f.metrics(t)
	assertSum(t, m, sumOf("kommo.oauth.refreshes", point(1, kommootel.AttrAccount.String(f.srv.AccountDomain()), kommootel.AttrOutcome.String("failed"))))
	assertSum(t, m, sumOf("kommo.delivery_status.errors", point(1, kommootel.AttrAccount.String(f.scope), kommootel.AttrDeliveryErrCode.Int(904))))
}

// The client's option alone counts the refreshes its calls start: the
// token source was given a context without the observer.
func TestTokenRefreshCountedByClientOption(t *testing.T) {
	f := newOTelFixture(t)
	access, refresh := f.srv.IssueTokens(0) // already expired
	cfg := &kommo.OAuthConfig{ClientID: f.srv.OAuthClientID(), ClientSecret: f.srv.OAuthClientSecret(),
		RedirectURL: f.srv.OAuthRedirectURI(), BaseDomain: f.srv.AccountDomain(), TokenURL: f.srv.TokenURL(),
		HTTPClient: f.srv.HTTPClient(), Clock: f.clock}
	store := kommo.NewFileTokenStore(filepath.Join(t.TempDir(), "token.json"))
	require.NoError(t, store.Save(t.Context(), &oauth2.Token{AccessToken: access, RefreshToken: refresh, Expiry: otelStart.Add(-time.Minute)}))
	ts, err := kommo.NewTokenSource(t.Context(), cfg, store)
	require.NoError(t, err)
	client, err := f.srv.Client(f.obs.ClientOption(), kommo.WithTokenSource(ts))
	require.NoError(t, err)

	_, _, err = client.Account.Get(t.Context(), nil)
	require.NoError(t, err)
	_, _, err = client.Account.Get(t.Context(), nil) // the new token is valid
	require.NoError(t, err)

	assertSum(t, f.metrics(t), sumOf("kommo.oauth.refreshes",
		point(1, kommootel.AttrAccount.String(f.srv.AccountDomain()), kommootel.AttrOutcome.String("ok"))))
}

// An unsampled call records no span and makes no attempt span, yet its
// metrics are counted and its requests carry the call's (unsampled) span
// context, so a trace started upstream is still propagated.
func TestUnsampledSend(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans), sdktrace.WithSampler(sdktrace.NeverSample()))
	obs, err := kommootel.NewObserver(kommootel.WithTracerProvider(tp),
		kommootel.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	require.NoError(t, err)
	srv := kommotest.New(t)
	scope := srv.Connect(srv.AccountAmojoID())
	var seen []trace.SpanContext
	client, err := srv.Client(obs.ClientOption(), kommo.WithMiddleware(func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
		seen = append(seen, trace.SpanContextFromContext(req.Context()))
		return next(req)
	}))
	require.NoError(t, err)
	f := &otelFixture{srv: srv, client: client, obs: obs, spans: spans, reader: reader, scope: scope}

	require.NoError(t, f.send(t))
	assert.Empty(t, spans.Started())
	assert.Empty(t, spans.Ended())
	require.Len(t, seen, 1)
	assert.True(t, seen[0].IsValid(), "the call's span context reaches the request")
	assert.False(t, seen[0].IsSampled())
	assertSum(t, f.metrics(t), sumOf("kommo.client.requests", point(1, kommootel.AttrOperation.String("Messages.Send"),
		kommootel.AttrAPI.String("chat"), kommootel.AttrAccount.String(scope), kommootel.AttrStatusClass.String("2xx"))))
}
