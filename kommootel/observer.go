package kommootel

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/kommo-go/kommo"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/kommo-go/kommo/kommootel"

// Attribute keys of the spans and metrics (see the package doc).
const (
	AttrOperation       = attribute.Key("kommo.operation")
	AttrAPI             = attribute.Key("kommo.api")
	AttrAccount         = attribute.Key("kommo.account")
	AttrAttempt         = attribute.Key("kommo.attempt")
	AttrAttempts        = attribute.Key("kommo.attempts")
	AttrRetryReason     = attribute.Key("kommo.retry.reason")
	AttrStatusClass     = attribute.Key("kommo.status_class")
	AttrOutcome         = attribute.Key("kommo.outcome")
	AttrWebhookKind     = attribute.Key("kommo.webhook.kind")
	AttrWithinBudget    = attribute.Key("kommo.webhook.within_budget")
	AttrDeliveryErrCode = attribute.Key("kommo.delivery.error_code")
)

// WebhookBudget is how long Kommo waits for a webhook's answer.
const WebhookBudget = 5 * time.Second

// Option configures NewObserver.
type Option func(*config)

type config struct {
	tp trace.TracerProvider
	mp metric.MeterProvider
}

// WithTracerProvider sets the TracerProvider (default otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets the MeterProvider (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// Observer reports kommo's events to OpenTelemetry. It is safe for
// concurrent use; one can serve every client and handler of a program.
type Observer struct {
	tracer trace.Tracer
	hooks  *kommo.Observer

	requests, retries, rateLimited  metric.Int64Counter
	limiterWait                     metric.Float64Histogram
	refreshes                       metric.Int64Counter
	hooksReceived, callbackFailures metric.Int64Counter
	handlerDuration, lag            metric.Float64Histogram
	deliveryErrors                  metric.Int64Counter

	sets attrSets
}

// NewObserver builds an Observer on the given (or the global) providers.
func NewObserver(opts ...Option) (*Observer, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	m := c.mp.Meter(ScopeName, metric.WithInstrumentationVersion(kommo.Version))
	o := &Observer{tracer: c.tp.Tracer(ScopeName, trace.WithInstrumentationVersion(kommo.Version))}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		ctr, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return ctr
	}
	hist := func(name, desc string, bounds ...float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(bounds...))
		errs = append(errs, err)
		return h
	}
	secs := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 10, 30, 60}
	o.requests = counter("kommo.client.requests", "{request}", "HTTP attempts by operation, API, account and status class.")
	o.retries = counter("kommo.client.retries", "{retry}", "Retries by operation, API, account and reason.")
	o.rateLimited = counter("kommo.client.rate_limited", "{response}", "429 Too Many Requests answers.")
	o.limiterWait = hist("kommo.client.limiter.wait", "Waits on the client-side rate limiter.", secs...)
	o.refreshes = counter("kommo.oauth.refreshes", "{refresh}", "Access token refreshes by account and outcome.")
	o.hooksReceived = counter("kommo.webhook.received", "{webhook}", "Verified webhooks by kind and account.")
	o.handlerDuration = hist("kommo.webhook.handler.duration", "Webhook arrival to answer; Kommo waits 5 s.", secs...)
	o.lag = hist("kommo.webhook.lag", "Webhook receipt time less the hook's own time.", 1, 2, 5, 10, 30, 60, 300, 900, 3600)
	o.callbackFailures = counter("kommo.webhook.callback.failures", "{failure}", "Failed webhook callbacks.")
	o.deliveryErrors = counter("kommo.delivery_status.errors", "{report}", "Delivery errors reported by code.")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o.hooks = &kommo.Observer{
		CallStart:           o.callStart,
		CallDone:            o.callDone,
		AttemptStart:        o.attemptStart,
		AttemptDone:         o.attemptDone,
		LimiterWait:         o.limiterWaited,
		DeliveryStatus:      o.deliveryStatus,
		TokenRefresh:        o.tokenRefresh,
		WebhookReceived:     o.webhookReceived,
		WebhookCallbackDone: o.webhookCallbackDone,
		WebhookHandled:      o.webhookHandled,
	}
	return o, nil
}

// Hooks returns the kommo.Observer that reports to OpenTelemetry.
func (o *Observer) Hooks() *kommo.Observer { return o.hooks }

// ClientOption wires the observer into a kommo.Client.
func (o *Observer) ClientOption() kommo.Option { return kommo.WithObserver(o.hooks) }

// WebhookOption wires the observer into a kommo.WebhookHandler.
func (o *Observer) WebhookOption() kommo.WebhookHandlerOption {
	return kommo.WithWebhookObserver(o.hooks)
}

