package kommo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kommo-go/kommo/internal/chatsign"
)

// Webhook defaults.
const (
	// WebhookDefaultMaxBodySize caps a webhook body (1 MiB) unless
	// WithWebhookMaxBodySize says otherwise. Chat hooks are a few KiB.
	WebhookDefaultMaxBodySize int64 = 1 << 20

	// WebhookDefaultTimeout bounds the WebhookHandler callback. Kommo waits
	// at most 5 s for a 200 and never retries, so the answer must leave
	// before that.
	WebhookDefaultTimeout = 4 * time.Second

	// WebhookDefaultReadTimeout bounds how long a WebhookHandler waits for
	// the request body, from the moment the handler is called, unless
	// WithWebhookReadTimeout says otherwise. A chat hook is a few KiB that
	// Kommo sends at once; a client trickling its body is cut off well
	// before Kommo's 5 s.
	WebhookDefaultReadTimeout = 2 * time.Second

	// KommoWebhookWait is how long Kommo waits for a webhook's answer; it
	// never retries. WithWebhookTimeout must stay below it.
	KommoWebhookWait = 5 * time.Second

	// WebhookDefaultDedupeCapacity is how many webhook keys the default
	// in-memory dedupe store of a WebhookHandler remembers.
	WebhookDefaultDedupeCapacity = 10000

	// WebhookDefaultMaxAbandoned is how many callbacks a WebhookHandler lets
	// run on after their answer (500) before it answers 503 at once
	// (WithWebhookMaxAbandoned).
	WebhookDefaultMaxAbandoned = 64
	// WebhookDefaultMaxConcurrent is how many callbacks a WebhookHandler
	// runs at once, abandoned ones included (WithWebhookMaxConcurrent).
	WebhookDefaultMaxConcurrent = 256
)

// WebhookOption configures how a webhook is verified and decoded:
// WithWebhookMaxBodySize, WithWebhookSecrets and WithWebhookStrictSignature.
// ParseWebhook, ParseWebhookBody and NewWebhookHandler take it.
type WebhookOption interface {
	WebhookHandlerOption
	parseOption()
}

// WebhookHandlerOption configures a WebhookHandler. Every WebhookOption is
// one too; WithWebhookTimeout, WithWebhookDedupe, WithWebhookErrorHandler
// and WithWebhookLogger concern only the handler, so the parse functions do
// not take them and no option is silently ignored.
type WebhookHandlerOption interface {
	apply(*webhookConfig) error
}

// webhookParseOption is a WebhookOption.
type webhookParseOption func(*webhookConfig) error

func (o webhookParseOption) apply(c *webhookConfig) error { return o(c) }
func (webhookParseOption) parseOption()                   {}

// webhookHandlerOption is a WebhookHandlerOption only.
type webhookHandlerOption func(*webhookConfig) error

func (o webhookHandlerOption) apply(c *webhookConfig) error { return o(c) }

type webhookConfig struct {
	secrets  []string
	maxBody  int64
	timeout  time.Duration
	strict   bool
	dedupe   WebhookDedupeStore
	dedupeOK bool // WithWebhookDedupe was given
	onError  func(*http.Request, error)
	logger   *slog.Logger

	// maxAbandoned bounds the callbacks still running after their answer.
	maxAbandoned int
	// maxRunning bounds the callbacks running at once.
	maxRunning int
	// queue, when set, takes verified webhooks in (WithWebhookQueue).
	queue WebhookQueue
	// readTimeout bounds the body read of a WebhookHandler request.
	readTimeout time.Duration
	observer    *Observer
}

// WithWebhookMaxBodySize caps the body at n bytes (default 1 MiB). A larger
// body fails with ErrWebhookTooLarge (413 from WebhookHandler). n must be
// positive.
func WithWebhookMaxBodySize(n int64) WebhookOption {
	return webhookParseOption(func(c *webhookConfig) error {
		if n <= 0 {
			return optionErr("WithWebhookMaxBodySize", "size must be positive, got %d", n)
		}
		c.maxBody = n
		return nil
	})
}

