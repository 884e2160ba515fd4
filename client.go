package kommo

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-querystring/query"
	"golang.org/x/oauth2"
	"golang.org/x/time/rate"
)

// Version is the SDK version sent in the User-Agent header.
const Version = "0.1.0"

// Default hosts.
const (
	// DefaultChatBaseURL is the Chat API host for Kommo accounts.
	DefaultChatBaseURL = "https://amojo.kommo.com/"
	// ChatBaseURLAmoCRMRU is the Chat API host for accounts on *.amocrm.ru;
	// it is chosen automatically when WithBaseDomain names such an account.
	ChatBaseURLAmoCRMRU = "https://amojo.amocrm.ru/"
)

// DefaultRateLimit is Kommo's documented request rate per account (spec:
// "no more than 7 requests per second"); exceeding it repeatedly gets the
// account blocked, so the client throttles itself by default.
const DefaultRateLimit = 7

// DefaultRequestTimeout bounds one attempt (connect, send, read the whole
// response) unless WithRequestTimeout says otherwise.
const DefaultRequestTimeout = 30 * time.Second

// maxResponseBody caps how much of a successful response is read.
const maxResponseBody = 32 << 20

// Client talks to the Kommo Chat API (signed with the channel secret) and to
// the CRM API v4 (with an OAuth or long-lived bearer token). Build one with
// NewClient; it is safe for concurrent use and one client can serve every
// account the channel is connected to.
type Client struct {
	chatBase    *url.URL
	crmBase     *url.URL
	channelID   string
	signer      *Signer
	tokens      oauth2.TokenSource
	httpClient  *http.Client
	userAgent   string
	retry       RetryPolicy
	crmLimiter  *rate.Limiter
	chatLimiter *rate.Limiter
	logger      *slog.Logger
	clock       Clock
	timeout     time.Duration
	send        func(*http.Request) (*http.Response, error)

	common service

	// Channels connects and disconnects the channel to accounts (Chat API).
	Channels *ChannelsService
	// Chats creates chats (Chat API).
	Chats *ChatsService
	// Messages sends, imports and edits messages and sets delivery status,
	// typing and reactions (Chat API).
	Messages *MessagesService
	// History reads a chat's message history (Chat API).
	History *HistoryService
	// Talks reads and closes talks (CRM API v4).
	Talks *TalksService
	// ContactsChats links chats to contacts (CRM API v4).
	ContactsChats *ContactsChatsService
	// Sources manages the integration's lead sources (CRM API v4).
	Sources *SourcesService
	// Account reads the account, including its amojo id (CRM API v4).
	Account *AccountService
}

type service struct{ client *Client }

// ChannelsService handles /v2/origin/custom/{channel_id}/connect and /disconnect.
type ChannelsService service

// ChatsService handles /v2/origin/custom/{scope_id}/chats.
type ChatsService service

// MessagesService handles /v2/origin/custom/{scope_id} and the message
// endpoints below it.
type MessagesService service

// HistoryService handles /v2/origin/custom/{scope_id}/chats/{id}/history.
type HistoryService service

// TalksService handles /api/v4/talks.
type TalksService service

// ContactsChatsService handles /api/v4/contacts/chats.
type ContactsChatsService service

// SourcesService handles /api/v4/sources.
type SourcesService service

// AccountService handles /api/v4/account.
type AccountService service

// Clock supplies time to the client: Now for Date headers and Retry-After
// dates, Sleep for every wait (retry backoff, Retry-After, rate limiting).
// Tests inject one to observe waits without spending them.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done, returning ctx's error then.
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the Clock clients use by default: real time, and waits on
// a timer that stops when the context is done. Embed it in a Clock of your
// own to change only Now.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits for d, or until ctx is done (returning ctx's error).
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Middleware wraps every HTTP attempt. It sees the request after signing and
// authentication (so it must not change what is signed: method, path, body,
// Date, Content-MD5) and the response before the SDK reads it. Use it for
// metrics, tracing or test spying. Call next to continue the chain.
type Middleware func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error)

// Option configures a Client. Options are collected first and the client
// is built from all of them at once, so no option depends on another coming
// before it; when two options set the same thing (WithAccessToken and
// WithTokenSource, say), the last one wins. NewClient reports every bad
// option at once.
type Option func(*config) error

