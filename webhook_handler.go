package kommo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WebhookFunc handles one verified webhook. It should only hand the event
// over (enqueue it durably) and return quickly; it must return nil only
// once the event is safe, because Kommo never sends it again. ctx carries
// the handler's deadline and the scope id (see WebhookScopeID).
type WebhookFunc func(ctx context.Context, ev WebhookEvent) error

// WebhookHandler is an http.Handler for the channel's webhook URL
// (https://example.com/kommo/:scope_id). Build it with NewWebhookHandler.
//
// It answers 405 to anything but POST, 413 when the body is over the cap,
// 408 (ErrWebhookReadTimeout) when the body is not complete within the
// read deadline (default 2 s, WithWebhookReadTimeout), 401 when
// X-Signature is missing or wrong, 400 when the body is not a JSON object
// or cannot be read, 400 (ErrWebhookScopeMismatch) when the
// URL's scope id names another account than the body's account_id, 503
// (ErrWebhookOverloaded) when too many earlier callbacks are still running
// after their answer (WithWebhookMaxAbandoned) or too many are running at
// all (WithWebhookMaxConcurrent), then runs the callback
// under a deadline (default 4 s, below Kommo's 5 s) and answers 200 only
// when it returned nil, 500 when it failed, panicked or ran out of time
// (its context is then cancelled and the answer leaves without it, at most
// 100 ms later). Every failure goes to the error hook and the logger.
//
// A replayed hook (the same verified body) is answered 200 without running
// the callback again; see WithWebhookDedupe. A message hook with a known
// message id but another body is not a replay: the callback runs and the
// error hook gets ErrWebhookDedupeCollision.
//
// # Delivery contract
//
// Kommo sends each hook once, waits 5 s for a 200 and never retries. So a
// 200 means the callback returned nil in time (or the same body has been,
// or is being, handled already), and any other answer, 500 and 503
// included, means Kommo will not redeliver: the error hook has the failure, and the message is
// to be recovered from the chat's history (Client.History). A 500 does not
// mean the callback did nothing: it may have been cut off midway, and one
// that ignores its context may still be running when the 500 leaves and
// even succeed afterwards. Its final outcome then reaches the error hook
// as a *WebhookLateError (ErrWebhookLate; Err nil for a late success), so
// a recovery can wait for it instead of doing the work twice. Such a hook
// is not recorded as handled: posting it again runs the callback. Kommo
// delivers a hook at most once, but the callback may see it more than once
// (a replay after a failure, a recovery after a late success): make it
// idempotent, e.g. keyed on the message id.
type WebhookHandler struct {
	cfg *webhookConfig
	fn  WebhookFunc

	abandoned atomic.Int64 // callbacks still running after their answer
	running   atomic.Int64 // callbacks running, abandoned ones included
}

// webhookEnqueueTimeout bounds WebhookQueue.Enqueue in the handler, so
// that an inline run after a failed enqueue still fits Kommo's 5 s.
const webhookEnqueueTimeout = time.Second

// enqueue hands a verified webhook to the queue (WithWebhookQueue) and
// answers 200 once it is stored. When the queue fails it reports
// ErrWebhookQueueFallback and returns false: the caller runs the callback
// inline, within what is left of the deadline.
func (h *WebhookHandler) enqueue(w http.ResponseWriter, r *http.Request, ctx context.Context, scope string, kind WebhookKind, ev WebhookEvent, signed []byte) bool {
	key, _ := webhookDedupeKeys(ev, signed)
	qctx, cancel := context.WithTimeout(ctx, webhookEnqueueTimeout)
	err := h.cfg.queue.Enqueue(qctx, &WebhookDelivery{ID: key, ScopeID: scope, Body: signed, ReceivedAt: time.Now()})
	cancel()
	if err != nil {
		h.report(r, 0, scope, kind, fmt.Errorf("%w: %w", ErrWebhookQueueFallback,
			&StoreError{Store: "webhook queue", Op: "Enqueue", Key: key, Err: err}))
		return false
	}
	h.cfg.logger.LogAttrs(r.Context(), slog.LevelDebug, "kommo: webhook queued",
		slog.String("scope_id", scope), slog.String("kind", string(kind)))
	w.WriteHeader(http.StatusOK)
	return true
}

