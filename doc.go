// Package kommo is a Go client for the Kommo messenger CRM: its Chat API (the
// signed /v2/origin/custom/... API that chat-channel integrations use to move
// messages between a messenger and Kommo) and the CRM API v4 endpoints that go
// with it (talks, contact–chat links, sources, account, OAuth).
//
// # Clients and authentication
//
// One Client serves both APIs. Chat API requests are signed with the channel
// secret issued when the channel was registered; CRM API v4 requests carry an
// OAuth 2.0 or long-lived bearer token:
//
//	client, err := kommo.NewClient(
//		kommo.WithChannel(channelID, channelSecret), // Chat API
//		kommo.WithBaseDomain("example.kommo.com"),   // CRM API v4 host
//		kommo.WithAccessToken(token),                // or WithTokenSource(ts)
//	)
//
// A Chat API call on a client without WithChannel fails with ErrNoChannel, a
// CRM call without a token with ErrNoCredentials.
//
// # Chat API signing
//
// Every Chat API request carries Date, Content-Type, Content-MD5 and
// X-Signature headers (see Signer). The client marshals each body once, and
// signs it again right before every attempt, so a retry gets a fresh Date.
//
// # Errors
//
// Every non-2xx response is an *APIError; errors.Is matches it against
// ErrBadRequest, ErrUnauthorized, ErrPaymentRequired, ErrForbidden,
// ErrNotFound, ErrUnprocessableEntity, ErrRateLimited, ErrServer and
// ErrTalkClosed. Requests the SDK refuses to send return a *ValidationError
// listing every problem (errors.Is(err, ErrInvalidRequest)). No error string
// contains a token, secret or signature.
//
//	var apiErr *kommo.APIError
//	if errors.As(err, &apiErr) {
//		log.Println(apiErr.StatusCode, apiErr.Detail, apiErr.ValidationErrors)
//	}
//
// # Retries and rate limits
//
// Transport errors, 408, 429, 500, 502, 503 and 504 are retried with
// exponential backoff and jitter (see RetryPolicy), honouring Retry-After.
// The client throttles itself to DefaultRateLimit requests per second; see
// WithRateLimit and WithRateLimiter.
package kommo