type config struct {
	channelID, channelSecret string
	channelSet               bool
	baseDomain               string
	chatBase, crmBase        string
	tokens                   oauth2.TokenSource
	httpClient               *http.Client
	retry                    *RetryPolicy
	rps                      *float64
	burst                    int
	crmLimiter, chatLimiter  *rate.Limiter
	logger                   *slog.Logger
	appName, appVersion      string
	appURL                   string
	clock                    Clock
	timeout                  *time.Duration
	middleware               []Middleware
}

// WithChannel sets the chat channel id and secret issued at channel
// registration. Every Chat API request is signed with the secret.
func WithChannel(channelID, secret string) Option {
	return func(c *config) error {
		c.channelSet = true
		c.channelID, c.channelSecret = channelID, secret
		var errs []error
		if strings.TrimSpace(channelID) == "" {
			errs = append(errs, errors.New("WithChannel: empty channel id"))
		}
		if secret == "" {
			errs = append(errs, errors.New("WithChannel: empty channel secret"))
		}
		return errors.Join(errs...)
	}
}

// WithBaseDomain sets the account's domain (e.g. "example.kommo.com", the
// OAuth "referer"); CRM API v4 calls go to https://{domain}/. An account on
// *.amocrm.ru also switches the Chat API host to amojo.amocrm.ru unless
// WithChatBaseURL is given.
func WithBaseDomain(domain string) Option {
	return func(c *config) error {
		d := strings.TrimSpace(domain)
		if d == "" || strings.ContainsAny(d, "/:?#@ ") {
			return fmt.Errorf("WithBaseDomain: %q is not a host name (use WithCRMBaseURL for a full URL)", domain)
		}
		c.baseDomain = strings.ToLower(d)
		return nil
	}
}

// WithAccessToken authenticates CRM calls with a fixed bearer token, such
// as a long-lived token of a private integration.
func WithAccessToken(token string) Option {
	return func(c *config) error {
		if strings.TrimSpace(token) == "" {
			return errors.New("WithAccessToken: empty token")
		}
		c.tokens = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "Bearer"})
		return nil
	}
}

// WithTokenSource authenticates CRM calls with tokens from ts, which is
// asked before every attempt (see NewTokenSource for one that refreshes and
// persists Kommo's single-use refresh tokens).
func WithTokenSource(ts oauth2.TokenSource) Option {
	return func(c *config) error {
		if ts == nil {
			return errors.New("WithTokenSource: nil token source")
		}
		c.tokens = ts
		return nil
	}
}

// WithChatBaseURL overrides the Chat API host (default
// https://amojo.kommo.com/), for amoCRM hosts, proxies and tests.
func WithChatBaseURL(u string) Option {
	return func(c *config) error {
		if _, err := parseBaseURL(u); err != nil {
			return fmt.Errorf("WithChatBaseURL: %w", err)
		}
		c.chatBase = u
		return nil
	}
}

// WithCRMBaseURL overrides the CRM API v4 base URL (default
// https://{base domain}/), for proxies and tests.
func WithCRMBaseURL(u string) Option {
	return func(c *config) error {
		if _, err := parseBaseURL(u); err != nil {
			return fmt.Errorf("WithCRMBaseURL: %w", err)
		}
		c.crmBase = u
		return nil
	}
}

// WithHTTPClient sets the HTTP client used for every request. Its Timeout,
// if any, bounds each attempt; prefer WithRequestTimeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("WithHTTPClient: nil client")
		}
		c.httpClient = hc
		return nil
	}
}

// WithRetryPolicy replaces DefaultRetryPolicy. Use NoRetries() to turn
// retries off.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *config) error {
		if err := p.validate(); err != nil {
			return fmt.Errorf("WithRetryPolicy: %w", err)
		}
		c.retry = &p
		return nil
	}
}

// WithRateLimit sets the client-side request rate (requests per second) and
// burst, applied to every attempt, separately for CRM and Chat API calls.
// The default is DefaultRateLimit with a burst of 1. rps 0 turns client-side
// limiting off.
func WithRateLimit(rps float64, burst int) Option {
	return func(c *config) error {
		if rps < 0 {
			return fmt.Errorf("WithRateLimit: negative rate %v", rps)
		}
		if rps > 0 && burst < 1 {
			return fmt.Errorf("WithRateLimit: burst %d must be at least 1", burst)
		}
		c.rps, c.burst = &rps, burst
		return nil
	}
}

