package kommo

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"

	"golang.org/x/oauth2"
	"golang.org/x/time/rate"
)

// DefaultRateLimit is Kommo's documented request rate per account (spec:
// "no more than 7 requests per second"); exceeding it repeatedly gets the
// account blocked, so the client throttles itself by default.
const DefaultRateLimit = 7

// DefaultRequestTimeout bounds one attempt (connect, send, read the whole
// response) unless WithRequestTimeout says otherwise.
const DefaultRequestTimeout = 30 * time.Second

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
	crmLimiter, chatLimiter  Limiter
	logger                   *slog.Logger
	appName, appVersion      string
	appURL                   string
	clock                    Clock
	timeout                  *time.Duration
	middleware               []Middleware
	observer                 *Observer
}

// WithChannel sets the chat channel id and secret issued at channel
// registration. Every Chat API request is signed with the secret. The
// channel id (a UUID) must be usable as a path segment and free of "_",
// so that it forms a scope id (see NewScopeID).
func WithChannel(channelID, secret string) Option {
	return func(c *config) error {
		c.channelSet = true
		c.channelID, c.channelSecret = channelID, secret
		var errs []error
		if strings.TrimSpace(channelID) == "" {
			errs = append(errs, optionErr("WithChannel", "empty channel id"))
		} else if p := pathIDProblem(channelID); p != "" {
			errs = append(errs, optionErr("WithChannel", "channel id %s", p))
		} else if strings.Contains(channelID, "_") {
			errs = append(errs, optionErr("WithChannel", "channel id must not contain _, which separates it from the account id in a scope id"))
		}
		if secret == "" {
			errs = append(errs, &OptionError{Option: "WithChannel", Problem: "empty channel secret", Err: ErrEmptySecret})
		}
		return errors.Join(errs...)
	}
}

// WithBaseDomain sets the account's domain (e.g. "example.kommo.com", the
// OAuth "referer"); CRM API v4 calls go to https://{domain}/. What users
// paste is normalised to the bare host: surrounding spaces, an http:// or
// https:// scheme, one trailing slash and upper case are dropped
// ("  HTTPS://Example.Kommo.com/ " is "example.kommo.com"). What cannot be
// an account host is an *OptionError: a name without a dot ("example"), a
// path, a port, a query or fragment, user info, spaces or other characters
// that are not letters, digits, "-" or "." (use WithCRMBaseURL for a full
// URL, such as a proxy or a test server).
//
// An account on *.amocrm.ru also switches the Chat API host to
// ChatBaseURLAmoCRMRU, one on *.amocrm.com to ChatBaseURLAmoCRMCOM, unless
// WithChatBaseURL is given.
func WithBaseDomain(domain string) Option {
	return func(c *config) error {
		host, problem := normaliseBaseDomain(domain)
		if problem != "" {
			return optionErr("WithBaseDomain", "%s", problem)
		}
		c.baseDomain = host
		return nil
	}
}

// normaliseBaseDomain turns what a user pastes as an account domain into
// the bare lower-case host, or says why it cannot be one.
func normaliseBaseDomain(domain string) (host, problem string) {
	d := strings.TrimSpace(domain)
	if d == "" {
		return "", "empty domain"
	}
	notHost := func(why string) (string, string) {
		return "", fmt.Sprintf("%q is not an account host: %s", domain, why)
	}
	const fullURL = " (use WithCRMBaseURL for a full URL)"
	if i := strings.Index(d, "://"); i >= 0 {
		switch strings.ToLower(d[:i]) {
		case "https", "http":
			d = d[i+3:]
		default:
			return notHost(fmt.Sprintf("scheme %q is not http(s)", d[:i]))
		}
	}
	d = strings.ToLower(strings.TrimSuffix(d, "/"))
	switch {
	case d == "":
		return notHost("no host")
	case strings.ContainsFunc(d, unicode.IsSpace):
		return notHost("it contains spaces")
	case strings.Contains(d, "?"):
		return notHost("it has a query" + fullURL)
	case strings.Contains(d, "#"):
		return notHost("it has a fragment" + fullURL)
	case strings.ContainsAny(d, "/\\"):
		return notHost("it has a path" + fullURL)
	case strings.Contains(d, "@"):
		return notHost("it has user info" + fullURL)
	case strings.Contains(d, ":"):
		return notHost("it has a port" + fullURL)
	}
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return notHost(fmt.Sprintf("character %q is not allowed in a host name", r))
		}
	}
	if !strings.Contains(d, ".") {
		return notHost(`no dot (an account host looks like "example.kommo.com")`)
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" {
			return notHost("empty label (leading, trailing or double dot)")
		}
	}
	return d, ""
}

