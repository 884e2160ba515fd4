package kommo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// rotatingEndpoint is a hand-written Kommo token endpoint with single-use
// refresh tokens: refreshing "r<n>" issues "a<m>"/"r<m>" and spends
// "r<n>"; a spent or unknown refresh token gets 400 "Token has been
// revoked", as Kommo answers.
type rotatingEndpoint struct {
	srv *httptest.Server
	// expiresIn is the lifetime given to new access tokens, in seconds.
	expiresIn int64
	// stall, when set (setStall), runs before the endpoint answers a
	// request.
	stall atomic.Pointer[func(r *http.Request)]
	// status, when set, answers every request with that status and an
	// error body instead.
	status atomic.Int32

	requests atomic.Int32 // requests that reached the handler
	mu       sync.Mutex
	next     int             // number of the next pair
	live     map[string]bool // issued refresh tokens: true until spent
	ok       int             // refreshes answered 200
	rejected []string        // refresh tokens answered 400 (spent or unknown)
}

// newRotatingEndpoint starts an endpoint whose only live refresh token is
// "r0".
func newRotatingEndpoint(t testing.TB) *rotatingEndpoint {
	t.Helper()
	e := &rotatingEndpoint{expiresIn: 86400, next: 1, live: map[string]bool{"r0": true}}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *rotatingEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	var body oauthRequest
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	if f := e.stall.Load(); f != nil {
		(*f)(r)
	}
	w.Header().Set("Content-Type", "application/json")
	if st := int(e.status.Load()); st != 0 {
		w.WriteHeader(st)
		_, _ = w.Write([]byte(`{"title":"unavailable"}`))
		return
	}
	if body.GrantType != "refresh_token" || body.ClientSecret != oauthTestSecret {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"hint":"bad request"}`))
		return
	}
	e.mu.Lock()
	if !e.live[body.RefreshToken] {
		e.rejected = append(e.rejected, body.RefreshToken)
		e.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"hint":"Token has been revoked","title":"Invalid request","status":400}`))
		return
	}
	e.live[body.RefreshToken] = false
	n := e.next
	e.next++
	e.ok++
	rt := fmt.Sprintf("r%d", n)
	e.live[rt] = true
	e.mu.Unlock()
	_ = json.NewEncoder(w).Encode(oauthResponse{TokenType: "Bearer", ExpiresIn: e.expiresIn, ServerTime: time.Now().Unix(),
		AccessToken: fmt.Sprintf("a%d", n), RefreshToken: rt})
}

// setStall makes the endpoint run f before it answers (nil: no stall).
func (e *rotatingEndpoint) setStall(f func(r *http.Request)) {
	if f == nil {
		e.stall.Store(nil)
		return
	}
	e.stall.Store(&f)
}

// issue spends refresh token rt as another process would and returns the
// new pair.
func (e *rotatingEndpoint) issue(t testing.TB, rt string) *oauth2.Token {
	t.Helper()
	tok, err := e.config().Refresh(context.Background(), rt)
	if err != nil {
		t.Fatalf("refresh %s: %v", rt, err)
	}
	return tok
}

// stats returns the number of successful refreshes and the rejected
// refresh tokens.
func (e *rotatingEndpoint) stats() (ok int, rejected []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ok, append([]string(nil), e.rejected...)
}

// config returns an OAuthConfig whose token requests go to the endpoint.
func (e *rotatingEndpoint) config() *OAuthConfig {
	return &OAuthConfig{
		ClientID:     "client-id",
		ClientSecret: oauthTestSecret,
		RedirectURL:  "https://app.example/oauth/callback",
		TokenURL:     e.srv.URL + "/oauth2/access_token",
	}
}

// oauthTokenContext asks ts for a token with ctx when ts takes a context
// (TokenContext) and falls back to Token otherwise, so that these tests
// also measure a source without one.
func oauthTokenContext(ctx context.Context, ts oauth2.TokenSource) (*oauth2.Token, error) {
	if cts, ok := ts.(interface {
		TokenContext(context.Context) (*oauth2.Token, error)
	}); ok {
		return cts.TokenContext(ctx)
	}
	return ts.Token()
}

// expiredPair is the stored pair "a0"/"r0", already expired.
func expiredPair() *oauth2.Token {
	return &oauth2.Token{AccessToken: "a0", TokenType: "Bearer", RefreshToken: "r0", Expiry: time.Now().Add(-time.Hour)}
}
