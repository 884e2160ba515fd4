package kommotest

import (
	"errors"
	"fmt"
	"time"

	"github.com/kommo-go/kommo"
	"golang.org/x/time/rate"
)

// Option configures a Server. It returns an error for a value it cannot
// take; NewServer and New report every such problem at once.
type Option func(*Server) error

// WithChannel sets the channel id and secret the server expects Chat API
// requests to be signed with (default DefaultChannelID, DefaultChannelSecret).
// Empty values keep the defaults.
func WithChannel(id, secret string) Option {
	return func(s *Server) error {
		if id != "" {
			s.channelID = id
		}
		if secret != "" {
			s.channelSecret = secret
		}
		return nil
	}
}

// WithAccount sets the account's amojo id and CRM account id (defaults
// DefaultAccountAmojoID, DefaultAccountID). Empty or non-positive values
// keep the defaults.
func WithAccount(amojoID string, accountID int) Option {
	return func(s *Server) error {
		if amojoID != "" {
			s.accountAmojoID = amojoID
		}
		if accountID > 0 {
			s.accountID = accountID
		}
		return nil
	}
}

// WithExtraAccounts lets the channel also connect to the accounts with these
// amojo ids, for integrations that serve several accounts with one client.
// Only the main account (WithAccount) has CRM endpoints.
func WithExtraAccounts(amojoIDs ...string) Option {
	return func(s *Server) error {
		for _, id := range amojoIDs {
			if id == "" {
				return errors.New("WithExtraAccounts: empty amojo id")
			}
		}
		s.extraAccounts = append(s.extraAccounts, amojoIDs...)
		return nil
	}
}

// WithAccessToken sets the long-lived bearer token the CRM endpoints accept
// (default DefaultAccessToken). It never expires. An empty token keeps the
// default.
func WithAccessToken(tok string) Option {
	return func(s *Server) error {
		if tok != "" {
			s.staticToken = tok
		}
		return nil
	}
}

// WithOAuthClient sets the integration's OAuth client id, secret and
// redirect URI checked by the token endpoint. Empty values keep the
// defaults.
func WithOAuthClient(clientID, clientSecret, redirectURI string) Option {
	return func(s *Server) error {
		if clientID != "" {
			s.oauthClientID = clientID
		}
		if clientSecret != "" {
			s.oauthSecret = clientSecret
		}
		if redirectURI != "" {
			s.oauthRedirect = redirectURI
		}
		return nil
	}
}

// WithTokenLifetime sets the lifetime of access tokens issued by the OAuth
// token endpoint (default DefaultTokenLifetime). d must be positive.
func WithTokenLifetime(d time.Duration) Option {
	return func(s *Server) error {
		if d <= 0 {
			return fmt.Errorf("WithTokenLifetime: lifetime must be positive, got %s", d)
		}
		s.tokenLifetime = d
		return nil
	}
}

// WithClock makes the server read time from clk: the Date window of signed
// requests, message and talk timestamps, token and code expiry, and webhook
// times. Clients from Server.Client use the same clock for their Date
// headers and retry waits. A nil clock keeps kommo.SystemClock.
func WithClock(clk kommo.Clock) Option {
	return func(s *Server) error {
		if clk != nil {
			s.clock, s.now = clk, clk.Now
		}
		return nil
	}
}

// WithRateLimit makes the server answer 429 Too Many Requests, with a
// Retry-After header in whole seconds, once requests exceed rps per second
// with the given burst (a token bucket shared by both APIs; it runs on real
// time, not on WithClock). rps 0 turns the limit off; a negative rate or a
// burst below 1 with a positive rate is an error.
func WithRateLimit(rps float64, burst int) Option {
	return func(s *Server) error {
		switch {
		case rps < 0:
			return fmt.Errorf("WithRateLimit: negative rate %v", rps)
		case rps == 0:
			s.limiter = nil
			return nil
		case burst < 1:
			return fmt.Errorf("WithRateLimit: burst %d must be at least 1", burst)
		}
		s.limiter = rate.NewLimiter(rate.Limit(rps), burst)
		return nil
	}
}

// WithHTMLRateLimitBody makes 429 answers carry an HTML page (as a proxy in
// front of Kommo may send) instead of a problem+json body, so clients can
// be tested against a non-JSON error body.
func WithHTMLRateLimitBody() Option {
	return func(s *Server) error { s.htmlRateLimit = true; return nil }
}

// WithRandomFailures makes each request that no queued fault applies to
// fail with 503 Service Unavailable with probability p (0 to 1), chosen by a
// generator seeded with seed so runs are repeatable. A failed request
// changes no state. Use it for load and soak tests of retry handling.
func WithRandomFailures(p float64, seed uint64) Option {
	return func(s *Server) error {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("WithRandomFailures: probability %v must be within [0, 1]", p)
		}
		s.failP, s.failSeed = p, seed
		return nil
	}
}

// WithRequestLog makes the server keep the last n requests for Requests
// (default DefaultRequestLog); older ones are forgotten as new ones
// arrive, so a long-running server's memory stays bounded. n 0 records
// none; a negative n is an error.
func WithRequestLog(n int) Option {
	return func(s *Server) error {
		if n < 0 {
			return fmt.Errorf("WithRequestLog: size must not be negative, got %d", n)
		}
		s.requests.limit = n
		return nil
	}
}