// Context returns ctx carrying the observer, for OAuthConfig.Refresh and
// for a kommo.NewTokenSource source whose refreshes should be counted even
// when no observed client starts them (ClientOption alone counts those its
// client's calls start).
func (o *Observer) Context(ctx context.Context) context.Context {
	return kommo.ContextWithObserver(ctx, o.hooks)
}

func callAttrs(info kommo.CallInfo) []attribute.KeyValue {
	return []attribute.KeyValue{AttrOperation.String(info.Operation), AttrAPI.String(info.API), AttrAccount.String(info.AccountKey)}
}

// callStart starts the call's span. Its attributes are set when it ends
// (callDone), in one call, and only if the span records: an unsampled call
// builds none, and a sampled one gives the SDK one slice to keep.
func (o *Observer) callStart(ctx context.Context, info kommo.CallInfo) context.Context {
	ctx, _ = o.tracer.Start(ctx, info.Operation, internalKind...)
	return ctx
}

// Span kinds, as option slices built once: options passed one by one to a
// variadic interface method are copied to the heap on every call.
var (
	internalKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	clientKind   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

func (o *Observer) callDone(ctx context.Context, ev kommo.CallDone) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, AttrOperation.String(ev.Info.Operation), AttrAPI.String(ev.Info.API),
		AttrAccount.String(ev.Info.AccountKey), AttrAttempts.Int(ev.Attempts))
	if ev.StatusCode != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(ev.StatusCode))
	}
	if ev.Err != nil {
		kind := kommo.ErrorKind(ev.Err)
		attrs = append(attrs, semconv.ErrorTypeKey.String(kind))
		span.SetStatus(codes.Error, kind)
	}
	span.SetAttributes(attrs...)
	span.End()
}

// attemptStart counts a retry and starts the attempt's span below a call
// span that records; its attributes are set by attemptDone, as the call
// span's are. Below a call span that does not record (an unsampled trace,
// a no-op tracer) it starts none: under a parent-based sampler (the SDK's
// default) the attempt's span would be an unsampled child that records
// nothing either, and not making it spares every unsampled attempt a span,
// an id and a copy of its request. A sampler that would sample an attempt
// below an unsampled call gets no attempt span to sample.
func (o *Observer) attemptStart(ctx context.Context, ev kommo.AttemptStart) context.Context {
	if ev.Attempt > 1 {
		o.retries.Add(ctx, 1, o.sets.get(ev.Info, AttrRetryReason, ev.RetryReason).add...)
	}
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	ctx, _ = o.tracer.Start(ctx, ev.Method, clientKind...)
	return ctx
}

func serverPort(scheme, port string) int {
	if port != "" {
		p, _ := strconv.Atoi(port)
		return p
	}
	switch scheme {
	case "https":
		return 443
	case "http":
		return 80
	}
	return 0
}

func statusClass(code int) string {
	switch {
	case code == 0:
		return "error"
	case code < 300:
		return "2xx"
	case code < 400:
		return "3xx"
	case code < 500:
		return "4xx"
	}
	return "5xx"
}

func (o *Observer) attemptDone(ctx context.Context, ev kommo.AttemptDone) {
	// The attempt's span, if attemptStart made one; else the call's, which
	// does not record and is left to callDone.
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attemptAttrs(span, ev)...)
		span.End()
	}
	o.requests.Add(ctx, 1, o.sets.get(ev.Info, AttrStatusClass, statusClass(ev.StatusCode)).add...)
	if ev.StatusCode == 429 {
		o.rateLimited.Add(ctx, 1, o.sets.get(ev.Info, "", "").add...)
	}
}

// attemptAttrs are the attempt span's attributes (HTTP client semantic
// conventions plus the call's operation and account, the attempt and the
// retry reason); it sets the span's status on a failed attempt. The call's
// API is on the parent span only. Eight attributes for a first attempt that
// got an answer: the SDK deduplicates a span's attributes in a map when it
// ends, and one of up to eight entries is its cheapest.
func attemptAttrs(span trace.Span, ev kommo.AttemptDone) []attribute.KeyValue {
	n := 5 // operation, account, attempt, method, status code or error type
	if ev.URL != nil {
		n += 3
	}
	if ev.Attempt > 1 {
		n += 2
	}
	if ev.Err == nil && ev.StatusCode >= 400 {
		n++
	}
	attrs := make([]attribute.KeyValue, 0, n)
	attrs = append(attrs, AttrOperation.String(ev.Info.Operation), AttrAccount.String(ev.Info.AccountKey),
		AttrAttempt.Int(ev.Attempt), semconv.HTTPRequestMethodKey.String(ev.Method))
	if ev.URL != nil {
		attrs = append(attrs, semconv.URLFull(ev.URL.String()), semconv.ServerAddress(ev.URL.Hostname()))
		if p := serverPort(ev.URL.Scheme, ev.URL.Port()); p != 0 {
			attrs = append(attrs, semconv.ServerPort(p))
		}
	}
	if ev.Attempt > 1 {
		attrs = append(attrs, semconv.HTTPRequestResendCount(ev.Attempt-1), AttrRetryReason.String(ev.RetryReason))
	}
	switch {
	case ev.Err != nil:
		kind := transportKind(ev.Err)
		attrs = append(attrs, semconv.ErrorTypeKey.String(kind))
		span.SetStatus(codes.Error, kind)
	case ev.StatusCode >= 400:
		code := strconv.Itoa(ev.StatusCode)
		attrs = append(attrs, semconv.HTTPResponseStatusCode(ev.StatusCode), semconv.ErrorTypeKey.String(code))
		span.SetStatus(codes.Error, code)
	default:
		attrs = append(attrs, semconv.HTTPResponseStatusCode(ev.StatusCode))
	}
	return attrs
}

