package kommo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. An *APIError matches the sentinel of its status code with
// errors.Is, so callers never compare status codes or error text:
//
//	if errors.Is(err, kommo.ErrNotFound) { ... }
var (
	ErrBadRequest          = errors.New("kommo: bad request")            // 400
	ErrUnauthorized        = errors.New("kommo: unauthorized")           // 401
	ErrPaymentRequired     = errors.New("kommo: payment required")       // 402
	ErrForbidden           = errors.New("kommo: forbidden")              // 403
	ErrNotFound            = errors.New("kommo: not found")              // 404
	ErrUnprocessableEntity = errors.New("kommo: unprocessable entity")   // 422
	ErrRateLimited         = errors.New("kommo: rate limited")           // 429, or a client-side wait that cannot fit the deadline
	ErrServer              = errors.New("kommo: server error")           // 5xx
	ErrTalkClosed          = errors.New("kommo: talk is already closed") // 422 from Talks.Close

	// ErrInvalidSignature is returned when a webhook's X-Signature is missing
	// or does not match the channel secret.
	ErrInvalidSignature = errors.New("kommo: invalid signature")

	// ErrNoChannel is returned by Chat API calls on a client built without
	// WithChannel.
	ErrNoChannel = errors.New("kommo: no channel configured (use WithChannel)")

	// ErrNoCredentials is returned by CRM API calls on a client built without
	// WithAccessToken or WithTokenSource, or without a CRM base URL.
	ErrNoCredentials = errors.New("kommo: no CRM credentials configured (use WithBaseDomain and WithAccessToken or WithTokenSource)")

	// ErrInvalidRequest is matched by every *ValidationError: a request the
	// SDK refused to send because it is incomplete or malformed.
	ErrInvalidRequest = errors.New("kommo: invalid request")
)

// maxErrorBody caps how much of an error response is kept in APIError.Body.
const maxErrorBody = 4 << 10

// APIError is returned for every non-2xx response. It carries the fields of
// the CRM API's problem+json body and of the Chat API's error body when they
// are present, and a capped copy of the raw body otherwise (a 429 may be an
// HTML page).
//
// Use errors.As to read it and errors.Is to match a sentinel:
//
//	var apiErr *kommo.APIError
//	if errors.As(err, &apiErr) { log.Println(apiErr.StatusCode, apiErr.Detail) }
type APIError struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// Method and URL identify the request. URL has credentials and sensitive
	// query values redacted.
	Method string
	URL    string
	// RequestID is the X-Request-Id response header, when sent.
	RequestID string

	// problem+json fields (CRM API v4).
	Title            string
	Type             string
	Detail           string
	ValidationErrors []RequestValidationErrors

	// Chat API error fields (their shape is not documented by Kommo; they
	// are filled when present).
	ErrorCode        int
	ErrorType        string
	ErrorDescription string

	// RetryAfter is the server's Retry-After, when sent (0 otherwise).
	RetryAfter time.Duration

	// Location is a redirect's target (3xx), with user info and query
	// removed: the SDK never follows redirects.
	Location string

	// Body is the raw response body, capped at 4 KiB.
	Body string

	// Response is the HTTP response; its body has already been read and
	// closed.
	Response *http.Response `json:"-"`

	// talkClosed is set by Talks.Close on its 422: the talk was closed.
	talkClosed bool
}

// RequestValidationErrors is one entry of a problem+json "validation-errors"
// (or "errors") list: the problems of the request item with RequestID.
type RequestValidationErrors struct {
	RequestID string       `json:"request_id"`
	Errors    []FieldError `json:"errors"`
}

// FieldError is one problem the CRM API found in a request field.
type FieldError struct {
	Code   string `json:"code"`
	Path   string `json:"path"`
	Detail string `json:"detail"`
}