// NewWebhookHandler returns a WebhookHandler verifying hooks with the
// channel secret and passing them to fn.
//
//	h, err := kommo.NewWebhookHandler(secret, func(ctx context.Context, ev kommo.WebhookEvent) error {
//		return queue.Put(ctx, kommo.WebhookScopeID(ctx), ev)
//	})
//	mux.Handle("POST /kommo/{scope_id}", h)
//
// An empty secret (ErrEmptySecret), a nil fn or an invalid option is an
// error: the handler fails closed.
func NewWebhookHandler(secret string, fn WebhookFunc, opts ...WebhookHandlerOption) (*WebhookHandler, error) {
	var problems []error
	if secret == "" {
		problems = append(problems, &OptionError{Option: "secret", Problem: "empty channel secret", Err: ErrEmptySecret})
	}
	if fn == nil {
		problems = append(problems, optionErr("fn", "nil callback"))
	}
	c, err := newWebhookConfig(secret, opts)
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("kommo: NewWebhookHandler: %w", errors.Join(problems...))
	}
	if !c.dedupeOK {
		c.dedupe = NewMemoryDedupe(WebhookDefaultDedupeCapacity)
	}
	return &WebhookHandler{cfg: c, fn: fn}, nil
}

type hookScopeKey struct{}

// WebhookScopeID returns the scope id of the webhook URL the hook arrived
// on, inside a WebhookHandler callback ("" elsewhere). It is the
// "scope_id" path wildcard when the handler is mounted on a pattern such
// as "POST /kommo/{scope_id}", else the last non-empty path segment (Kommo
// substitutes :scope_id at the end of the registered URL). When both are
// present, the handler has checked that its account part (after the first
// "_") is the body's account_id.
func WebhookScopeID(ctx context.Context) string {
	s, _ := ctx.Value(hookScopeKey{}).(string)
	return s
}

