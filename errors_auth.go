package kommo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrReauthorizationRequired means the stored grant can no longer be used:
// the token endpoint rejected the refresh token (revoked, already used,
// older than 3 months, or the integration was uninstalled), or the token
// expired and has no refresh token. The user must authorize the
// integration again.
var ErrReauthorizationRequired = errors.New("kommo: the user must authorize the integration again")

// AuthError is returned by ParseRedirect when the user denied access
// (Code "access_denied"), when the redirect is malformed (Code
// "invalid_redirect"), and by AuthRedirect.VerifyState (Code
// "state_mismatch").
type AuthError struct {
	// Code is the OAuth error code.
	Code string
	// Description says what is wrong.
	Description string
	// State is the redirect's state, when present.
	State string
}

// Error describes the failure.
func (e *AuthError) Error() string {
	s := "kommo: authorization failed: " + e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// OAuthError is a non-2xx answer of the token endpoint. A rejected refresh
// token (400 or 401 on a refresh) matches ErrReauthorizationRequired; any
// error also matches the status sentinel (ErrBadRequest,
// ErrUnauthorized, ...). It never contains a token, code or secret.
type OAuthError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// GrantType is "authorization_code" or "refresh_token".
	GrantType string
	// URL is the token endpoint.
	URL string
	// Title, Detail and Hint are taken from the JSON body when present.
	Title, Detail, Hint string
	// Body is the raw body (capped at 4 KiB, secrets removed).
	Body string
	// Location is a redirect's target (3xx), without its query and
	// fragment. Token requests never follow redirects.
	Location string
}

// Error describes the failure and, for a rejected refresh token, says that
// the user must authorize again.
func (e *OAuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kommo: token endpoint (%s) answered %d", e.GrantType, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	for _, s := range []string{e.Detail, e.Hint} {
		if s != "" {
			b.WriteString(": " + s)
		}
	}
	if e.StatusCode >= 300 && e.StatusCode <= 399 {
		b.WriteString(": token requests do not follow redirects")
		if e.Location != "" {
			b.WriteString(" (Location: " + e.Location + ")")
		}
	}
	if e.reauth() {
		b.WriteString(": the refresh token was rejected; the user must authorize the integration again")
	}
	return b.String()
}

func (e *OAuthError) reauth() bool {
	return e.GrantType == "refresh_token" && (e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnauthorized)
}

// Is matches ErrReauthorizationRequired for a rejected refresh token and
// the sentinel of the status code.
func (e *OAuthError) Is(target error) bool {
	if target == ErrReauthorizationRequired {
		return e.reauth()
	}
	return (&APIError{StatusCode: e.StatusCode}).Is(target)
}

func newOAuthError(status int, grant, u string, body []byte, secrets ...string) *OAuthError {
	e := &OAuthError{StatusCode: status, GrantType: grant, URL: u}
	var eb struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Hint   string `json:"hint"`
	}
	if json.Unmarshal(body, &eb) == nil {
		e.Title = oauthScrubString(eb.Title, secrets...)
		e.Detail = oauthScrubString(eb.Detail, secrets...)
		e.Hint = oauthScrubString(eb.Hint, secrets...)
	}
	// Scrub before capping, so that a secret across the cap is not left
	// half there.
	e.Body = oauthScrubString(string(body), secrets...)
	if len(e.Body) > maxErrorBody {
		e.Body = e.Body[:maxErrorBody]
	}
	return e
}
