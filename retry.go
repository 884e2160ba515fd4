package kommo

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

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

// retryableTransport reports whether a transport failure may succeed on a
// new attempt. Certificate problems will not. (Redirects are never
// followed and base URLs are checked to be http(s) by NewClient, so
// redirect loops and bad schemes cannot occur.)
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
	return true
}

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