func hookScopeFromRequest(r *http.Request) string {
	if s := r.PathValue("scope_id"); s != "" {
		return s
	}
	p := strings.TrimRight(r.URL.Path, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	return p
}

// hookScopeAccount returns the account part of a scope id
// ("{channel_id}_{account_amojo_id}", see ScopeID): what follows the first
// "_", or "" when there is none.
func hookScopeAccount(scope string) string {
	_, acc, _ := strings.Cut(scope, "_")
	return acc
}

// hookCheckScope binds the URL's scope to the signed body: Kommo signs only
// the body, so without this check a hook for one account could be posted to
// another account's URL and reach the callback under that scope. When the
// scope has no account part or the body no account_id there is nothing to
// compare. The ids are UUIDs, compared without regard to letter case.
func hookCheckScope(scope, accountID string) error {
	acc := hookScopeAccount(scope)
	if acc == "" || accountID == "" || strings.EqualFold(acc, accountID) {
		return nil
	}
	return fmt.Errorf("%w: the URL is for account %s, the body for %s",
		ErrWebhookScopeMismatch, hookSafeID(acc), hookSafeID(accountID))
}

// hookSafeID keeps a hostile id short and quoted in errors and logs.
func hookSafeID(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strconv.Quote(s)
}

// hookResult is what the callback goroutine reports.
type hookResult struct {
	err      error // from the callback (already wrapped)
	storeErr error // from Complete/Release
}

// ServeHTTP verifies, decodes and hands over one webhook.
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.cfg
	w, observed := h.observe(w, r)
	defer observed()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	lift, limit := h.setReadDeadline(w, r)
	ev, signed, err := c.parseRequest(r, http.MaxBytesReader(w, body, c.maxBody))
	scope := hookScopeFromRequest(r)
	if err != nil {
		// The deadline stays on: it also bounds the server's drain of an
		// unread body after the answer.
		if errors.Is(err, ErrWebhookBodyRead) && errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w after %s: %w", ErrWebhookReadTimeout, limit, err)
			w.Header().Set("Connection", "close")
		}
		h.fail(w, r, hookStatus(err), scope, "", err)
		return
	}
	lift()
	kind := ev.Kind()
	h.observeReceived(w, r, ev, scope)
	if err := hookCheckScope(scope, ev.Envelope().AccountID); err != nil {
		h.fail(w, r, http.StatusBadRequest, scope, kind, err)
		return
	}

	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), hookScopeKey{}, scope), c.timeout)
	defer cancel()

	if c.queue != nil && h.enqueue(w, r, ctx, scope, kind, ev, signed) {
		return
	}

	if n := h.abandoned.Load(); n >= int64(c.maxAbandoned) {
		h.fail(w, r, http.StatusServiceUnavailable, scope, kind,
			fmt.Errorf("%w: %d still running after their answer, limit %d", ErrWebhookOverloaded, n, c.maxAbandoned))
		return
	}
	if n := h.running.Add(1); n > int64(c.maxRunning) {
		h.running.Add(-1)
		h.fail(w, r, http.StatusServiceUnavailable, scope, kind,
			fmt.Errorf("%w: %d callbacks running, limit %d", ErrWebhookOverloaded, n-1, c.maxRunning))
		return
	}

	keys, replay := h.reserve(r, ctx, scope, kind, ev, signed)
	if replay {
		h.running.Add(-1)
		c.logger.LogAttrs(r.Context(), slog.LevelDebug, "kommo: duplicate webhook acknowledged",
			slog.String("scope_id", scope), slog.String("kind", string(kind)))
		w.WriteHeader(http.StatusOK)
		return
	}

	var (
		mu       sync.Mutex
		returned bool          // the callback returned before the handler gave up on it
		late     *http.Request // set when the handler gave up: the 500 is out
		done     = make(chan hookResult, 1)
	)
	go func() {
		defer h.running.Add(-1)
		cerr := h.call(ctx, ev)
		mu.Lock()
		lr := late
		returned = lr == nil
		mu.Unlock()
		if lr != nil {
			h.lateOutcome(lr, scope, ev, cerr)
			return
		}
		res := hookResult{err: cerr}
		if len(keys) > 0 {
			sctx, scancel := hookStoreContext(ctx)
			res.storeErr = h.settle(sctx, keys, cerr == nil)
			scancel()
		}
		done <- res
	}()

	var res hookResult
	select {
	case res = <-done:
	case <-ctx.Done():
		// A callback that honours ctx returns at once: give it a moment, so
		// that its own error is the answer's and not a late report.
		grace := time.NewTimer(webhookAbandonGrace)
		select {
		case res = <-done:
			grace.Stop()
		case <-grace.C:
			lr := r.Clone(context.WithoutCancel(r.Context()))
			lr.Body = http.NoBody
			mu.Lock()
			wait := returned
			if !wait {
				late = lr
				h.abandoned.Add(1)
			}
			mu.Unlock()
			if !wait {
				h.abandon(w, r, ctx, scope, kind, keys)
				return
			}
			res = <-done // it returned in time; its dedupe bookkeeping is under way
		}
	}
	if res.storeErr != nil {
		h.report(r, 0, scope, kind, res.storeErr)
	}
	if res.err != nil {
		h.fail(w, r, http.StatusInternalServerError, scope, kind, res.err)
		return
	}
	c.logger.LogAttrs(r.Context(), slog.LevelDebug, "kommo: webhook handled",
		slog.String("scope_id", scope), slog.String("kind", string(kind)))
	w.WriteHeader(http.StatusOK)
}