// transportKind names a transport error without its text.
func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "transport"
}

func (o *Observer) limiterWaited(ctx context.Context, info kommo.CallInfo, d time.Duration) {
	o.limiterWait.Record(ctx, d.Seconds(), o.sets.get(info, "", "").record...)
}

func (o *Observer) deliveryStatus(ctx context.Context, ev kommo.DeliveryStatusReport) {
	if ev.Status != kommo.DeliveryStatusError {
		return
	}
	o.deliveryErrors.Add(ctx, 1, metric.WithAttributes(AttrAccount.String(ev.Info.AccountKey), AttrDeliveryErrCode.Int(int(ev.ErrorCode))))
}

func (o *Observer) tokenRefresh(ctx context.Context, ev kommo.TokenRefresh) {
	outcome := "ok"
	if ev.Err != nil {
		outcome = "failed"
	}
	o.refreshes.Add(ctx, 1, metric.WithAttributes(AttrAccount.String(ev.AccountKey), AttrOutcome.String(outcome)))
}

func (o *Observer) webhookReceived(ctx context.Context, ev kommo.WebhookReceived) {
	attrs := metric.WithAttributes(AttrWebhookKind.String(string(ev.Kind)), AttrAccount.String(ev.ScopeID))
	o.hooksReceived.Add(ctx, 1, attrs)
	if !ev.SentAt.IsZero() {
		o.lag.Record(ctx, max(ev.Lag, 0).Seconds(), attrs)
	}
}

func (o *Observer) webhookCallbackDone(ctx context.Context, ev kommo.WebhookCallbackDone) {
	if ev.Err == nil {
		return
	}
	kind := "error"
	if errors.Is(ev.Err, kommo.ErrWebhookTimeout) {
		kind = "timeout"
	}
	o.callbackFailures.Add(ctx, 1, metric.WithAttributes(AttrWebhookKind.String(string(ev.Kind)),
		AttrAccount.String(ev.ScopeID), semconv.ErrorTypeKey.String(kind)))
}

func (o *Observer) webhookHandled(ctx context.Context, ev kommo.WebhookHandled) {
	o.handlerDuration.Record(ctx, ev.Latency.Seconds(), metric.WithAttributes(AttrWebhookKind.String(string(ev.Kind)),
		semconv.HTTPResponseStatusCode(ev.StatusCode), AttrWithinBudget.Bool(ev.Latency <= WebhookBudget)))
}

// attrSets caches the metric attribute sets of calls, which repeat for
// every request of an account: building a set sorts and allocates. A typed
// map under a read lock, not a sync.Map: a sync.Map key is boxed, which
// allocates on every lookup.
type attrSets struct {
	mu sync.RWMutex
	m  map[attrSetKey]measureOpts
}

// measureOpts is one attribute set as the option slices of Add and
// Record, kept whole so that passing them allocates nothing.
type measureOpts struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

type attrSetKey struct {
	info  kommo.CallInfo
	key   attribute.Key
	value string
}

// attrSetLimit bounds the cache; past it (a program with very many
// accounts) the sets of new keys are built each time.
const attrSetLimit = 1 << 14

// get returns the call's attributes plus key=value (none when key is "").
func (c *attrSets) get(info kommo.CallInfo, key attribute.Key, value string) measureOpts {
	k := attrSetKey{info, key, value}
	c.mu.RLock()
	opts, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return opts
	}
	attrs := callAttrs(info)
	if key != "" {
		attrs = append(attrs, key.String(value))
	}
	set := metric.WithAttributeSet(attribute.NewSet(attrs...))
	opts = measureOpts{add: []metric.AddOption{set}, record: []metric.RecordOption{set}}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[attrSetKey]measureOpts)
	}
	if len(c.m) < attrSetLimit {
		c.m[k] = opts
	}
	c.mu.Unlock()
	return opts
}