// WithWebhookTimeout bounds the WebhookHandler callback (default 4 s). When
// it expires the handler cancels the callback's context and answers 500 as
// soon as it returns, and without it at most 100 ms later; a callback that
// returns later still has its outcome reported (see WebhookLateError).
// The clock starts once the body has been read and verified, so keep d
// below Kommo's 5 s with some room. d must be positive and less than
// KommoWebhookWait: Kommo gives up after that, so a longer callback's answer
// would never be read.
func WithWebhookTimeout(d time.Duration) WebhookHandlerOption {
	return webhookHandlerOption(func(c *webhookConfig) error {
		if d <= 0 || d >= KommoWebhookWait {
			return optionErr("WithWebhookTimeout", "timeout must be positive and below Kommo's %s wait, got %s", KommoWebhookWait, d)
		}
		c.timeout = d
		return nil
	})
}

// WithWebhookReadTimeout bounds how long the WebhookHandler waits for the
// request body (default WebhookDefaultReadTimeout, 2 s), counted from the
// moment the handler is called, with http.ResponseController's
// SetReadDeadline. A body that is not complete by then is answered 408
// (ErrWebhookReadTimeout, reported to the error hook), the connection is
// closed and the callback does not run. The deadline is lifted once the
// body is read. It is not set when the ResponseWriter cannot take one
// (http.ErrNotSupported, e.g. httptest.ResponseRecorder), nor when the
// http.Server's own ReadTimeout is shorter. d must be positive and less
// than KommoWebhookWait. Kommo sends a hook's body at once, so a genuine
// read takes milliseconds; the callback's clock (WithWebhookTimeout)
// starts after it.
func WithWebhookReadTimeout(d time.Duration) WebhookHandlerOption {
	return webhookHandlerOption(func(c *webhookConfig) error {
		if d <= 0 || d >= KommoWebhookWait {
			return optionErr("WithWebhookReadTimeout", "read timeout must be positive and below Kommo's %s wait, got %s", KommoWebhookWait, d)
		}
		c.readTimeout = d
		return nil
	})
}

// WithWebhookMaxAbandoned bounds how many callbacks may still be running
// after the handler answered 500 for them (their deadline passed or the
// request was cancelled; Go cannot stop a goroutine). Once n are, the
// handler answers 503 at once, without running the callback, and reports
// ErrWebhookOverloaded, until some of them return. Hooks already in their
// callback when the bound is reached may still join them, so at most n
// plus the number of hooks in flight at that moment are abandoned, and
// never more than WithWebhookMaxConcurrent callbacks run in all. The
// default is WebhookDefaultMaxAbandoned (64); n must be positive.
func WithWebhookMaxAbandoned(n int) WebhookHandlerOption {
	return webhookHandlerOption(func(c *webhookConfig) error {
		if n <= 0 {
			return optionErr("WithWebhookMaxAbandoned", "bound must be positive, got %d", n)
		}
		c.maxAbandoned = n
		return nil
	})
}

// WithWebhookMaxConcurrent bounds how many callbacks may run at once,
// abandoned ones (see WithWebhookMaxAbandoned) included, and so the
// goroutines the handler's callbacks can hold. Beyond it the handler
// answers 503 at once, without running the callback, and reports
// ErrWebhookOverloaded. The default is WebhookDefaultMaxConcurrent (256);
// n must be positive. With WithWebhookQueue a queued webhook runs no
// callback in the handler and does not count.
func WithWebhookMaxConcurrent(n int) WebhookHandlerOption {
	return webhookHandlerOption(func(c *webhookConfig) error {
		if n <= 0 {
			return optionErr("WithWebhookMaxConcurrent", "bound must be positive, got %d", n)
		}
		c.maxRunning = n
		return nil
	})
}

// WithWebhookQueue makes the handler a durable intake: it verifies and
// decodes each webhook, checks its scope, stores it in q and answers 200
// as soon as q has it, in milliseconds, without running the callback; a
// WebhookWorker on the same queue runs it, with retries. The handler's
// WebhookFunc is then only the fallback: when q fails (Redis is down,
// say) the handler runs it inline, as without a queue, within the
// handler's deadline, and reports ErrWebhookQueueFallback with the
// queue's *StoreError to the error hook, so that a webhook Kommo sends
// once is not lost. Enqueue gets at most 1 s of the deadline.
func WithWebhookQueue(q WebhookQueue) WebhookHandlerOption {
	return webhookHandlerOption(func(c *webhookConfig) error {
		if q == nil {
			return optionErr("WithWebhookQueue", "nil queue")
		}
		c.queue = q
		return nil
	})
}

// WithWebhookSecrets accepts signatures made with the previous channel
// secrets too, for a secret rotation: deploy with the new secret as the
// main one and the old one here, then drop it. Empty strings are ignored.
func WithWebhookSecrets(previous ...string) WebhookOption {
	return webhookParseOption(func(c *webhookConfig) error {
		for _, s := range previous {
			if s != "" {
				c.secrets = append(c.secrets, s)
			}
		}
		return nil
	})
}