// setReadDeadline bounds the body read with a read deadline on the
// connection and returns the function that lifts it again once the body
// is in, so that it never applies to the callback (net/http lifts it
// itself when a body hits EOF; another ResponseWriter may not).
// Without deadline support (http.ErrNotSupported), or when the server's
// ReadTimeout is as short anyway, nothing is set.
// It also returns the read limit in force, for the error.
func (h *WebhookHandler) setReadDeadline(w http.ResponseWriter, r *http.Request) (lift func(), limit time.Duration) {
	d := h.cfg.readTimeout
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv.ReadTimeout > 0 && srv.ReadTimeout <= d {
		return func() {}, srv.ReadTimeout
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
		if !errors.Is(err, http.ErrNotSupported) {
			h.cfg.logger.LogAttrs(r.Context(), slog.LevelDebug, "kommo: webhook read deadline not set",
				slog.String("error", err.Error()))
		}
		return func() {}, d
	}
	return func() { _ = rc.SetReadDeadline(time.Time{}) }, d
}

const (
	// webhookAbandonGrace is how long the handler waits, once the callback's
	// context is done, for it to return before answering without it.
	webhookAbandonGrace = 100 * time.Millisecond
	// webhookStoreGrace is how long dedupe bookkeeping may take past the
	// handler's deadline.
	webhookStoreGrace = 250 * time.Millisecond
)

// hookStoreContext bounds Complete and Release: they run whatever happened
// to the request, until shortly after the handler's deadline.
func hookStoreContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := time.Now()
	if dl, ok := ctx.Deadline(); ok && dl.After(d) {
		d = dl
	}
	return context.WithDeadline(context.WithoutCancel(ctx), d.Add(webhookStoreGrace))
}

// reserve claims the hook's dedupe keys and returns those the request owns,
// or replay when the same body is handled or in flight already.
func (h *WebhookHandler) reserve(r *http.Request, ctx context.Context, scope string, kind WebhookKind, ev WebhookEvent, signed []byte) (keys []string, replay bool) {
	if h.cfg.dedupe == nil {
		return nil, false
	}
	key, idKey := webhookDedupeKeys(ev, signed)
	fresh, err := h.cfg.dedupe.Reserve(ctx, key)
	switch {
	case err != nil:
		// Fail open: Kommo never redelivers, so skipping the callback
		// could lose the message; a rare duplicate is the lesser harm.
		h.report(r, 0, scope, kind, fmt.Errorf("%w: reserve: %w", ErrWebhookDedupe, err))
		return []string{key}, false
	case !fresh:
		return nil, true
	case idKey == "":
		return []string{key}, false
	}
	return h.reserveID(r, ctx, scope, kind, []string{key}, idKey), false
}

// abandon answers 500 for a callback still running past its deadline (or
// after the request was cancelled). Its dedupe keys are released first, so
// the store agrees with the answer: a replay runs the callback again, and a
// late success is not recorded as handled.
func (h *WebhookHandler) abandon(w http.ResponseWriter, r *http.Request, ctx context.Context, scope string, kind WebhookKind, keys []string) {
	if len(keys) > 0 {
		sctx, scancel := hookStoreContext(ctx)
		if err := h.settle(sctx, keys, false); err != nil {
			h.report(r, 0, scope, kind, err)
		}
		scancel()
	}
	var err error
	if cerr := ctx.Err(); errors.Is(cerr, context.DeadlineExceeded) {
		err = fmt.Errorf("%w after %s: %w", ErrWebhookTimeout, h.cfg.timeout, cerr)
	} else {
		err = fmt.Errorf("%w: request cancelled: %w", ErrWebhookCallback, cerr)
	}
	h.fail(w, r, http.StatusInternalServerError, scope, kind, err)
}

// lateOutcome reports the outcome of an abandoned callback, from its
// goroutine, after the answer. r is a copy of the request without a body.
func (h *WebhookHandler) lateOutcome(r *http.Request, scope string, ev WebhookEvent, err error) {
	defer h.abandoned.Add(-1)
	lerr := &WebhookLateError{Event: ev, ScopeID: scope, Err: err}
	attrs := []slog.Attr{slog.String("scope_id", scope), slog.String("kind", string(ev.Kind()))}
	if err != nil {
		attrs = append(attrs, slog.String("outcome", "failed"), slog.String("error", err.Error()))
	} else {
		attrs = append(attrs, slog.String("outcome", "succeeded"))
	}
	h.cfg.logger.LogAttrs(r.Context(), slog.LevelWarn, "kommo: webhook callback finished after the deadline", attrs...)
	if h.cfg.onError == nil {
		return
	}
	// No net/http recover() up here: a panicking hook must not take the
	// process down.
	defer func() {
		if p := recover(); p != nil {
			h.cfg.logger.LogAttrs(r.Context(), slog.LevelError, "kommo: webhook error hook panicked",
				slog.String("scope_id", scope), slog.String("panic", fmt.Sprint(p)))
		}
	}()
	h.cfg.onError(r, lerr)
}