// WithAccessToken authenticates CRM calls with a fixed bearer token, such
// as a long-lived token of a private integration.
func WithAccessToken(token string) Option {
	return func(c *config) error {
		if strings.TrimSpace(token) == "" {
			return optionErr("WithAccessToken", "empty token")
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
			return optionErr("WithTokenSource", "nil token source")
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
			return optionWrap("WithChatBaseURL", err)
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
			return optionWrap("WithCRMBaseURL", err)
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
			return optionErr("WithHTTPClient", "nil client")
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
			return optionWrap("WithRetryPolicy", err)
		}
		c.retry = &p
		return nil
	}
}

// WithRateLimit sets the client-side request rate (requests per second) and
// burst of each account, applied to every attempt, separately for CRM and
// Chat API calls: the client's default MemoryLimiter keeps one bucket per
// account (see Limiter for the keys). The default is DefaultRateLimit with
// a burst of 1. rps 0 turns client-side limiting off.
func WithRateLimit(rps float64, burst int) Option {
	return func(c *config) error {
		if rps < 0 {
			return optionErr("WithRateLimit", "negative rate %v", rps)
		}
		if rps > 0 && burst < 1 {
			return optionErr("WithRateLimit", "burst %d must be at least 1", burst)
		}
		c.rps, c.burst = &rps, burst
		return nil
	}
}

// WithLimiter makes every call, CRM and Chat API, wait on l, keyed by
// account (see Limiter). Share one Limiter between the clients of a
// process, or use a shared store's (package kommoredis) across replicas,
// so that together they stay under each account's limit.
func WithLimiter(l Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return optionErr("WithLimiter", "nil limiter")
		}
		c.crmLimiter, c.chatLimiter = l, l
		return nil
	}
}

// WithCRMRateLimiter makes CRM calls wait on l, one bucket for every
// account, which may be shared by every client of the same account so that
// together they stay under Kommo's limit. For clients of many accounts use
// WithLimiter.
func WithCRMRateLimiter(l *rate.Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return optionErr("WithCRMRateLimiter", "nil limiter")
		}
		c.crmLimiter = sharedRateLimiter{l}
		return nil
	}
}

// WithChatRateLimiter makes Chat API calls wait on l, one bucket for every
// scope, which may be shared between clients. Kommo's limit is per account:
// the default per-scope limiter (WithRateLimit) or WithLimiter is usually
// what a client of many accounts wants.
func WithChatRateLimiter(l *rate.Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return optionErr("WithChatRateLimiter", "nil limiter")
		}
		c.chatLimiter = sharedRateLimiter{l}
		return nil
	}
}

// WithLogger logs every attempt (method, path, status, attempt, duration)
// at debug level and every retry at warn level. Bodies, tokens, secrets and
// signatures are never logged. The default discards logs.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return optionErr("WithLogger", "nil logger")
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
			return optionErr("WithAppInfo", "empty name")
		}
		if strings.ContainsAny(name+version+appURL, "\r\n") {
			return optionErr("WithAppInfo", "line breaks are not allowed")
		}
		c.appName, c.appVersion, c.appURL = name, version, appURL
		return nil
	}
}

// WithClock injects the time source used for Date headers and waits.
func WithClock(clk Clock) Option {
	return func(c *config) error {
		if clk == nil {
			return optionErr("WithClock", "nil clock")
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
			return optionErr("WithRequestTimeout", "negative duration %v", d)
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
				return optionErr("WithMiddleware", "nil middleware")
			}
		}
		c.middleware = append(c.middleware, mw...)
		return nil
	}
}

// WithObserver reports every call, HTTP attempt, rate limiter wait and
// delivery status report to o (see Observer); package kommootel provides
// one on OpenTelemetry. The last one given wins.
func WithObserver(o *Observer) Option {
	return func(c *config) error {
		if o == nil {
			return optionErr("WithObserver", "nil observer")
		}
		c.observer = o
		return nil
	}
}