// UnmarshalJSON accepts "errors" both as a list and as a single object (the
// batch-delete variant of the sources API).
func (v *RequestValidationErrors) UnmarshalJSON(b []byte) error {
	var raw struct {
		RequestID json.RawMessage `json:"request_id"`
		Errors    json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	v.RequestID = rawString(raw.RequestID)
	e := bytes.TrimSpace(raw.Errors)
	switch {
	case len(e) == 0 || bytes.Equal(e, []byte("null")):
	case e[0] == '[':
		return json.Unmarshal(e, &v.Errors)
	case e[0] == '{':
		var one FieldError
		if err := json.Unmarshal(e, &one); err != nil {
			return err
		}
		v.Errors = []FieldError{one}
	}
	return nil
}

// rawString reads a JSON string or number as text.
func rawString(b json.RawMessage) string {
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(b))
}

// Error describes the failure without secrets: method, redacted URL, status
// and the most specific message the server gave.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("kommo: ")
	if e.Method != "" {
		b.WriteString(e.Method)
		b.WriteByte(' ')
	}
	if e.URL != "" {
		b.WriteString(e.URL)
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	msg := e.Detail
	if msg == "" {
		msg = e.ErrorDescription
	}
	if msg == "" && e.Title != "" && e.Title != http.StatusText(e.StatusCode) {
		msg = e.Title
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	for _, ve := range e.ValidationErrors {
		for _, fe := range ve.Errors {
			fmt.Fprintf(&b, "; %s: %s", fe.Path, fe.Detail)
		}
	}
	return b.String()
}

// Is matches the sentinel for the status code (ErrBadRequest,
// ErrUnauthorized, ErrPaymentRequired, ErrForbidden, ErrNotFound,
// ErrUnprocessableEntity, ErrRateLimited, ErrServer) and ErrTalkClosed for a
// 422 from Talks.Close.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrPaymentRequired:
		return e.StatusCode == http.StatusPaymentRequired
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnprocessableEntity:
		return e.StatusCode == http.StatusUnprocessableEntity
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrServer:
		return e.StatusCode >= 500
	case ErrTalkClosed:
		return e.talkClosed
	}
	return false
}

// errorBody is the union of the documented error body shapes.
type errorBody struct {
	Title            string                    `json:"title"`
	Type             string                    `json:"type"`
	Detail           string                    `json:"detail"`
	ValidationErrors []RequestValidationErrors `json:"validation-errors"`
	Errors           []RequestValidationErrors `json:"errors"`
	ErrorCode        json.RawMessage           `json:"error_code"`
	ErrorType        string                    `json:"error_type"`
	ErrorDescription string                    `json:"error_description"`
}

// newAPIError builds an APIError from a response whose body has been read.
func newAPIError(req *http.Request, resp *http.Response, body []byte, now time.Time) *APIError {
	// A server may echo the request's credentials: keep them out of the
	// error, and out of the request it points back to.
	var secrets []string
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
		secrets = append(secrets, tok)
	}
	if sig := req.Header.Get("X-Signature"); sig != "" {
		secrets = append(secrets, sig)
	}
	body = []byte(oauthScrubString(string(body), secrets...))
	resp.Request = redactedRequest(req)
	e := &APIError{StatusCode: resp.StatusCode, Response: resp, Method: req.Method, URL: redactURL(req.URL)}
	e.RequestID = resp.Header.Get("X-Request-Id")
	e.RetryAfter, _ = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	if loc := resp.Header.Get("Location"); loc != "" {
		e.Location = redactedLocation(loc)
		resp.Header = resp.Header.Clone()
		resp.Header.Set("Location", e.Location)
	}
	e.Body = capBody(body)
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var eb errorBody
		if json.Unmarshal(trimmed, &eb) == nil {
			e.Title, e.Type, e.Detail = eb.Title, eb.Type, eb.Detail
			e.ValidationErrors = eb.ValidationErrors
			if len(e.ValidationErrors) == 0 {
				e.ValidationErrors = eb.Errors
			}
			if c := rawString(eb.ErrorCode); c != "" {
				e.ErrorCode, _ = strconv.Atoi(c)
			}
			e.ErrorType, e.ErrorDescription = eb.ErrorType, eb.ErrorDescription
		}
	}
	return e
}

