package kommo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
// 401 when X-Signature is missing or wrong, 400 when the body is not a
// JSON object or cannot be read, 400 (ErrWebhookScopeMismatch) when the
// URL's scope id names another account than the body's account_id,
// then runs the callback under a deadline (default 4 s, below Kommo's 5 s)
// and answers 200 only when it returned nil, 500 when it failed, panicked
// or ran out of time (its context is then cancelled and the answer leaves
// at once). Every failure goes to the error hook and the logger.
//
// A replayed hook (the same verified body) is answered 200 without running
// the callback again; see WithWebhookDedupe. A message hook with a known
// message id but another body is not a replay: the callback runs and the
// error hook gets ErrWebhookDedupeCollision.
type WebhookHandler struct {
	cfg *webhookConfig
	fn  WebhookFunc
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
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	ev, signed, err := c.parseRequest(r, http.MaxBytesReader(w, body, c.maxBody))
	scope := hookScopeFromRequest(r)
	if err != nil {
		h.fail(w, r, hookStatus(err), scope, "", err)
		return
	}
	kind := ev.Kind()
	if err := hookCheckScope(scope, ev.Envelope().AccountID); err != nil {
		h.fail(w, r, http.StatusBadRequest, scope, kind, err)
		return
	}

	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), hookScopeKey{}, scope), c.timeout)
	defer cancel()

	var keys []string // the dedupe keys to Complete or Release
	if c.dedupe != nil {
		key, idKey := webhookDedupeKeys(ev, signed)
		fresh, derr := c.dedupe.Reserve(ctx, key)
		switch {
		case derr != nil:
			// Fail open: Kommo never redelivers, so skipping the callback
			// could lose the message; a rare duplicate is the lesser harm.
			h.report(r, 0, scope, kind, fmt.Errorf("%w: reserve: %w", ErrWebhookDedupe, derr))
			keys = append(keys, key)
		case !fresh:
			c.logger.LogAttrs(r.Context(), slog.LevelDebug, "kommo: duplicate webhook acknowledged",
				slog.String("scope_id", scope), slog.String("kind", string(kind)))
			w.WriteHeader(http.StatusOK)
			return
		default:
			keys = append(keys, key)
			if idKey != "" {
				keys = h.reserveID(r, ctx, scope, kind, keys, idKey)
			}
		}
	}

	var (
		mu        sync.Mutex
		abandoned bool
		done      = make(chan hookResult, 1)
	)
	go func() {
		res := hookResult{err: h.call(ctx, ev)}
		if len(keys) > 0 {
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
			res.storeErr = h.settle(sctx, keys, res.err == nil)
			scancel()
		}
		mu.Lock()
		defer mu.Unlock()
		if !abandoned {
			done <- res
			return
		}
		// The 500 has gone out already; leave a trace of the outcome.
		attrs := []slog.Attr{slog.String("scope_id", scope), slog.String("kind", string(kind))}
		if res.err != nil {
			attrs = append(attrs, slog.String("error", res.err.Error()))
		}
		if res.storeErr != nil {
			attrs = append(attrs, slog.String("dedupe_error", res.storeErr.Error()))
		}
		c.logger.LogAttrs(context.WithoutCancel(ctx), slog.LevelWarn, "kommo: webhook callback finished after the deadline", attrs...)
	}()

	var res hookResult
	select {
	case res = <-done:
	case <-ctx.Done():
		mu.Lock()
		select {
		case res = <-done: // finished just in time
		default:
			abandoned = true
		}
		mu.Unlock()
		if abandoned {
			cerr := ctx.Err()
			if errors.Is(cerr, context.DeadlineExceeded) {
				err = fmt.Errorf("%w after %s: %w", ErrWebhookTimeout, c.timeout, cerr)
			} else {
				err = fmt.Errorf("%w: request cancelled: %w", ErrWebhookCallback, cerr)
			}
			h.fail(w, r, http.StatusInternalServerError, scope, kind, err)
			return
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
	case errors.Is(err, ErrWebhookTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalidSignature):
		return http.StatusUnauthorized
	case errors.Is(err, ErrWebhookMalformed), errors.Is(err, ErrWebhookBodyRead):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
