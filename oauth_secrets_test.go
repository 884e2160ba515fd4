package kommo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// Secrets of the print-path tests. Each has slashes (escaped as \/ by
// PHP's json_encode) and is made of distinctive segments, so that a leak
// of any part of it, in any escaping, is found.
const (
	printSecret  = "CSaaa111/CSbbb222+CSccc333"
	printCode    = "ACaaa111/ACbbb222"
	printRefresh = "RTaaa111/RTbbb222"
	printAccess  = "ATaaa111.ATbbb222"
)

// secretSegments are the parts of the secrets above that must never be
// printed.
var secretSegments = []string{"CSaaa111", "CSbbb222", "CSccc333", "ACaaa111", "ACbbb222", "RTaaa111", "RTbbb222", "ATaaa111", "ATbbb222"}

func assertNoSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range secretSegments {
		if strings.Contains(out, s) {
			t.Errorf("%s shows %s: %s", what, s, out)
			return
		}
	}
}

// printAll renders v through every print path: the fmt verbs, fmt of
// structs holding and embedding it, json.Marshal, and slog's text and
// JSON handlers.
func printAll(t *testing.T, name string, v any) {
	t.Helper()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		assertNoSecret(t, name+" "+verb, fmt.Sprintf(verb, v))
		assertNoSecret(t, name+" in a struct "+verb, fmt.Sprintf(verb, struct{ V, W any }{v, v}))
		assertNoSecret(t, name+" in a slice "+verb, fmt.Sprintf(verb, []any{v}))
		assertNoSecret(t, name+" in a map "+verb, fmt.Sprintf(verb, map[string]any{"k": v}))
	}
	assertNoSecret(t, name+" Sprint", fmt.Sprint(v)+fmt.Sprintln(v))
	if data, err := json.Marshal(v); err == nil {
		assertNoSecret(t, name+" json.Marshal", string(data))
	}
	if data, err := json.Marshal(map[string]any{"k": v}); err == nil {
		assertNoSecret(t, name+" json.Marshal in a map", string(data))
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "v", v, slog.Any("a", v), slog.Group("g", "v", v))
	assertNoSecret(t, name+" slog text", buf.String())
	buf.Reset()
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "v", v, slog.Any("a", v), slog.Group("g", "v", v))
	assertNoSecret(t, name+" slog JSON", buf.String())
}