// redactedLocation returns a Location header without user info, query or
// fragment (they may carry a token), or "[unparsable]".
func redactedLocation(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return "[unparsable]"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	return u.String()
}

// capBody returns the start of a raw body, at most maxErrorBody bytes.
func capBody(b []byte) string {
	if len(b) > maxErrorBody {
		b = b[:maxErrorBody]
	}
	return string(b)
}

// redactedRequest returns a shallow copy of req without its credentials
// (Authorization, X-Signature) and without its body, for APIError.Response.
func redactedRequest(req *http.Request) *http.Request {
	r := new(http.Request)
	*r = *req
	r.Header = req.Header.Clone()
	for _, h := range []string{"Authorization", "X-Signature"} {
		if r.Header.Get(h) != "" {
			r.Header.Set(h, "[redacted]")
		}
	}
	r.Body, r.GetBody = http.NoBody, nil
	return r
}

// maxRetryAfter bounds a parsed Retry-After, far above any sensible
// RetryPolicy.MaxRetryAfter, so that huge values cannot overflow.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After value in seconds or as an HTTP date.
// Values that are not finite non-negative numbers are ignored; longer ones
// are capped at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if math.IsNaN(n) || n < 0 {
			return 0, false
		}
		if n >= maxRetryAfter.Seconds() { // also +Inf
			return maxRetryAfter, true
		}
		return time.Duration(n * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		d = min(max(d, 0), maxRetryAfter)
		return d, true
	}
	return 0, false
}

// sensitiveQuery lists query parameters whose values never appear in errors
// or logs.
var sensitiveQuery = []string{"access_token", "refresh_token", "client_secret", "code", "token", "signature", "secret"}

// redactURL returns u as text without user info and with sensitive query
// values replaced.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		changed := false
		for _, k := range sensitiveQuery {
			if _, ok := q[k]; ok {
				q.Set(k, "REDACTED")
				changed = true
			}
		}
		if changed {
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
}

// ValidationError reports every problem found in a request before it was
// sent. It matches ErrInvalidRequest with errors.Is.
type ValidationError struct {
	// Op names the call, e.g. "Messages.Send".
	Op string
	// Problems lists each problem, e.g. "message.text: required for text messages".
	Problems []string
}

// Error lists every problem.
func (e *ValidationError) Error() string {
	return "kommo: " + e.Op + ": invalid request: " + strings.Join(e.Problems, "; ")
}

// Is matches ErrInvalidRequest.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidRequest }

// RateLimitError is returned when the SDK would have to wait longer than the
// context allows (or longer than RetryPolicy.MaxRetryAfter) for a rate limit
// to clear. It matches ErrRateLimited and wraps the server's *APIError when
// there was one.
type RateLimitError struct {
	// RetryAfter is how long the wait would have been.
	RetryAfter time.Duration
	// Err is the response that asked for the wait, if any.
	Err error
}

// Error describes the wait that was refused.
func (e *RateLimitError) Error() string {
	s := "kommo: rate limited: retry after " + e.RetryAfter.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is matches ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Unwrap returns the underlying error.
func (e *RateLimitError) Unwrap() error { return e.Err }

// RetryError is returned when every attempt the RetryPolicy allowed has
// failed. It wraps the last attempt's error, so errors.As still finds the
// last *APIError.
type RetryError struct {
	Method   string
	URL      string // redacted
	Attempts int
	Err      error
}

// Error says how many attempts were made and why the last one failed.
func (e *RetryError) Error() string {
	return fmt.Sprintf("kommo: %s %s: giving up after %d attempts: %v", e.Method, e.URL, e.Attempts, e.Err)
}

// Unwrap returns the last attempt's error.
func (e *RetryError) Unwrap() error { return e.Err }

// DecodeError is returned when a 2xx response's body cannot be decoded into
// the documented shape. The server accepted the request, so the SDK never
// sends it again: check the account (or History) before doing it yourself.
type DecodeError struct {
	Method     string
	URL        string // redacted
	StatusCode int
	// Body is the start of the raw body (at most 4 KiB).
	Body string
	Err  error
}

// Error describes the decoding failure.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("kommo: %s %s: the server accepted the request (%d) but its answer could not be decoded: %v", e.Method, e.URL, e.StatusCode, e.Err)
}