// WithWebhookStrictSignature accepts only a signature over the exact body.
// By default a body whose signature does not match is checked once more
// with one trailing "\n" or "\r\n" removed, as open-source validators do:
// it is UNCONFIRMED whether Kommo ever appends one, and the trimmed bytes
// decode to the same JSON, so the fallback cannot admit a forged event.
func WithWebhookStrictSignature() WebhookOption {
	return webhookParseOption(func(c *webhookConfig) error { c.strict = true; return nil })
}

// WithWebhookDedupe sets the store that remembers handled hooks, so a
// replayed body is acknowledged with 200 without running the callback
// again. Message hooks are keyed by their amojo message id and a hash of
// the verified body: a second body with the same id but other bytes runs
// the callback and is reported as ErrWebhookDedupeCollision. The default is NewMemoryDedupe(WebhookDefaultDedupeCapacity) per
// handler; pass a shared store (e.g. backed by Redis) when several
// instances serve the webhook URL, or nil to turn deduplication off.
//
// A copy that arrives while its twin's callback is still running is answered
// 200 too without running the callback; the twin's outcome is what counts
// (and if it fails, the key is released so a later replay runs again).
//
// Kommo signs only the body, so the signature cannot stop a replay; it also
// never retries, so a genuine duplicate is rare and a replay is suspect.
func WithWebhookDedupe(store WebhookDedupeStore) WebhookHandlerOption {
	return webhookHandlerOption(func(c *webhookConfig) error { c.dedupe, c.dedupeOK = store, true; return nil })
}

// WithWebhookErrorHandler registers fn to be called, synchronously and
// before the response is written, with every failure: each non-200 answer,
// each dedupe store error and each dedupe collision
// (ErrWebhookDedupeCollision, the answer follows the callback). The one
// exception is a *WebhookLateError, the outcome of a callback that returned
// after its 500: fn gets it later, from the callback's goroutine, with a
// copy of the request. fn must be safe for concurrent use. Use it for metrics or alerts: Kommo never
// redelivers, so a failure reported here is a message to recover by hand
// (e.g. from History). The request body has been consumed.
func WithWebhookErrorHandler(fn func(r *http.Request, err error)) WebhookHandlerOption {
	return webhookHandlerOption(func(c *webhookConfig) error { c.onError = fn; return nil })
}

// WithWebhookLogger logs failures at warn (4xx) and error (5xx) level and
// successes and duplicates at debug level. Bodies and signatures are never
// logged. The default discards logs.
func WithWebhookLogger(l *slog.Logger) WebhookHandlerOption {
	return webhookHandlerOption(func(c *webhookConfig) error {
		if l == nil {
			return optionErr("WithWebhookLogger", "nil logger")
		}
		c.logger = l
		return nil
	})
}

// WithWebhookObserver reports every webhook received, every callback's
// outcome and every answer to o (its Webhook* hooks; see Observer).
func WithWebhookObserver(o *Observer) WebhookHandlerOption {
	return webhookHandlerOption(func(c *webhookConfig) error {
		if o == nil {
			return optionErr("WithWebhookObserver", "nil observer")
		}
		c.observer = o
		return nil
	})
}

// newWebhookConfig applies opts over the defaults and returns every
// option problem at once.
func newWebhookConfig(secret string, opts []WebhookHandlerOption) (*webhookConfig, error) {
	c := &webhookConfig{
		maxBody: WebhookDefaultMaxBodySize,
		timeout: WebhookDefaultTimeout,
		logger:  slog.New(slog.DiscardHandler),

		maxAbandoned: WebhookDefaultMaxAbandoned,
		maxRunning:   WebhookDefaultMaxConcurrent,
		readTimeout:  WebhookDefaultReadTimeout,
	}
	if secret != "" {
		c.secrets = append(c.secrets, secret)
	}
	var problems []error
	for _, o := range opts {
		if o == nil {
			problems = append(problems, optionErr("webhook options", "nil option"))
			continue
		}
		if err := o.apply(c); err != nil {
			problems = append(problems, err)
		}
	}
	return c, errors.Join(problems...)
}