// WithRateLimiter makes CRM calls wait on l, which may be shared by every
// client of the same account so that together they stay under Kommo's
// limit.
func WithRateLimiter(l *rate.Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("WithRateLimiter: nil limiter")
		}
		c.crmLimiter = l
		return nil
	}
}

// WithChatRateLimiter makes Chat API calls wait on l, which may be shared
// between clients.
func WithChatRateLimiter(l *rate.Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("WithChatRateLimiter: nil limiter")
		}
		c.chatLimiter = l
		return nil
	}
}

// WithLogger logs every attempt (method, path, status, attempt, duration)
// at debug level and every retry at warn level. Bodies, tokens, secrets and
// signatures are never logged. The default discards logs.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithAppInfo appends "name/version (+url)" to the User-Agent header so
// Kommo can tell integrations apart.
func WithAppInfo(name, version, appURL string) Option {
	return func(c *config) error {
		if strings.TrimSpace(name) == "" {
			return errors.New("WithAppInfo: empty name")
		}
		if strings.ContainsAny(name+version+appURL, "\r\n") {
			return errors.New("WithAppInfo: line breaks are not allowed")
		}
		c.appName, c.appVersion, c.appURL = name, version, appURL
		return nil
	}
}

// WithClock injects the time source used for Date headers and waits.
func WithClock(clk Clock) Option {
	return func(c *config) error {
		if clk == nil {
			return errors.New("WithClock: nil clock")
		}
		c.clock = clk
		return nil
	}
}

// WithRequestTimeout bounds each attempt (default DefaultRequestTimeout);
// the context passed to a call bounds all attempts together. 0 means no
// per-attempt limit.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithRequestTimeout: negative duration %v", d)
		}
		c.timeout = &d
		return nil
	}
}

// WithMiddleware adds middleware around every HTTP attempt; the first one
// given is the outermost.
func WithMiddleware(mw ...Middleware) Option {
	return func(c *config) error {
		for _, m := range mw {
			if m == nil {
				return errors.New("WithMiddleware: nil middleware")
			}
		}
		c.middleware = append(c.middleware, mw...)
		return nil
	}
}

