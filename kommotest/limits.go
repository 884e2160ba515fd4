package kommotest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Per-key rate limits: Kommo limits each account on its own, so a fake
// serving many accounts limits each of them on its own too. A request is
// counted against the key the SDK's kommo.Limiter uses for it:
//
//   - "chat:<id>" for a Chat API request, id being the path segment after
//     /v2/origin/custom/ (the scope id, or the channel id of connect and
//     disconnect), under WithScopeRateLimit;
//   - "crm:<host>" for a CRM API request (/api/v4/…), host being the
//     request's Host header (an account's domain, "example.kommo.com",
//     when the client reaches the server through RoutingClient), under
//     WithAccountRateLimit.
//
// The OAuth token endpoint is not limited. Both limits run on real time,
// not on WithClock, like WithRateLimit, and apply after any queued fault
// and after WithRateLimit's server-wide bucket.

// RateLimitCount is what a per-key rate limit saw for one key.
type RateLimitCount struct {
	// Requests is how many requests were counted against the key,
	// answered or refused.
	Requests int
	// Limited is how many of them were answered 429 Too Many Requests.
	Limited int
}

// keyLimits holds the per-key limits' settings, buckets and counters. It
// has its own lock, so that limiting never waits on the server state.
type keyLimits struct {
	mu           sync.Mutex
	scopeRPS     rate.Limit // 0: off
	scopeBurst   int
	accountRPS   rate.Limit // 0: off
	accountBurst int
	buckets      map[string]*rate.Limiter
	counts       map[string]*RateLimitCount
}

// WithScopeRateLimit limits each scope of the Chat API on its own: once
// the requests of one scope exceed rps per second with the given burst (a
// token bucket per scope id, keyed "chat:<scope id>"; connect and
// disconnect count against "chat:<channel id>"), the server answers 429
// Too Many Requests in the Chat API's error shape
// ({"error_code":429,"error_type":"rate_limit",…}) with a Retry-After
// header in whole seconds. Other scopes are not affected. rps 0 turns the
// limit off; a negative rate or a burst below 1 with a positive rate is an
// error. RateLimitCounts reports what each scope sent.
func WithScopeRateLimit(rps float64, burst int) Option {
	return func(s *Server) error {
		l, err := keyLimitArgs("WithScopeRateLimit", rps, burst)
		if err != nil {
			return err
		}
		s.keyLimits.scopeRPS, s.keyLimits.scopeBurst = l, burst
		return nil
	}
}

// WithAccountRateLimit limits each account of the CRM API on its own: the
// account is the request's Host header (Kommo's accounts are subdomains;
// see RoutingClient), its key "crm:<host>". Once one account's requests to
// /api/v4/ exceed rps per second with the given burst, the server answers
// 429 Too Many Requests in the CRM API's error shape (problem+json) with a
// Retry-After header in whole seconds. The OAuth token endpoint is not
// limited. rps 0 turns the limit off; a negative rate or a burst below 1
// with a positive rate is an error.
func WithAccountRateLimit(rps float64, burst int) Option {
	return func(s *Server) error {
		l, err := keyLimitArgs("WithAccountRateLimit", rps, burst)
		if err != nil {
			return err
		}
		s.keyLimits.accountRPS, s.keyLimits.accountBurst = l, burst
		return nil
	}
}

func keyLimitArgs(op string, rps float64, burst int) (rate.Limit, error) {
	switch {
	case !(rps >= 0) || rps > 1e9:
		return 0, fmt.Errorf("%s: rate must not be negative, got %v", op, rps)
	case rps > 0 && burst < 1:
		return 0, fmt.Errorf("%s: burst %d must be at least 1", op, burst)
	}
	return rate.Limit(rps), nil
}

// RateLimitCounts returns, for every key a per-key limit has seen
// ("chat:<scope id>", "crm:<host>"), how many requests it counted and
// how many it answered 429. It is empty without WithScopeRateLimit and
// WithAccountRateLimit.
func (s *Server) RateLimitCounts() map[string]RateLimitCount {
	k := &s.keyLimits
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]RateLimitCount, len(k.counts))
	for key, c := range k.counts {
		out[key] = *c
	}
	return out
}

