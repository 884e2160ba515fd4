package kommo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// API kinds, the values of CallInfo.API.
const (
	// APIChat is the Chat API (amojo), signed with the channel secret.
	APIChat = "chat"
	// APICRM is the CRM API v4, authorised with a bearer token.
	APICRM = "crm"
)

// CallInfo names one API call: what it does and for which account. Every
// call's context carries it (CallInfoFromContext), so middleware sees it
// on req.Context(), and every Response holds it. It never holds a secret.
type CallInfo struct {
	// Operation is the service method, e.g. "Messages.Send".
	Operation string
	// API is APIChat or APICRM.
	API string
	// AccountKey keys the account the call acts for: the scope id of a
	// Chat API call ("" for channel-level calls such as Channels.Connect)
	// and the host of the CRM base URL ("example.kommo.com") for a CRM
	// call.
	AccountKey string
}

// CallInfoFromContext returns the CallInfo of the call whose context ctx
// is or derives from: inside a Middleware, req.Context(); inside an
// Observer hook, the ctx it is given.
func CallInfoFromContext(ctx context.Context) (CallInfo, bool) {
	st, ok := ctx.Value(callStateKey{}).(*callState)
	if !ok {
		return CallInfo{}, false
	}
	return st.info, true
}

// Observer receives the client's and the webhook handler's events, for
// metrics and tracing; package kommootel implements one on OpenTelemetry.
// Every field is optional and a nil one costs nothing. Hooks run
// synchronously on the goroutine of the call (or the webhook), so they
// must be quick and safe for concurrent use. No event carries a token,
// secret, signature or message text.
//
// Give one to a client with WithObserver and to a webhook handler with
// WithWebhookObserver. A client's observer also gets the refreshes its
// calls start in a NewTokenSource source; a source given a context with
// its own observer (ContextWithObserver) reports to that one instead.
type Observer struct {
	// CallStart is called when a call begins. The context it returns (ctx
	// or one derived from it, e.g. holding a span) becomes the call's.
	CallStart func(ctx context.Context, info CallInfo) context.Context
	// CallDone is called once when the call ends, with its outcome.
	CallDone func(ctx context.Context, ev CallDone)
	// AttemptStart is called before each HTTP attempt is sent, outside
	// every Middleware. The context it returns becomes the request's.
	AttemptStart func(ctx context.Context, ev AttemptStart) context.Context
	// AttemptDone is called when an attempt ends: when its response body
	// has been read, or when sending failed.
	AttemptDone func(ctx context.Context, ev AttemptDone)
	// LimiterWait is called after each wait on the client-side rate
	// limiter, with how long it took (measured on the client's Clock).
	LimiterWait func(ctx context.Context, info CallInfo, wait time.Duration)
	// DeliveryStatus is called when Messages.UpdateDeliveryStatus is about
	// to report a delivery status, before the request.
	DeliveryStatus func(ctx context.Context, ev DeliveryStatusReport)
	// TokenRefresh is called after each refresh of an access token by
	// OAuthConfig.Refresh, which token sources of NewTokenSource use: with
	// the observer of Refresh's context (ContextWithObserver), or of the
	// client whose call needed the new token.
	TokenRefresh func(ctx context.Context, ev TokenRefresh)
	// WebhookReceived is called when a webhook has been verified and
	// decoded, before its callback runs.
	WebhookReceived func(ctx context.Context, ev WebhookReceived)
	// WebhookCallbackDone is called when a webhook callback returns.
	WebhookCallbackDone func(ctx context.Context, ev WebhookCallbackDone)
	// WebhookHandled is called when the handler has answered a webhook
	// request, whatever the answer.
	WebhookHandled func(ctx context.Context, ev WebhookHandled)
}

// CallDone is the outcome of a call.
type CallDone struct {
	Info CallInfo
	// Method is the HTTP method.
	Method string
	// Attempts is how many HTTP attempts were made (0 when the call
	// failed before its first, e.g. on the rate limiter).
	Attempts int
	// StatusCode is the last response's status (0 without one).
	StatusCode int
	// Duration is the call's time, retries and waits included.
	Duration time.Duration
	// Err is the call's error, nil on success.
	Err error
}