// NewClient builds a Client. Give WithChannel for the Chat API and
// WithBaseDomain plus WithAccessToken or WithTokenSource for the CRM API;
// a client may have either or both. Every invalid option is reported in
// one joined error.
func NewClient(opts ...Option) (*Client, error) {
	var cfg config
	var errs []error
	for _, o := range opts {
		if o == nil {
			errs = append(errs, errors.New("nil option"))
			continue
		}
		if err := o(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.rps != nil && *cfg.rps > 0 && cfg.crmLimiter != nil && cfg.chatLimiter != nil {
		errs = append(errs, errors.New("WithRateLimit has no effect with both WithRateLimiter and WithChatRateLimiter"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("kommo: invalid options: %w", errors.Join(errs...))
	}

	c := &Client{
		channelID:  cfg.channelID,
		tokens:     cfg.tokens,
		httpClient: cfg.httpClient,
		retry:      DefaultRetryPolicy(),
		logger:     cfg.logger,
		clock:      cfg.clock,
		timeout:    DefaultRequestTimeout,
	}
	if c.httpClient == nil {
		c.httpClient = &http.Client{}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.clock == nil {
		c.clock = SystemClock{}
	}
	if cfg.retry != nil {
		c.retry = *cfg.retry
	}
	if cfg.timeout != nil {
		c.timeout = *cfg.timeout
	}
	if cfg.channelSet {
		c.signer = NewSigner(cfg.channelSecret, WithSignerClock(c.clock.Now))
	}

	chat := cfg.chatBase
	if chat == "" {
		chat = DefaultChatBaseURL
		if strings.HasSuffix(cfg.baseDomain, ".amocrm.ru") {
			chat = ChatBaseURLAmoCRMRU
		}
	}
	c.chatBase, _ = parseBaseURL(chat)
	switch {
	case cfg.crmBase != "":
		c.crmBase, _ = parseBaseURL(cfg.crmBase)
	case cfg.baseDomain != "":
		c.crmBase, _ = parseBaseURL("https://" + cfg.baseDomain + "/")
	}

	rps, burst := float64(DefaultRateLimit), 1
	if cfg.rps != nil {
		rps, burst = *cfg.rps, cfg.burst
	}
	newLimiter := func() *rate.Limiter {
		if rps == 0 {
			return nil
		}
		return rate.NewLimiter(rate.Limit(rps), burst)
	}
	c.crmLimiter, c.chatLimiter = cfg.crmLimiter, cfg.chatLimiter
	if c.crmLimiter == nil {
		c.crmLimiter = newLimiter()
	}
	if c.chatLimiter == nil {
		c.chatLimiter = newLimiter()
	}

	ua := "kommo-go/" + Version + " (" + runtime.Version() + ")"
	if cfg.appName != "" {
		ua += " " + cfg.appName
		if cfg.appVersion != "" {
			ua += "/" + cfg.appVersion
		}
		if cfg.appURL != "" {
			ua += " (+" + cfg.appURL + ")"
		}
	}
	c.userAgent = ua

	c.send = c.httpClient.Do
	for i := len(cfg.middleware) - 1; i >= 0; i-- {
		mw, next := cfg.middleware[i], c.send
		c.send = func(r *http.Request) (*http.Response, error) { return mw(r, next) }
	}

	c.common.client = c
	c.Channels = (*ChannelsService)(&c.common)
	c.Chats = (*ChatsService)(&c.common)
	c.Messages = (*MessagesService)(&c.common)
	c.History = (*HistoryService)(&c.common)
	c.Talks = (*TalksService)(&c.common)
	c.ContactsChats = (*ContactsChatsService)(&c.common)
	c.Sources = (*SourcesService)(&c.common)
	c.Account = (*AccountService)(&c.common)
	return c, nil
}

func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("URL %q must be absolute http(s)", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("URL %q must not have a query or fragment", s)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

// ChannelID returns the channel id given to WithChannel ("" without one).
func (c *Client) ChannelID() string { return c.channelID }

// ChatBaseURL returns the Chat API base URL in use.
func (c *Client) ChatBaseURL() string { return c.chatBase.String() }

// CRMBaseURL returns the CRM API base URL in use ("" without one).
func (c *Client) CRMBaseURL() string {
	if c.crmBase == nil {
		return ""
	}
	return c.crmBase.String()
}

// UserAgent returns the User-Agent header the client sends.
func (c *Client) UserAgent() string { return c.userAgent }

// String never shows secrets.
func (c *Client) String() string {
	return fmt.Sprintf("kommo.Client{chat:%s crm:%s channel:%s}", c.ChatBaseURL(), c.CRMBaseURL(), c.channelID)
}

// LogValue logs the client's hosts and channel id, never its secrets.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("chat", c.ChatBaseURL()), slog.String("crm", c.CRMBaseURL()), slog.String("channel", c.channelID))
}

// ScopeID builds the scope id of a channel connected to an account:
// "{channelID}_{accountAmojoID}". Channels.Connect also returns it.
func ScopeID(channelID, accountAmojoID string) string {
	return channelID + "_" + accountAmojoID
}

// Response wraps the HTTP response of a call. Its body has been read and
// closed.
type Response struct {
	*http.Response
	// RequestID is the X-Request-Id header, when sent.
	RequestID string
	// Attempts is how many attempts the call took (1 without retries).
	Attempts int
}

type apiKind uint8

const (
	chatAPI apiKind = iota
	crmAPI
)

// call describes one API call; body is marshalled once.
type call struct {
	api    apiKind
	method string
	path   string // relative to the base URL, escaped, no leading slash
	query  any    // go-querystring struct, url.Values, or nil
	body   any    // JSON-encoded once; []byte is sent as is; nil = no body
	out    any    // decoded from a 2xx body unless nil
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
func (c *Client) do(ctx context.Context, cl *call) (*Response, error) {
	if ctx == nil {
		return nil, errors.New("kommo: nil context")
	}
	var base *url.URL
	var limiter *rate.Limiter
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
	attempt := 0
	for {
		attempt++
		if limiter != nil {
			if err := c.waitLimiter(ctx, limiter, lastErr); err != nil {
				return nil, c.finalErr(cl.method, u, attempt-1, err)
			}
		}
		resp, retry, wait, err := c.attempt(ctx, cl, u, body, hasBody, attempt)
		if err == nil {
			resp.Attempts = attempt
			return resp, nil
		}
		lastErr = err
		if !retry || attempt >= c.retry.MaxAttempts || ctx.Err() != nil {
			return nil, c.finalErr(cl.method, u, attempt, err)
		}
		if wait > c.retry.MaxRetryAfter && c.retry.MaxRetryAfter > 0 {
			return nil, &RateLimitError{RetryAfter: wait, Err: c.finalErr(cl.method, u, attempt, err)}
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
			return nil, &RateLimitError{RetryAfter: wait, Err: c.finalErr(cl.method, u, attempt, err)}
		}
		c.logger.LogAttrs(ctx, slog.LevelWarn, "kommo: retrying",
			slog.String("method", cl.method), slog.String("path", u.Path),
			slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.String("reason", retryReason(err)))
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

// waitLimiter waits for a limiter token, failing at once with a
// *RateLimitError when the wait cannot fit the context's deadline.
func (c *Client) waitLimiter(ctx context.Context, l *rate.Limiter, last error) error {
	r := l.Reserve()
	if !r.OK() {
		return &RateLimitError{Err: last}
	}
	d := r.Delay()
	if d <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Now().Add(d).After(dl) {
		r.Cancel()
		return &RateLimitError{RetryAfter: d, Err: last}
	}
	if err := (SystemClock{}).Sleep(ctx, d); err != nil {
		r.Cancel()
		return err
	}
	return nil
}

func retryReason(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return strconv.Itoa(ae.StatusCode)
	}
	var de *DecodeError
	if errors.As(err, &de) {
		return "malformed response body"
	}
	return "transport error"
}

// attempt sends one HTTP request. It returns whether a failure may be
// retried and how long to wait first.
func (c *Client) attempt(ctx context.Context, cl *call, u *url.URL, body []byte, hasBody bool, n int) (resp *Response, retry bool, wait time.Duration, err error) {
	actx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(actx, cl.method, u.String(), nil)
	if err != nil {
		return nil, false, 0, fmt.Errorf("kommo: build request: %w", err)
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
			return nil, false, 0, err
		}
	case crmAPI:
		tok, err := c.tokens.Token()
		if err != nil {
			return nil, false, 0, fmt.Errorf("kommo: get access token: %w", err)
		}
		if tok == nil || tok.AccessToken == "" {
			return nil, false, 0, fmt.Errorf("kommo: token source returned no access token: %w", ErrNoCredentials)
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
			return nil, false, 0, fmt.Errorf("kommo: %s %s: %w", cl.method, redactURL(u), ctx.Err())
		}
		err = scrubURLError(err)
		return nil, retryableTransport(err), c.retry.backoff(n), fmt.Errorf("kommo: %s %s: %w", cl.method, redactURL(u), err)
	}
	limit := int64(maxResponseBody)
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		limit = maxErrorRead // a bounded drain: only the start of an error page is kept
	}
	data, rerr := readBody(hresp.Body, limit)
	if errors.Is(rerr, errBodyTooLarge) && limit == maxErrorRead {
		rerr = nil
	}
	hresp.Body.Close()
	hresp.Body = http.NoBody
	c.logAttempt(ctx, req, hresp.StatusCode, n, start, rerr)
	if rerr != nil {
		if ctx.Err() != nil {
			return nil, false, 0, fmt.Errorf("kommo: %s %s: read response: %w", cl.method, redactURL(u), ctx.Err())
		}
		return nil, !errors.Is(rerr, errBodyTooLarge), c.retry.backoff(n), fmt.Errorf("kommo: %s %s: read response: %w", cl.method, redactURL(u), rerr)
	}
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		ae := newAPIError(req, hresp, data, c.clock.Now())
		if !c.retry.retryStatus(hresp.StatusCode) {
			return nil, false, 0, ae
		}
		wait = c.retry.backoff(n)
		if ae.RetryAfter > 0 {
			wait = ae.RetryAfter
		}
		return nil, true, wait, ae
	}
	r := &Response{Response: hresp, RequestID: hresp.Header.Get("X-Request-Id")}
	if cl.out != nil && hresp.StatusCode != http.StatusNoContent && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, cl.out); err != nil {
			de := &DecodeError{Method: cl.method, URL: redactURL(u), StatusCode: hresp.StatusCode, Err: err}
			// A body that is not JSON at all was cut short or garbled in
			// transit: try again. Valid JSON of the wrong shape will not
			// improve.
			return nil, !json.Valid(data), c.retry.backoff(n), de
		}
	}
	return r, false, 0, nil
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
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.logger.LogAttrs(ctx, level, "kommo: request", attrs...)
}

var errBodyTooLarge = errors.New("kommo: response body too large")

// maxErrorRead bounds how much of an error response is read before the body
// is closed.
const maxErrorRead = 64 << 10

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

// retryableTransport reports whether a transport failure may succeed on a
// new attempt. Certificate problems, redirect loops and bad schemes will not.
func retryableTransport(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return false
	case errors.Is(err, errBodyTooLarge):
		return false
	}
	msg := err.Error()
	if strings.Contains(msg, "stopped after") && strings.Contains(msg, "redirects") {
		return false
	}
	if strings.Contains(msg, "unsupported protocol scheme") {
		return false
	}
	return true
}

// DecodeError is returned when a successful response's body cannot be
// decoded into the documented shape.
type DecodeError struct {
	Method     string
	URL        string // redacted
	StatusCode int
	Err        error
}

// Error describes the decoding failure.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("kommo: %s %s: decode %d response: %v", e.Method, e.URL, e.StatusCode, e.Err)
}

