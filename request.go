package kommo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/go-querystring/query"
	"golang.org/x/oauth2"
)

// maxResponseBody caps how much of a successful response is read, unless
// the call sets a tighter cap for its endpoint.
const maxResponseBody = 16 << 20

// Response wraps the HTTP response of a call. Its body has been read and
// closed.
type Response struct {
	*http.Response
	// RequestID is the X-Request-Id header, when sent.
	RequestID string
	// Attempts is how many attempts the call took (1 without retries).
	Attempts int
	// Call names the call's operation, API and account.
	Call CallInfo

	// Paging of a CRM API v4 list (HAL): NextPage and PrevPage are the
	// "page" numbers of _links.next and _links.prev, 0 when the list has
	// no such page (NextPage is 0 on the last page); NextURL and PrevURL
	// are those links' hrefs as Kommo sent them. Pass NextPage as the
	// options' Page to fetch the next page.
	NextPage, PrevPage int
	NextURL, PrevURL   string
}

type apiKind uint8

const (
	chatAPI apiKind = iota
	crmAPI
)

// call describes one API call; body is marshalled once.
type call struct {
	// op names the operation after its service method ("Messages.Send"),
	// for logs, middleware and metrics.
	op string
	// scope is the Chat API scope id the call acts for ("" for channel-level
	// and CRM calls); with the CRM base domain it keys the account.
	scope  string
	api    apiKind
	method string
	path   string // relative to the base URL, escaped, no leading slash
	query  any    // go-querystring struct, url.Values, or nil
	body   any    // JSON-encoded once; []byte is sent as is; nil = no body
	out    any    // decoded from a 2xx body unless nil
	// maxBody caps a 2xx body at what the endpoint can legitimately return
	// (0: maxResponseBody).
	maxBody int64
}