// AttemptStart describes an HTTP attempt about to be sent.
type AttemptStart struct {
	Info CallInfo
	// Attempt counts from 1.
	Attempt int
	// Method is the HTTP method.
	Method string
	// URL is the request URL, with any sensitive query value redacted. It
	// must not be modified.
	URL *url.URL
	// RetryReason names why the previous attempt is being retried
	// (RetryDecision.Reason, e.g. "429"); "" for the first attempt.
	RetryReason string
	// RetryWait is how long the client waited before this retry.
	RetryWait time.Duration
}

// AttemptDone is the outcome of one HTTP attempt. It repeats the
// attempt's AttemptStart, so that a hook can describe the whole attempt at
// its end.
type AttemptDone struct {
	AttemptStart
	// StatusCode is the response status (0 when none came).
	StatusCode int
	// Duration runs from the send to the end of the response body.
	Duration time.Duration
	// Err is the transport error, nil when a response came (whatever its
	// status).
	Err error
}

// DeliveryStatusReport is a delivery status being reported to Kommo.
type DeliveryStatusReport struct {
	Info      CallInfo
	Status    DeliveryStatus
	ErrorCode DeliveryErrorCode
}

// TokenRefresh is the outcome of an access token refresh.
type TokenRefresh struct {
	// AccountKey is the account's base domain (OAuthConfig.BaseDomain).
	AccountKey string
	// Duration is the token endpoint's time.
	Duration time.Duration
	// Err is nil when the refresh succeeded.
	Err error
}

// WebhookReceived describes a verified, decoded webhook.
type WebhookReceived struct {
	// Kind is the hook's kind.
	Kind WebhookKind
	// ScopeID is the scope id of the webhook URL (see WebhookScopeID).
	ScopeID string
	// SentAt is when Kommo generated the hook (the body's "time"; zero
	// when absent).
	SentAt time.Time
	// Lag is the receipt time less SentAt (0 without SentAt). Kommo's
	// time has a resolution of one second.
	Lag time.Duration
}

// WebhookCallbackDone is the outcome of a webhook callback.
type WebhookCallbackDone struct {
	Kind    WebhookKind
	ScopeID string
	// Duration is the callback's time.
	Duration time.Duration
	// Err is the callback's error (ErrWebhookCallback or
	// ErrWebhookTimeout), nil on success.
	Err error
}

// WebhookHandled is a webhook request's answer.
type WebhookHandled struct {
	// Kind is "" when the hook was refused before it was decoded.
	Kind    WebhookKind
	ScopeID string
	// StatusCode is the answer's status.
	StatusCode int
	// Latency runs from the request's arrival at the handler to the
	// answer; Kommo waits 5 s for it.
	Latency time.Duration
}

// ContextWithObserver returns a context carrying o. OAuthConfig.Refresh
// reports to it, and a token source of NewTokenSource refreshes with the
// context it was given, so its refreshes go to o whichever client (or
// none) needs them:
//
//	ts, err := kommo.NewTokenSource(kommo.ContextWithObserver(ctx, obs), cfg, store)
//
// A client's WithObserver needs no such context: the refreshes its calls
// start are reported to its observer.
func ContextWithObserver(ctx context.Context, o *Observer) context.Context {
	return context.WithValue(ctx, observerKey{}, o)
}

type observerKey struct{}

// observerOf returns the observer of ctx: the one ContextWithObserver put
// there, else that of the client whose call ctx belongs to, else nil.
func observerOf(ctx context.Context) *Observer {
	if o, ok := ctx.Value(observerKey{}).(*Observer); ok {
		return o
	}
	if st := callStateOf(ctx); st != nil {
		return st.obs
	}
	return nil
}

type callStateKey struct{}

// callState is the observation state of one call, in its context. Only
// the call's goroutine touches it.
type callState struct {
	info  CallInfo
	obs   *Observer
	start time.Time
	// retryReason and retryWait describe the retry about to be made.
	retryReason string
	retryWait   time.Duration
	attempt     int
}

// callAccountKey is the account key of a call (see CallInfo).
func (c *Client) callAccountKey(cl *call) string {
	if cl.api == crmAPI {
		if c.crmBase == nil {
			return ""
		}
		return c.crmBase.Host
	}
	return cl.scope
}

func apiName(k apiKind) string {
	if k == crmAPI {
		return APICRM
	}
	return APIChat
}