// Unwrap returns the JSON error.
func (e *DecodeError) Unwrap() error { return e.Err }

// RetryPolicy says which failures are retried and how long to wait.
// Transport errors, malformed response bodies and the statuses 408, 429,
// 500, 502, 503 and 504 are retried; 400, 401, 402, 403, 404 and 422 never
// are. A Retry-After header (seconds or HTTP date) replaces the computed
// backoff. Every wait stops when the call's context is done, and a wait that
// would pass the context's deadline (or MaxRetryAfter) ends the call at once
// with a *RateLimitError.
//
// Chat API requests are signed again for every attempt (fresh Date) from the
// same body bytes, so a retried message send carries the same msgid.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts including the first (1 = no retries).
	MaxAttempts int
	// BaseBackoff is the wait before the second attempt; it doubles for each
	// further attempt up to MaxBackoff.
	BaseBackoff time.Duration
	// MaxBackoff caps the computed backoff.
	MaxBackoff time.Duration
	// MaxRetryAfter caps how long the client will honour a Retry-After; a
	// longer one ends the call with a *RateLimitError. 0 means no cap.
	MaxRetryAfter time.Duration
	// Jitter is the fraction (0 to 1) of each backoff that is randomly
	// removed, so clients do not retry in lockstep.
	Jitter float64
}

