package kommo

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"
)

// RetryPolicy says how many attempts a call may make and how long to wait
// between them; CheckRetry (DefaultCheckRetry unless set) decides which
// failures are tried again. By default a request is resent only when that
// cannot make the server act twice:
//
//   - 429 Too Many Requests, for every method (the server did not act);
//   - a failure before the request left (a refused or failed dial, found with
//     errors.As), for every method;
//   - a transport error after sending, or 408, 500, 502, 503 or 504, only for
//     idempotent calls: GET, HEAD, PUT, DELETE, and every Chat API call;
//   - never a CRM POST or PATCH that may have reached the server
//     (Sources.Create, Sources.Update, ContactsChats.Link, Talks.Close), and
//     never a 2xx whose body does not decode (*DecodeError: the server
//     accepted the request).
//
// Chat API calls count as idempotent because each names what it acts on:
// Messages.Send and Messages.Edit resend the same body, and so the same
// msgid, on every attempt. Kommo does not document msgid as an idempotency
// key, so a retried send relies on Kommo recognising the msgid it has seen.
//
// A Retry-After header (seconds or HTTP date) replaces the computed
// backoff. Every wait stops when the call's context is done. A wait that
// would pass the context's deadline (or MaxRetryAfter) ends the call at once:
// with a *RateLimitError after a 429, else with the last error.
//
// Chat API requests are signed again for every attempt (fresh Date) from the
// same body bytes.
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
	// CheckRetry, when set, replaces DefaultCheckRetry. It must be a pure
	// function of its arguments; it may call DefaultCheckRetry.
	CheckRetry func(p RetryPolicy, a RetryAttempt) RetryDecision
}

// RetryAttempt describes a failed attempt, for CheckRetry.
type RetryAttempt struct {
	// Method is the HTTP method.
	Method string
	// Idempotent reports whether resending cannot make the server act
	// twice: GET, HEAD, PUT and DELETE, and every Chat API call.
	Idempotent bool
	// Attempt is the number of the attempt that failed, from 1.
	Attempt int
	// Err is the attempt's error: an *APIError for a non-2xx answer, a
	// *DecodeError for a 2xx whose body did not decode, else a transport
	// error.
	Err error
}

// RetryDecision is CheckRetry's verdict on a failed attempt.
type RetryDecision struct {
	// Retry says whether to make another attempt.
	Retry bool
	// Wait is how long to wait first.
	Wait time.Duration
	// Reason names the failure for logs and telemetry, e.g. "429",
	// "503", "transport error", "not sent".
	Reason string
}

// DefaultCheckRetry is the retry rule described on RetryPolicy.
func DefaultCheckRetry(p RetryPolicy, a RetryAttempt) RetryDecision {
	var ae *APIError
	var de *DecodeError
	switch {
	case errors.As(a.Err, &de):
		return RetryDecision{Reason: "undecodable 2xx body"}
	case errors.As(a.Err, &ae):
		d := RetryDecision{Reason: strconv.Itoa(ae.StatusCode), Wait: p.Backoff(a.Attempt)}
		if ae.RetryAfter > 0 {
			d.Wait = ae.RetryAfter
		}
		switch ae.StatusCode {
		case http.StatusTooManyRequests:
			d.Retry = true
		case http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			d.Retry = a.Idempotent
		}
		return d
	case !retryableTransport(a.Err):
		return RetryDecision{Reason: "permanent transport error"}
	case notSent(a.Err):
		return RetryDecision{Retry: true, Wait: p.Backoff(a.Attempt), Reason: "not sent"}
	}
	return RetryDecision{Retry: a.Idempotent, Wait: p.Backoff(a.Attempt), Reason: "transport error"}
}

// decide applies CheckRetry or DefaultCheckRetry.
func (p RetryPolicy) decide(a RetryAttempt) RetryDecision {
	if p.CheckRetry != nil {
		return p.CheckRetry(p, a)
	}
	return DefaultCheckRetry(p, a)
}

// notSent reports whether a transport error happened before the request
// could reach the server: the connection was never made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
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

// Backoff returns the computed wait after the n-th failed attempt (from 1):
// BaseBackoff doubled per attempt up to MaxBackoff, less up to Jitter of it.
func (p RetryPolicy) Backoff(n int) time.Duration {
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

// retryableTransport reports whether a transport failure may succeed on a
// new attempt. Certificate problems and an over-long body will not.
// (Redirects are never followed and base URLs are checked to be http(s) by
// NewClient, so redirect loops and bad schemes cannot occur.)
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