// observeCall puts the call's state into ctx and tells the observer the
// call began. The returned func reports the outcome and fills resp.Call;
// do defers it.
func (c *Client) observeCall(ctx context.Context, cl *call) (context.Context, func(*Response, error)) {
	st := &callState{info: CallInfo{Operation: cl.op, API: apiName(cl.api), AccountKey: c.callAccountKey(cl)}, obs: c.observer}
	ctx = context.WithValue(ctx, callStateKey{}, st)
	o := c.observer
	if o == nil {
		return ctx, func(resp *Response, _ error) {
			if resp != nil {
				resp.Call = st.info
			}
		}
	}
	st.start = c.clock.Now()
	if o.CallStart != nil {
		ctx = o.CallStart(ctx, st.info)
	}
	return ctx, func(resp *Response, err error) {
		ev := CallDone{Info: st.info, Method: cl.method, Attempts: st.attempt, Duration: c.clock.Now().Sub(st.start), Err: err}
		if resp != nil {
			resp.Call = st.info
			if resp.Response != nil {
				ev.StatusCode = resp.StatusCode
			}
		} else {
			var ae *APIError
			if errors.As(err, &ae) {
				ev.StatusCode = ae.StatusCode
			}
		}
		if o.CallDone != nil {
			o.CallDone(ctx, ev)
		}
	}
}

// callStateOf returns the call's state, or nil outside a call.
func callStateOf(ctx context.Context) *callState {
	st, _ := ctx.Value(callStateKey{}).(*callState)
	return st
}

// observeNow returns the time a limiter wait starts (zero without a
// limiter or an observer, so that nothing is measured).
func (c *Client) observeNow(limited bool) time.Time {
	if !limited || c.observer == nil || c.observer.LimiterWait == nil {
		return time.Time{}
	}
	return c.clock.Now()
}

// observeLimiter reports a limiter wait that began at start.
func (c *Client) observeLimiter(ctx context.Context, start time.Time) {
	if start.IsZero() {
		return
	}
	if st := callStateOf(ctx); st != nil {
		c.observer.LimiterWait(ctx, st.info, c.clock.Now().Sub(start))
	}
}

// observeRetry records why the next attempt is made, for its AttemptStart.
func observeRetry(ctx context.Context, reason string, wait time.Duration) {
	if st := callStateOf(ctx); st != nil {
		st.retryReason, st.retryWait = reason, wait
	}
}

// callLogAttrs are the call's attributes for log records.
func callLogAttrs(ctx context.Context) []slog.Attr {
	st := callStateOf(ctx)
	if st == nil {
		return nil
	}
	return []slog.Attr{slog.String("operation", st.info.Operation), slog.String("api", st.info.API), slog.String("account", st.info.AccountKey)}
}

// observeSend wraps the client's send chain (middleware included) with
// the observer's attempt hooks; without them it returns send unchanged.
func (c *Client) observeSend(send func(*http.Request) (*http.Response, error)) func(*http.Request) (*http.Response, error) {
	o := c.observer
	if o == nil {
		return send
	}
	return func(req *http.Request) (*http.Response, error) {
		ctx := req.Context()
		st := callStateOf(ctx)
		if st == nil {
			return send(req)
		}
		st.attempt++
		n := st.attempt
		ev := AttemptStart{Info: st.info, Attempt: n, Method: req.Method, URL: req.URL, RetryReason: st.retryReason, RetryWait: st.retryWait}
		if req.URL.RawQuery != "" || req.URL.User != nil {
			ev.URL, _ = url.Parse(redactURL(req.URL))
		}
		if o.AttemptStart != nil {
			if nctx := o.AttemptStart(ctx, ev); nctx != ctx {
				ctx = nctx
				req = req.WithContext(ctx)
			}
		}
		start := c.clock.Now()
		resp, err := send(req)
		done := AttemptDone{AttemptStart: ev}
		if err != nil || resp == nil || resp.Body == nil {
			if resp != nil {
				done.StatusCode = resp.StatusCode
			}
			done.Err, done.Duration = err, c.clock.Now().Sub(start)
			if o.AttemptDone != nil {
				o.AttemptDone(ctx, done)
			}
			return resp, err
		}
		done.StatusCode = resp.StatusCode
		resp.Body = &observedBody{ReadCloser: resp.Body, end: func() {
			done.Duration = c.clock.Now().Sub(start)
			if o.AttemptDone != nil {
				o.AttemptDone(ctx, done)
			}
		}}
		return resp, nil
	}
}