// RateLimited returns the keys that were answered 429 at least once, in
// order.
func (s *Server) RateLimited() []string {
	var keys []string
	for key, c := range s.RateLimitCounts() {
		if c.Limited > 0 {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	return keys
}

// limitKey returns the key of r under the per-key limits and the limit
// that applies ("" when none does).
// reset drops every bucket and count (Server.Reset).
func (k *keyLimits) reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.buckets, k.counts = nil, nil
}

func (k *keyLimits) limitKey(r *http.Request) (string, rate.Limit, int) {
	p := r.URL.Path
	switch {
	case k.scopeRPS > 0 && isChatPath(p):
		id, _, _ := strings.Cut(strings.TrimPrefix(p, "/v2/origin/custom/"), "/")
		return "chat:" + id, k.scopeRPS, k.scopeBurst
	case k.accountRPS > 0 && strings.HasPrefix(p, "/api/v4/"):
		return "crm:" + requestHost(r), k.accountRPS, k.accountBurst
	}
	return "", 0, 0
}

// take counts r against its key and reports how long until its bucket
// has a token when it has none now (0: the request may go on).
func (k *keyLimits) take(r *http.Request) time.Duration {
	key, l, burst := k.limitKey(r)
	if key == "" {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.buckets == nil {
		k.buckets, k.counts = map[string]*rate.Limiter{}, map[string]*RateLimitCount{}
	}
	b := k.buckets[key]
	if b == nil {
		b = rate.NewLimiter(l, burst)
		k.buckets[key] = b
		k.counts[key] = &RateLimitCount{}
	}
	c := k.counts[key]
	c.Requests++
	res := b.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		c.Limited++
		return d
	}
	return 0
}

// limitedByKey answers 429 when r's key is over its limit and reports
// whether it did.
func (s *Server) limitedByKey(w http.ResponseWriter, r *http.Request, seq uint64) bool {
	d := s.keyLimits.take(r)
	if d <= 0 {
		return false
	}
	s.setFault(seq, "rate_limit")
	s.writeRateLimited(w, r, d)
	return true
}

// requestHost is r's Host header in lower case: the account a CRM or
// token request is for.
func requestHost(r *http.Request) string { return strings.ToLower(r.Host) }

// RoutingClient returns an *http.Client that sends every request to the
// server, whatever its URL's scheme and host, with that host as the Host
// header. Clients of many accounts then reach the one fake under their
// own domains, and the server tells the accounts apart by Host (see
// WithAccountRateLimit and IssueTokensFor):
//
//	hc := srv.RoutingClient()
//	client, err := kommo.NewClient(kommo.WithBaseDomain("a.kommo.com"), kommo.WithHTTPClient(hc), …)
//	cfg := &kommo.OAuthConfig{…, HTTPClient: hc} // https://a.kommo.com/oauth2/access_token reaches the fake
//
// Its connections (up to 256 idle ones kept) are closed with the server.
func (s *Server) RoutingClient() *http.Client {
	s.routeOnce.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
		s.routeTransport = t
	})
	var next http.RoundTripper = s.routeTransport
	if s.routeTransport == nil { // asked after Close: requests fail to connect
		next = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &http.Client{Transport: RoutingTransport(s.ts.Listener.Addr().String(), next)}
}

// RoutingTransport sends every request over next to the fake listening at
// addr ("127.0.0.1:PORT") over plain HTTP, whatever its URL's scheme and
// host, keeping that host in the Host header, as RoutingClient does: for a
// process that has the fake's address but not the Server (a helper
// process, another replica).
func RoutingTransport(addr string, next http.RoundTripper) http.RoundTripper {
	return routeTransport{addr: addr, next: next}
}

// routeTransport implements RoutingTransport.
type routeTransport struct {
	addr string
	next http.RoundTripper
}

func (t routeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	if out.Host == "" {
		out.Host = r.URL.Host
	}
	out.URL.Scheme, out.URL.Host = "http", t.addr
	return t.next.RoundTrip(out)
}