// idempotent reports whether resending the call cannot make the server act
// twice (see RetryPolicy).
func (cl *call) idempotent() bool {
	switch cl.method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return cl.api == chatAPI
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encodeJSON marshals v with HTML escaping off and no trailing newline.
func encodeJSON(v any) ([]byte, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	out := make([]byte, len(b)-1)
	copy(out, b) // drop Encode's newline
	return out, nil
}

// do runs a call with retries, rate limiting, signing and authentication.
func (c *Client) do(ctx context.Context, cl *call) (resp *Response, err error) {
	if ctx == nil {
		return nil, errors.New("kommo: nil context")
	}
	ctx, observed := c.observeCall(ctx, cl)
	defer func() { observed(resp, err) }()
	var base *url.URL
	var limiter Limiter
	switch cl.api {
	case chatAPI:
		if c.signer == nil {
			return nil, ErrNoChannel
		}
		base, limiter = c.chatBase, c.chatLimiter
	case crmAPI:
		if c.crmBase == nil || c.tokens == nil {
			return nil, ErrNoCredentials
		}
		base, limiter = c.crmBase, c.crmLimiter
	}
	rel, err := url.Parse(cl.path)
	if err != nil {
		return nil, fmt.Errorf("kommo: bad path: %w", err)
	}
	u := base.ResolveReference(rel)
	switch q := cl.query.(type) {
	case nil:
	case url.Values:
		u.RawQuery = q.Encode()
	default:
		v, err := query.Values(q)
		if err != nil {
			return nil, fmt.Errorf("kommo: encode query: %w", err)
		}
		u.RawQuery = v.Encode()
	}
	var body []byte
	hasBody := cl.body != nil
	switch b := cl.body.(type) {
	case nil:
	case []byte:
		body = b
	case json.RawMessage:
		body = b
	default:
		if body, err = encodeJSON(b); err != nil {
			return nil, fmt.Errorf("kommo: encode %s %s body: %w", cl.method, u.Path, err)
		}
	}

	var lastErr error
	var limitKey string // the account's Limiter key, computed once
	if limiter != nil {
		limitKey = c.limitKey(cl)
	}
	attempt := 0
	for {
		attempt++
		limiterStart := c.observeNow(limiter != nil)
		if limiter != nil {
			if err := c.waitLimiter(ctx, limiter, limitKey, lastErr); err != nil {
				return nil, c.finalErr(cl.method, u, attempt-1, err)
			}
		}
		c.observeLimiter(ctx, limiterStart)
		resp, final, err := c.attempt(ctx, cl, u, body, hasBody, attempt)
		if err == nil {
			resp.Attempts = attempt
			return resp, nil
		}
		lastErr = err
		if final || ctx.Err() != nil || attempt >= c.retry.MaxAttempts {
			return nil, c.finalErr(cl.method, u, attempt, err)
		}
		d := c.retry.decide(RetryAttempt{Method: cl.method, Idempotent: cl.idempotent(), Attempt: attempt, Err: err})
		if !d.Retry {
			return nil, c.finalErr(cl.method, u, attempt, err)
		}
		wait := max(d.Wait, 0)
		tooLong := wait > c.retry.MaxRetryAfter && c.retry.MaxRetryAfter > 0
		if dl, ok := ctx.Deadline(); ok && c.clock.Now().Add(wait).After(dl) {
			tooLong = true
		}
		if tooLong {
			final := c.finalErr(cl.method, u, attempt, err)
			if errors.Is(err, ErrRateLimited) {
				return nil, &RateLimitError{RetryAfter: wait, Err: final}
			}
			return nil, fmt.Errorf("%w (no retry: waiting %s would pass the deadline or MaxRetryAfter)", final, wait)
		}
		observeRetry(ctx, d.Reason, wait)
		c.logger.LogAttrs(ctx, slog.LevelWarn, "kommo: retrying", append(callLogAttrs(ctx),
			slog.String("method", cl.method), slog.String("path", u.Path),
			slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.String("reason", d.Reason))...)
		if err := c.clock.Sleep(ctx, wait); err != nil {
			return nil, c.finalErr(cl.method, u, attempt, fmt.Errorf("%w (while waiting to retry after: %v)", err, lastErr))
		}
	}
}

// finalErr wraps err in a *RetryError when more than one attempt was made.
func (c *Client) finalErr(method string, u *url.URL, attempts int, err error) error {
	if attempts <= 1 {
		return err
	}
	return &RetryError{Method: method, URL: redactURL(u), Attempts: attempts, Err: err}
}

// waitLimiter waits for the limiter's leave to send a request for key,
// failing at once with a *RateLimitError when the wait cannot fit the
// context's deadline, and with a *StoreError when the limiter fails.
//
// It holds no reservation while it sleeps: it takes a token only when one
// is there now, else sleeps until the next one is due and looks again. A
// reservation made before sleeping would be spent when the sleep ends,
// however late: after a stall of the process (a GC pause, a throttled
// container, a loaded machine) every sleeper would send at once, a burst
// the server answers with 429s. Looking again lets one through per token.
func (c *Client) waitLimiter(ctx context.Context, l Limiter, key string, last error) error {
	for {
		now := c.clock.Now()
		d, err := l.Take(ctx, key, now)
		switch {
		case errors.Is(err, errLimiterNever):
			return &RateLimitError{Err: last}
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &StoreError{Store: "limiter", Op: "Take", Key: key, Err: err}
		case d <= 0:
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && now.Add(d).After(dl) {
			return &RateLimitError{RetryAfter: d, Err: last}
		}
		if err := c.clock.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// attempt sends one HTTP request and returns its outcome; whether to try
// again is RetryPolicy's decision. final marks an error no retry can help:
// the request could not be built, signed or authorised, or the call's
// context ended.
func (c *Client) attempt(ctx context.Context, cl *call, u *url.URL, body []byte, hasBody bool, n int) (resp *Response, final bool, err error) {
	actx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(actx, cl.method, u.String(), nil)
	if err != nil {
		return nil, true, fmt.Errorf("kommo: build request: %w", err)
	}
	if hasBody || cl.api == chatAPI {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
		if len(body) == 0 {
			req.Body = http.NoBody
		}
	}
	req.Header["User-Agent"] = []string{c.userAgent}
	req.Header["Accept"] = []string{"application/json"}
	switch cl.api {
	case chatAPI:
		// Signed here, right before each send: every attempt gets a fresh Date.
		if err := c.signer.Sign(req, body); err != nil {
			return nil, true, err
		}
	case crmAPI:
		var tok *oauth2.Token
		if cts, ok := c.tokens.(ContextTokenSource); ok {
			tok, err = cts.TokenContext(actx) // a refresh wait ends with the call
		} else {
			tok, err = c.tokens.Token()
		}
		if err != nil {
			return nil, true, fmt.Errorf("kommo: get access token: %w", err)
		}
		if tok == nil || tok.AccessToken == "" {
			return nil, true, fmt.Errorf("kommo: token source returned no access token: %w", ErrNoCredentials)
		}
		req.Header["Authorization"] = []string{"Bearer " + tok.AccessToken}
		if hasBody {
			req.Header["Content-Type"] = []string{ContentTypeJSON}
		}
	}

	start := time.Now()
	hresp, err := c.send(req)
	if err != nil {
		c.logAttempt(ctx, req, 0, n, start, err)
		if ctx.Err() != nil {
			return nil, true, fmt.Errorf("kommo: %s %s: %w", cl.method, redactURL(u), ctx.Err())
		}
		err = scrubURLError(err)
		return nil, false, fmt.Errorf("kommo: %s %s: %w", cl.method, redactURL(u), err)
	}
	failed := hresp.StatusCode < 200 || hresp.StatusCode > 299
	limit := cl.maxBody
	if limit <= 0 {
		limit = maxResponseBody
	}
	if failed {
		limit = maxErrorRead // only the start of an error page is kept
	}
	data, rerr := readBody(hresp.Body, limit)
	if errors.Is(rerr, errBodyTooLarge) && failed {
		rerr = nil
		// Read the rest of a long error page (up to a bound) so the
		// connection can be reused instead of closed.
		_, _ = io.CopyN(io.Discard, hresp.Body, maxErrorDrain)
	}
	hresp.Body.Close()
	hresp.Body = http.NoBody
	c.logAttempt(ctx, req, hresp.StatusCode, n, start, rerr)
	if rerr != nil {
		if ctx.Err() != nil {
			return nil, true, fmt.Errorf("kommo: %s %s: read response: %w", cl.method, redactURL(u), ctx.Err())
		}
		return nil, false, fmt.Errorf("kommo: %s %s: read response: %w", cl.method, redactURL(u), rerr)
	}
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		return nil, false, newAPIError(req, hresp, data, c.clock.Now())
	}
	r := &Response{Response: hresp, RequestID: hresp.Header.Get("X-Request-Id")}
	if cl.out != nil && hresp.StatusCode != http.StatusNoContent && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, cl.out); err != nil {
			// The server accepted the request: it is never sent again.
			return nil, false, &DecodeError{Method: cl.method, URL: redactURL(u), StatusCode: hresp.StatusCode,
				Body: capBody(data), Err: err}
		}
	}
	return r, false, nil
}

func (c *Client) logAttempt(ctx context.Context, req *http.Request, status, attempt int, start time.Time, err error) {
	level := slog.LevelDebug
	if err != nil || status >= 400 {
		level = slog.LevelInfo
	}
	if !c.logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", req.Method),
		slog.String("path", req.URL.Path),
		slog.Int("status", status),
		slog.Int("attempt", attempt),
		slog.Duration("duration", time.Since(start)),
	}
	attrs = append(attrs, callLogAttrs(ctx)...)
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.logger.LogAttrs(ctx, level, "kommo: request", attrs...)
}

var errBodyTooLarge = errors.New("kommo: response body too large")

// maxErrorRead bounds how much of an error response is kept.
const maxErrorRead = 64 << 10

// maxErrorDrain bounds how much more of a long error response is read and
// discarded so its connection can be reused; a longer one is closed.
const maxErrorDrain = 1 << 20

// readBody reads at most limit bytes into a fresh slice; a longer body
// returns its first limit bytes and errBodyTooLarge.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	var tooLarge error
	if n > limit {
		buf.Truncate(int(limit))
		tooLarge = errBodyTooLarge
	}
	out := make([]byte, buf.Len())
	copy(out, buf.Bytes())
	return out, tooLarge
}

// scrubURLError replaces the URL inside a *url.Error with its redacted form.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if pu, perr := url.Parse(ue.URL); perr == nil {
			ue.URL = redactURL(pu)
		}
	}
	return err
}