func TestOAuthConfigNeverPrintsSecret(t *testing.T) {
	cfg := OAuthConfig{ClientID: "client-id", ClientSecret: printSecret, RedirectURL: "https://app.example/cb", BaseDomain: "example.kommo.com"}
	printAll(t, "OAuthConfig", cfg)
	printAll(t, "*OAuthConfig", &cfg)
	type holder struct {
		Cfg OAuthConfig
		Ptr *OAuthConfig
	}
	printAll(t, "struct holding OAuthConfig", holder{cfg, &cfg})
	type embedValue struct {
		OAuthConfig
		Name string
	}
	printAll(t, "struct embedding OAuthConfig", embedValue{cfg, "n"})
	type embedPtr struct{ *OAuthConfig }
	printAll(t, "struct embedding *OAuthConfig", embedPtr{&cfg})
	printAll(t, "[]OAuthConfig", []OAuthConfig{cfg})

	// With an HTTP client and a clock, json.Marshal still works and hides
	// the secret.
	cfg.HTTPClient, cfg.Clock = &http.Client{}, SystemClock{}
	printAll(t, "OAuthConfig with client", cfg)
	data, err := json.Marshal(cfg)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"ClientID":"client-id"`)
	assert.Contains(t, string(data), `"ClientSecret":"REDACTED"`)

	// what is shown
	for _, out := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", &cfg), fmt.Sprintf("%#v", cfg)} {
		assert.Contains(t, out, "client-id")
		assert.Contains(t, out, "example.kommo.com")
		assert.Contains(t, out, "REDACTED")
	}
	assert.Equal(t, "<nil>", fmt.Sprint((*OAuthConfig)(nil)))
}

func TestAuthRedirectNeverPrintsCode(t *testing.T) {
	red := AuthRedirect{Code: printCode, Referer: "example.kommo.com", State: "st8", FromWidget: true, Platform: 2, ClientID: "client-id"}
	printAll(t, "AuthRedirect", red)
	printAll(t, "*AuthRedirect", &red)
	type holder struct {
		Red AuthRedirect
		Ptr *AuthRedirect
	}
	printAll(t, "struct holding AuthRedirect", holder{red, &red})
	type embedValue struct{ AuthRedirect }
	printAll(t, "struct embedding AuthRedirect", embedValue{red})

	data, err := json.Marshal(red)
	require.NoError(t, err)
	assert.JSONEq(t, `{"Code":"REDACTED","Referer":"example.kommo.com","State":"st8","FromWidget":true,"Platform":2,"ClientID":"client-id"}`, string(data))
	assert.Contains(t, fmt.Sprint(red), "example.kommo.com")
}

// TestOAuthErrorScrubsEscapedSecrets: the token endpoint echoes the
// client secret and the refresh token in its error body, JSON-encoded with
// escaped slashes (PHP's json_encode does this) and with \u escapes. No
// form of either is kept in the error.
func TestOAuthErrorScrubsEscapedSecrets(t *testing.T) {
	esc := func(s string) string { return strings.ReplaceAll(s, "/", `\/`) }
	uesc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "/", `\u002F`), "+", `\u002b`) }
	body := `{"hint":"refresh token ` + esc(printRefresh) + ` is revoked","detail":"client_secret ` + esc(printSecret) +
		`","title":"` + uesc(printSecret) + `","echo":{"client_secret":"` + esc(printSecret) + `","refresh_token":"` + uesc(printRefresh) +
		`","raw":"` + printRefresh + `"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	cfg := &OAuthConfig{ClientID: "client-id", ClientSecret: printSecret, RedirectURL: "https://app.example/cb", TokenURL: srv.URL}

	_, err := cfg.Refresh(t.Context(), printRefresh)
	var oe *OAuthError
	require.ErrorAs(t, err, &oe)
	require.ErrorIs(t, err, ErrReauthorizationRequired)
	assert.Contains(t, oe.Hint, "REDACTED")
	assert.Contains(t, oe.Body, "REDACTED")
	assert.Contains(t, oe.Body, `"hint"`, "the rest of the body is kept")
	printAll(t, "OAuthError", err)
	printAll(t, "*OAuthError", oe)
	printAll(t, "OAuthError value", *oe)
	assertNoSecret(t, "OAuthError fields", strings.Join([]string{oe.Body, oe.Hint, oe.Detail, oe.Title, oe.URL}, " "))

	// through a token source too
	store := &oauthMemStore{tok: &oauth2.Token{AccessToken: printAccess, RefreshToken: printRefresh, Expiry: time.Now().Add(-time.Hour)}}
	ts, err := NewTokenSource(context.Background(), cfg, store)
	require.NoError(t, err)
	_, err = ts.Token()
	require.True(t, errors.As(err, &oe))
	printAll(t, "token source error", err)

	// an escaped secret cut at the 4 KiB cap is not left half there
	long := strings.Repeat("x", maxErrorBody-10) + esc(printSecret)
	e := newOAuthError(400, "refresh_token", srv.URL, []byte(long), printSecret)
	assertNoSecret(t, "capped body", e.Body)
}

// TestTokenSourceAndStoreNeverPrintTokens: printing the token source or
// the file store shows no token and no secret.
func TestTokenSourceAndStoreNeverPrintTokens(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":86400,"access_token":"` + printAccess + `","refresh_token":"` + printRefresh + `"}`))
	}))
	defer srv.Close()
	cfg := &OAuthConfig{ClientID: "client-id", ClientSecret: printSecret, RedirectURL: "https://app.example/cb", TokenURL: srv.URL}
	path := filepath.Join(t.TempDir(), "token.json")
	store := NewFileTokenStore(path)
	require.NoError(t, store.Save(t.Context(), &oauth2.Token{AccessToken: "ATaaa111-old", RefreshToken: "RTaaa111-old", Expiry: time.Now().Add(-time.Hour)}))
	ts, err := NewTokenSource(context.Background(), cfg, store)
	require.NoError(t, err)
	tok, err := ts.Token()
	require.NoError(t, err)
	require.Equal(t, printAccess, tok.AccessToken)

	printAll(t, "token source", ts)
	printAll(t, "*FileTokenStore", store)
	printAll(t, "FileTokenStore", *store)
	assert.Contains(t, fmt.Sprint(store), path)
}