// parseConfig is newWebhookConfig for the parse functions.
func parseConfig(op, secret string, opts []WebhookOption) (*webhookConfig, error) {
	hopts := make([]WebhookHandlerOption, len(opts))
	for i, o := range opts {
		if o != nil {
			hopts[i] = o
		}
	}
	c, err := newWebhookConfig(secret, hopts)
	if err != nil {
		return nil, fmt.Errorf("kommo: %s: %w", op, err)
	}
	return c, nil
}

// ParseWebhook verifies and decodes one chat webhook request: it reads the
// body once (at most 1 MiB unless WithWebhookMaxBodySize says otherwise),
// checks X-Signature (hex HMAC-SHA1 of the raw body keyed with the channel
// secret, compared in constant time) and decodes the hook into a
// *MessageEvent, *TypingEvent, *ReactionEvent or *UnknownEvent.
//
//	ev, err := kommo.ParseWebhook(r, channelSecret)
//	if errors.Is(err, kommo.ErrInvalidSignature) { w.WriteHeader(401); return }
//
// Errors: ErrWebhookMethodNotAllowed (not a POST), ErrWebhookTooLarge,
// ErrWebhookBodyRead, ErrInvalidSignature (missing or wrong signature, or
// no secret), ErrWebhookMalformed (not a JSON object). WithWebhookSecrets
// and WithWebhookStrictSignature apply. It does not close r.Body. Prefer
// NewWebhookHandler, which also answers Kommo within its deadline.
func ParseWebhook(r *http.Request, secret string, opts ...WebhookOption) (WebhookEvent, error) {
	c, err := parseConfig("ParseWebhook", secret, opts)
	if err != nil {
		return nil, err
	}
	ev, _, err := c.parseRequest(r, r.Body)
	return ev, err
}

// ParseWebhookBody is ParseWebhook for a body you have already read and the
// X-Signature header value that came with it.
//
//	ev, err := kommo.ParseWebhookBody(body, r.Header.Get("X-Signature"), channelSecret)
func ParseWebhookBody(body []byte, signature, secret string, opts ...WebhookOption) (WebhookEvent, error) {
	c, err := parseConfig("ParseWebhookBody", secret, opts)
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > c.maxBody {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrWebhookTooLarge, len(body), c.maxBody)
	}
	ev, _, err := c.parse(body, signature)
	return ev, err
}

// parseRequest reads, verifies and decodes. It returns the bytes the
// signature matched (for the dedupe key).
func (c *webhookConfig) parseRequest(r *http.Request, body io.Reader) (WebhookEvent, []byte, error) {
	if r == nil {
		return nil, nil, fmt.Errorf("%w: nil request", ErrWebhookBodyRead)
	}
	if r.Method != http.MethodPost {
		return nil, nil, fmt.Errorf("%w: %s", ErrWebhookMethodNotAllowed, hookSafeMethod(r.Method))
	}
	if r.ContentLength > c.maxBody {
		return nil, nil, fmt.Errorf("%w: Content-Length %d, limit %d", ErrWebhookTooLarge, r.ContentLength, c.maxBody)
	}
	b, err := hookReadBody(body, c.maxBody)
	if err != nil {
		return nil, nil, err
	}
	return c.parse(b, r.Header.Get(chatsign.HeaderSignature))
}

// hookSafeMethod keeps a hostile method name out of errors and logs.
func hookSafeMethod(m string) string {
	if len(m) > 16 {
		m = m[:16]
	}
	return strconv.Quote(m)
}

func hookReadBody(body io.Reader, limit int64) ([]byte, error) {
	if body == nil || body == http.NoBody {
		return []byte{}, nil
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: limit %d", ErrWebhookTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: %w", ErrWebhookBodyRead, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: limit %d", ErrWebhookTooLarge, limit)
	}
	return b, nil
}

func (c *webhookConfig) parse(body []byte, signature string) (WebhookEvent, []byte, error) {
	signed, err := c.verify(body, signature)
	if err != nil {
		return nil, nil, err
	}
	ev, err := hookDecode(signed)
	if err != nil {
		return nil, nil, err
	}
	return ev, signed, nil
}