// Unwrap returns the JSON error.
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrEmptySecret is returned when a channel secret is required but empty.
var ErrEmptySecret = errors.New("kommo: empty channel secret")

// ErrInvalidOption is matched by every *OptionError.
var ErrInvalidOption = errors.New("kommo: invalid option")

// OptionError reports an option or constructor argument that cannot take
// the value it was given. NewClient, NewWebhookHandler and ParseWebhook
// report every such problem at once (errors.Join); errors.As finds each,
// and errors.Is matches ErrInvalidOption and, where there is one, a more
// specific sentinel such as ErrEmptySecret.
type OptionError struct {
	// Option names the option or argument, e.g. "WithChannel".
	Option string
	// Problem says what is wrong with its value.
	Problem string
	// Err is a more specific sentinel or cause, or nil.
	Err error
}

// Error returns "Option: Problem".
func (e *OptionError) Error() string { return e.Option + ": " + e.Problem }

// Is matches ErrInvalidOption.
func (e *OptionError) Is(target error) bool { return target == ErrInvalidOption }

// Unwrap returns Err.
func (e *OptionError) Unwrap() error { return e.Err }

// optionErr returns an *OptionError with a formatted problem.
func optionErr(option, format string, args ...any) *OptionError {
	return &OptionError{Option: option, Problem: fmt.Sprintf(format, args...)}
}

// optionWrap returns an *OptionError for a cause err.
func optionWrap(option string, err error) *OptionError {
	return &OptionError{Option: option, Problem: err.Error(), Err: err}
}

// ErrHistoryNoProgress is yielded by History.All when a page holds only
// messages it has already yielded: paging on would not end.
var ErrHistoryNoProgress = errors.New("kommo: history page has nothing new")

// ErrStoreUnavailable: a shared store the call depends on (a Limiter, an
// AccountTokenStore, a WebhookQueue) failed. It comes as a *StoreError.
var ErrStoreUnavailable = errors.New("kommo: store unavailable")

// StoreError is a failure of a store the SDK depends on: the limiter, the
// token store or the webhook queue. Calls fail with it at once instead of
// going ahead without the store (a request the limiter did not allow, a
// refresh without the account's lock). It matches ErrStoreUnavailable and
// wraps the store's error.
type StoreError struct {
	// Store names the store: "limiter", "token store" or "webhook queue".
	Store string
	// Op is the operation that failed ("Take", "Lock", "Enqueue", …).
	Op string
	// Key is the account or entry the operation was for.
	Key string
	// Err is the store's error.
	Err error
}

// Error names the store, the operation and its key.
func (e *StoreError) Error() string {
	s := "kommo: " + e.Store + " " + e.Op
	if e.Key != "" {
		s += " " + strconv.Quote(e.Key)
	}
	return s + ": " + e.Err.Error()
}

// Is matches ErrStoreUnavailable.
func (e *StoreError) Is(target error) bool { return target == ErrStoreUnavailable }

// Unwrap returns Err.
func (e *StoreError) Unwrap() error { return e.Err }

// Errors of the users, uninstall-hook, CRM-webhook, subdomain and Salesbot
// parts.
var (
	// ErrNoAmojoID is returned by Users.AmojoID for a user Kommo reports
	// without an amojo id (null).
	ErrNoAmojoID = errors.New("kommo: the user has no amojo id")

	// ErrInvalidJWT is matched by every error of a JWT the SDK refuses: a
	// Salesbot widget_request token that is malformed, not HS256, badly
	// signed, expired or not yet valid, or an access token whose claims
	// cannot be read.
	ErrInvalidJWT = errors.New("kommo: invalid JWT")

	// ErrNoAPIDomain is returned when an access token carries no
	// api_domain claim, so the account's subdomain cannot be looked up.
	ErrNoAPIDomain = errors.New("kommo: the access token has no api_domain claim")
)
