package kommotest

import (
	"time"

	"github.com/kommo-go/kommo"
	"golang.org/x/time/rate"
)

// Option configures a Server.
type Option func(*Server)

// WithChannel sets the channel id and secret the server expects Chat API
// requests to be signed with (default DefaultChannelID, DefaultChannelSecret).
// Empty values keep the defaults.
func WithChannel(id, secret string) Option {
	return func(s *Server) {
		if id != "" {
			s.channelID = id
		}
		if secret != "" {
			s.channelSecret = secret
		}
	}
}

// WithAccount sets the account's amojo id and CRM account id (defaults
// DefaultAccountAmojoID, DefaultAccountID). Empty or non-positive values
// keep the defaults.
func WithAccount(amojoID string, accountID int) Option {
	return func(s *Server) {
		if amojoID != "" {
			s.accountAmojoID = amojoID
		}
		if accountID > 0 {
			s.accountID = accountID
		}
	}
}

// WithExtraAccounts lets the channel also connect to the accounts with these
// amojo ids, for integrations that serve several accounts with one client.
// Only the main account (WithAccount) has CRM endpoints.
func WithExtraAccounts(amojoIDs ...string) Option {
	return func(s *Server) { s.extraAccounts = append(s.extraAccounts, amojoIDs...) }
}

// WithAccessToken sets the long-lived bearer token the CRM endpoints accept
// (default DefaultAccessToken). It never expires. An empty token keeps the
// default.
func WithAccessToken(tok string) Option {
	return func(s *Server) {
		if tok != "" {
			s.staticToken = tok
		}
	}
}

// WithOAuthClient sets the integration's OAuth client id, secret and
// redirect URI checked by the token endpoint. Empty values keep the
// defaults.
func WithOAuthClient(clientID, clientSecret, redirectURI string) Option {
	return func(s *Server) {
		if clientID != "" {
			s.oauthClientID = clientID
		}
		if clientSecret != "" {
			s.oauthSecret = clientSecret
		}
		if redirectURI != "" {
			s.oauthRedirect = redirectURI
		}
	}
}

// WithTokenLifetime sets the lifetime of access tokens issued by the OAuth
// token endpoint (default DefaultTokenLifetime). Non-positive values keep
// the default.
func WithTokenLifetime(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.tokenLifetime = d
		}
	}
}

// WithClock makes the server read time from clk: the Date window of signed
// requests, message and talk timestamps, token and code expiry, and webhook
// times. Clients from Server.Client use the same clock for their Date
// headers and retry waits. A nil clock keeps kommo.SystemClock.
func WithClock(clk kommo.Clock) Option {
	return func(s *Server) {
		if clk != nil {
			s.clock, s.now = clk, clk.Now
		}
	}
}

// WithRateLimit makes the server answer 429 Too Many Requests, with a
// Retry-After header in whole seconds, once requests exceed rps per second
// with the given burst (a token bucket shared by both APIs; it runs on real
// time, not on WithClock). rps <= 0 turns the limit off; burst < 1 counts
// as 1.
func WithRateLimit(rps float64, burst int) Option {
	return func(s *Server) {
		if rps <= 0 {
			s.limiter = nil
			return
		}
		s.limiter = rate.NewLimiter(rate.Limit(rps), max(burst, 1))
	}
}

// WithHTMLRateLimitBody makes 429 answers carry an HTML page (as a proxy in
// front of Kommo may send) instead of a problem+json body, so clients can
// be tested against a non-JSON error body.
func WithHTMLRateLimitBody() Option {
	return func(s *Server) { s.htmlRateLimit = true }
}

// WithRandomFailures makes each request that no queued fault applies to
// fail with 503 Service Unavailable with probability p (0 to 1), chosen by a
// generator seeded with seed so runs are repeatable. A failed request
// changes no state. Use it for load and soak tests of retry handling.
func WithRandomFailures(p float64, seed uint64) Option {
	return func(s *Server) {
		s.failP = min(max(p, 0), 1)
		s.failSeed = seed
	}
}