// verify returns the bytes the signature matches: body itself or, unless
// strict, body without one trailing "\r\n" or "\n".
func (c *webhookConfig) verify(body []byte, signature string) ([]byte, error) {
	if len(c.secrets) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, ErrEmptySecret)
	}
	signature = strings.TrimSpace(signature)
	if signature == "" {
		return nil, fmt.Errorf("%w: missing %s header", ErrInvalidSignature, chatsign.HeaderSignature)
	}
	candidates := [2][]byte{body}
	if !c.strict {
		if t, ok := bytes.CutSuffix(body, []byte("\r\n")); ok {
			candidates[1] = t
		} else if t, ok := bytes.CutSuffix(body, []byte("\n")); ok {
			candidates[1] = t
		}
	}
	for _, b := range candidates {
		if b == nil {
			continue
		}
		for _, s := range c.secrets {
			if VerifyWebhookSignature(b, signature, s) {
				return b, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %s does not match the body", ErrInvalidSignature, chatsign.HeaderSignature)
}

// hookDecode dispatches on the body's keys: "message" → message,
// "action.reaction" → reaction, "action.typing" → typing, else unknown.
func hookDecode(body []byte) (WebhookEvent, error) {
	if ev, ok := hookDecodeFast(body); ok {
		return ev, nil
	}
	return hookDecodeLenient(body)
}

// hookUnionWire holds every known hook shape, so a well-formed hook is
// decoded in a single pass.
type hookUnionWire struct {
	AccountID string            `json:"account_id"`
	Time      int64             `json:"time"`
	Message   *hookMessageInner `json:"message"`
	Action    *struct {
		Reaction *hookReactionInner `json:"reaction"`
		Typing   *hookTypingInner   `json:"typing"`
		User     *ChatUser          `json:"user"`
	} `json:"action"`
}

// hookDecodeFast decodes a hook whose fields all have their documented
// types in one pass. It returns false for anything else (not an object,
// a type mismatch), which hookDecodeLenient then handles.
func hookDecodeFast(body []byte) (WebhookEvent, bool) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false
	}
	var w hookUnionWire
	if json.Unmarshal(body, &w) != nil {
		return nil, false
	}
	env := WebhookEnvelope{AccountID: w.AccountID, Time: w.Time, Raw: body}
	switch {
	case w.Message != nil && w.Message.Message != nil:
		return w.Message.event(env), true
	case w.Action != nil && w.Action.Reaction != nil:
		return w.Action.Reaction.event(env), true
	case w.Action != nil && w.Action.Typing != nil:
		return w.Action.Typing.event(env, w.Action.User), true
	}
	return &UnknownEvent{WebhookEnvelope: env}, true
}

// hookDecodeLenient decodes any JSON object: known shapes with wrong field
// types become an *UnknownEvent carrying the error.
func hookDecodeLenient(body []byte) (WebhookEvent, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWebhookMalformed, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: body is null, not a JSON object", ErrWebhookMalformed)
	}
	var ev interface {
		WebhookEvent
		json.Unmarshaler
	}
	switch {
	case hookHasKey(top["message"], "message"):
		ev = &MessageEvent{}
	case hookHasKey(top["action"], "reaction"):
		ev = &ReactionEvent{}
	case hookHasKey(top["action"], "typing"):
		ev = &TypingEvent{}
	}
	if ev != nil {
		err := ev.UnmarshalJSON(body)
		if err == nil {
			hookSetRaw(ev, body)
			return ev, nil
		}
		// A type mismatch in a known shape must not lose the message:
		// hand it over as unknown with the raw body.
		u := hookUnknown(top, body)
		u.Err = fmt.Errorf("%w: %s: %w", ErrWebhookMalformed, ev.Kind(), err)
		return u, nil
	}
	return hookUnknown(top, body), nil
}

func hookSetRaw(ev WebhookEvent, body []byte) {
	switch e := ev.(type) {
	case *MessageEvent:
		e.Raw = body
	case *TypingEvent:
		e.Raw = body
	case *ReactionEvent:
		e.Raw = body
	}
}

// hookHasKey reports whether obj is a JSON object with a non-null key.
func hookHasKey(obj json.RawMessage, key string) bool {
	if len(obj) == 0 || obj[0] != '{' {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return false
	}
	v, ok := m[key]
	return ok && !bytes.Equal(v, []byte("null"))
}

// hookUnknown reads account_id and time leniently (string or number).
func hookUnknown(top map[string]json.RawMessage, body []byte) *UnknownEvent {
	u := &UnknownEvent{WebhookEnvelope: WebhookEnvelope{Raw: body}}
	u.AccountID = hookScalar(top["account_id"])
	if n, err := strconv.ParseFloat(hookScalar(top["time"]), 64); err == nil && n > -1e15 && n < 1e15 {
		u.Time = int64(n)
	}
	return u
}

// hookScalar returns a JSON string's value or a JSON number's text, else "".
func hookScalar(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String()
	}
	return ""
}