// observedBody reports the attempt's end when the body is closed.
type observedBody struct {
	io.ReadCloser
	end func()
}

func (b *observedBody) Close() error {
	err := b.ReadCloser.Close()
	if b.end != nil {
		b.end()
		b.end = nil
	}
	return err
}

// observeDeliveryStatus reports a delivery status about to be sent.
func (c *Client) observeDeliveryStatus(ctx context.Context, scopeID string, req *DeliveryStatusRequest) {
	if c.observer == nil || c.observer.DeliveryStatus == nil || req == nil {
		return
	}
	c.observer.DeliveryStatus(ctx, DeliveryStatusReport{
		Info:   CallInfo{Operation: "Messages.UpdateDeliveryStatus", API: APIChat, AccountKey: scopeID},
		Status: req.Status, ErrorCode: req.ErrorCode,
	})
}

// observeRefresh reports a refresh of cfg's token that began at start to
// the observer of ctx.
func (c *OAuthConfig) observeRefresh(ctx context.Context, start time.Time, errp *error) {
	o := observerOf(ctx)
	if o == nil || o.TokenRefresh == nil {
		return
	}
	o.TokenRefresh(ctx, TokenRefresh{AccountKey: c.BaseDomain, Duration: c.now().Sub(start), Err: *errp})
}

// hookObserved is the ResponseWriter of an observed webhook request: it
// keeps the answer's status and what is known of the hook.
type hookObserved struct {
	http.ResponseWriter
	status int
	kind   WebhookKind
	scope  string
}

func (w *hookObserved) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *hookObserved) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer (read
// deadlines, flushing).
func (w *hookObserved) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe starts observing a webhook request: it returns the writer to
// answer through and the func, to defer, that reports the answer.
func (h *WebhookHandler) observe(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	o := h.cfg.observer
	if o == nil || (o.WebhookHandled == nil && o.WebhookReceived == nil) {
		return w, func() {}
	}
	start := time.Now()
	ow := &hookObserved{ResponseWriter: w, scope: hookScopeFromRequest(r)}
	return ow, func() {
		if o.WebhookHandled == nil {
			return
		}
		status := ow.status
		if status == 0 {
			status = http.StatusOK
		}
		o.WebhookHandled(r.Context(), WebhookHandled{Kind: ow.kind, ScopeID: ow.scope, StatusCode: status, Latency: time.Since(start)})
	}
}

// observeReceived reports a verified, decoded hook.
func (h *WebhookHandler) observeReceived(w http.ResponseWriter, r *http.Request, ev WebhookEvent, scope string) {
	ow, ok := w.(*hookObserved)
	if !ok {
		return
	}
	ow.kind, ow.scope = ev.Kind(), scope
	if o := h.cfg.observer; o.WebhookReceived != nil {
		rec := WebhookReceived{Kind: ow.kind, ScopeID: scope, SentAt: ev.Envelope().SentAt()}
		if !rec.SentAt.IsZero() {
			rec.Lag = time.Since(rec.SentAt)
		}
		o.WebhookReceived(r.Context(), rec)
	}
}

// observeCallback reports a callback's outcome; call defers it.
func (h *WebhookHandler) observeCallback(ctx context.Context, ev WebhookEvent, start time.Time, errp *error) {
	o := h.cfg.observer
	if o == nil || o.WebhookCallbackDone == nil {
		return
	}
	o.WebhookCallbackDone(ctx, WebhookCallbackDone{Kind: ev.Kind(), ScopeID: WebhookScopeID(ctx), Duration: time.Since(start), Err: *errp})
}

// ErrorKind names an error's kind for telemetry without its
// text (which may hold identifiers or server output): the HTTP status of
// an *APIError ("429"), "rate_limited" for a *RateLimitError without one,
// "validation", "timeout", "canceled", "transport", "decode", else
// "other". Package kommootel uses it for error.type.
func ErrorKind(err error) string {
	var ae *APIError
	var ve *ValidationError
	var de *DecodeError
	var rl *RateLimitError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ae):
		return strconv.Itoa(ae.StatusCode)
	case errors.As(err, &rl):
		return "rate_limited"
	case errors.As(err, &ve):
		return "validation"
	case errors.As(err, &de):
		return "decode"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, ErrNoChannel), errors.Is(err, ErrNoCredentials):
		return "not_configured"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return "transport"
	}
	return "other"
}