// DefaultRetryPolicy returns the policy clients use unless WithRetryPolicy
// says otherwise: 4 attempts, 1 s base backoff doubling to 30 s with 25 %
// jitter, Retry-After honoured up to 60 s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 4, BaseBackoff: time.Second, MaxBackoff: 30 * time.Second, MaxRetryAfter: time.Minute, Jitter: 0.25}
}

// NoRetries returns a policy that makes exactly one attempt.
func NoRetries() RetryPolicy {
	p := DefaultRetryPolicy()
	p.MaxAttempts = 1
	return p
}

func (p RetryPolicy) validate() error {
	var errs []error
	if p.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("MaxAttempts %d must be at least 1", p.MaxAttempts))
	}
	if p.BaseBackoff < 0 || p.MaxBackoff < 0 || p.MaxRetryAfter < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if p.MaxBackoff < p.BaseBackoff {
		errs = append(errs, errors.New("MaxBackoff must not be below BaseBackoff"))
	}
	if p.Jitter < 0 || p.Jitter > 1 {
		errs = append(errs, fmt.Errorf("jitter %v must be within [0, 1]", p.Jitter))
	}
	return errors.Join(errs...)
}

func (p RetryPolicy) retryStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff returns the wait after the n-th failed attempt.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.BaseBackoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	if p.Jitter > 0 && d > 0 {
		d -= time.Duration(rand.Float64() * p.Jitter * float64(d))
	}
	return d
}