// reserveID reserves the message id key of a hook whose exact key was new
// and returns the keys the request owns. A taken id key means a second,
// different body with a known message id: not a replay, so the callback
// still runs, but the error hook hears of it.
func (h *WebhookHandler) reserveID(r *http.Request, ctx context.Context, scope string, kind WebhookKind, keys []string, idKey string) []string {
	first, err := h.cfg.dedupe.Reserve(ctx, idKey)
	switch {
	case err != nil:
		h.report(r, 0, scope, kind, fmt.Errorf("%w: reserve: %w", ErrWebhookDedupe, err))
		return append(keys, idKey)
	case first:
		return append(keys, idKey)
	}
	h.report(r, 0, scope, kind, fmt.Errorf("%w: message id %s", ErrWebhookDedupeCollision,
		hookSafeID(strings.TrimPrefix(idKey, "message-id:"))))
	return keys
}

// settle completes (done) or releases the dedupe keys of one hook.
func (h *WebhookHandler) settle(ctx context.Context, keys []string, done bool) error {
	var errs []error
	for _, k := range keys {
		var err error
		if done {
			err = h.cfg.dedupe.Complete(ctx, k)
		} else {
			err = h.cfg.dedupe.Release(ctx, k)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrWebhookDedupe, errors.Join(errs...))
}

// call runs the callback, turning an error or a panic into an
// ErrWebhookCallback, or an ErrWebhookTimeout when the deadline had passed.
func (h *WebhookHandler) call(ctx context.Context, ev WebhookEvent) (err error) {
	defer h.observeCallback(ctx, ev, time.Now(), &err)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: panic: %v", ErrWebhookCallback, p)
		}
	}()
	cerr := h.fn(ctx, ev)
	switch {
	case cerr == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		// It failed because its time ran out.
		return fmt.Errorf("%w after %s: %w", ErrWebhookTimeout, h.cfg.timeout, cerr)
	}
	return fmt.Errorf("%w: %w", ErrWebhookCallback, cerr)
}

func (h *WebhookHandler) fail(w http.ResponseWriter, r *http.Request, status int, scope string, kind WebhookKind, err error) {
	h.report(r, status, scope, kind, err)
	http.Error(w, http.StatusText(status), status)
}

func (h *WebhookHandler) report(r *http.Request, status int, scope string, kind WebhookKind, err error) {
	level := slog.LevelWarn
	if status >= 500 || errors.Is(err, ErrWebhookDedupe) {
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("scope_id", scope), slog.String("error", err.Error())}
	if status != 0 { // 0: a dedupe store error, the answer is still to come
		attrs = append(attrs, slog.Int("status", status))
	}
	if kind != "" {
		attrs = append(attrs, slog.String("kind", string(kind)))
	}
	h.cfg.logger.LogAttrs(r.Context(), level, "kommo: webhook failed", attrs...)
	if h.cfg.onError != nil {
		h.cfg.onError(r, err)
	}
}

// hookStatus maps a parse error to the handler's answer.
func hookStatus(err error) int {
	switch {
	case errors.Is(err, ErrWebhookMethodNotAllowed):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrWebhookReadTimeout):
		return http.StatusRequestTimeout
	case errors.Is(err, ErrWebhookTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalidSignature):
		return http.StatusUnauthorized
	case errors.Is(err, ErrWebhookMalformed), errors.Is(err, ErrWebhookBodyRead):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
