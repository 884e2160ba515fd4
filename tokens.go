package kommo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// TokenExpiryDelta is how long before its expiry an access token is
// treated as expired and refreshed, as in x/oauth2.
const TokenExpiryDelta = 10 * time.Second

// TokenStore persists the token of one account. Kommo's refresh tokens are
// single use, so the token source saves every new pair before using it.
// Implementations must be safe for concurrent use. Processes that share
// one stored token race on refresh, and the one whose refresh token was
// spent by another loses the grant unless the store also implements
// TokenLocker, as FileTokenStore does.
type TokenStore interface {
	// Load returns the stored token.
	Load(ctx context.Context) (*oauth2.Token, error)
	// Save stores tok, replacing the previous one. It must not return
	// before tok is durable.
	Save(ctx context.Context, tok *oauth2.Token) error
}

// TokenLocker is implemented by a TokenStore that can lock the stored
// token against every other user of it: other processes, and other token
// sources in this process. NewTokenSource uses it when its store offers
// it: to refresh, it takes the lock, loads the token again, refreshes only
// if that token is still not valid, saves the new pair and unlocks, so no
// two users spend the same single-use refresh token. FileTokenStore
// implements it with a lock file; a store in Redis or a database can
// implement it with that system's lock (its Load and Save are then called
// while the lock is held).
type TokenLocker interface {
	// Lock waits until the caller holds the lock or ctx ends. The caller
	// calls unlock once, when done; Lock is not reentrant.
	Lock(ctx context.Context) (unlock func(), err error)
}

// ContextTokenSource is an oauth2.TokenSource that can also be asked with
// the context of the call that needs the token, so that a client can pass
// each call's context when its token source offers TokenContext.
// NewTokenSource returns one.
type ContextTokenSource interface {
	oauth2.TokenSource
	// TokenContext returns a valid token, as Token does, but returns when
	// ctx ends, with an error wrapping ctx.Err(), even while the refresh
	// it waits for is in flight. The refresh goes on and its result is
	// kept for the next call: a refresh cut short may already have spent
	// the single-use refresh token.
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

// NewTokenSource returns a token source for one account that loads the
// token from store, hands out the access token while it is valid (until
// TokenExpiryDelta before expiry), and refreshes it when it is not.
//
// One refresh is in flight at a time: every caller that needs a token
// meanwhile waits for it and gets its result, the new token or its error.
// A caller of TokenContext stops waiting when its own context ends. The
// new pair is saved before the access token is handed out. If Save fails,
// the call returns an error that wraps the save error; the new pair stays
// in memory (the old refresh token is already spent, so dropping it would
// lose the grant) and the next call tries to save it again before handing
// it out.
//
// A rejected refresh token, or an expired token without one (a long-lived
// token), is an error matching ErrReauthorizationRequired.
//
// ctx is used for every refresh and save, as in x/oauth2: pass a
// long-lived context, not a request's (a request's context bounds only its
// own wait, through TokenContext). Waiting for the store's lock (see
// TokenLocker) and each load, refresh and save are also bounded by 30 s,
// a refresh by the HTTP client's own timeout when it has one. Use the
// source with WithTokenSource:
//
//	ts, err := kommo.NewTokenSource(context.Background(), cfg, kommo.NewFileTokenStore("token.json"))
//	client, err := kommo.NewClient(kommo.WithBaseDomain(cfg.BaseDomain), kommo.WithTokenSource(ts))
func NewTokenSource(ctx context.Context, cfg *OAuthConfig, store TokenStore) (ContextTokenSource, error) {
	if ctx == nil {
		return nil, errors.New("kommo: NewTokenSource: nil context")
	}
	if store == nil {
		return nil, errors.New("kommo: NewTokenSource: nil store")
	}
	if err := cfg.oauthCheck("NewTokenSource"); err != nil {
		return nil, err
	}
	tok, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("kommo: NewTokenSource: %w", err)
	}
	if tok == nil {
		return nil, errors.New("kommo: NewTokenSource: store returned no token")
	}
	cp := *cfg
	ts := &oauthTokenSource{ctx: ctx, cfg: &cp, store: store, tok: tok}
	ts.locker, _ = store.(TokenLocker)
	ts.follow(tok)
	return ts, nil
}

var _ ContextTokenSource = (*oauthTokenSource)(nil)

// oauthTokenSource implements NewTokenSource.
type oauthTokenSource struct {
	ctx    context.Context
	cfg    *OAuthConfig
	store  TokenStore
	locker TokenLocker // the store's, or nil

	mu      sync.Mutex
	tok     *oauth2.Token
	unsaved bool         // tok was refreshed but Save has not succeeded yet
	flight  *tokenFlight // the refresh in flight, or nil
}

// tokenFlight is one refresh (or save of an unsaved pair) in flight.
// Every caller that needs a token meanwhile waits for it.
type tokenFlight struct {
	done chan struct{} // closed when tok and err are set
	tok  *oauth2.Token
	err  error
}

// Token returns a valid access token, refreshing and saving it first when
// needed. It is TokenContext(context.Background()): it waits for the
// refresh, which is bounded by its own timeout.
func (s *oauthTokenSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext returns a valid access token, refreshing and saving it
// first when needed, and stops waiting when ctx ends.
func (s *oauthTokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if ctx == nil {
		return nil, errors.New("kommo: TokenContext: nil context")
	}
	s.mu.Lock()
	f := s.flight
	if f == nil {
		if !s.unsaved && s.valid(s.tok) {
			tok := copyToken(s.tok)
			s.mu.Unlock()
			return tok, nil
		}
		if err := ctx.Err(); err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("kommo: get access token: %w", err)
		}
		f = &tokenFlight{done: make(chan struct{})}
		s.flight = f
		go s.fly(s.refreshContext(ctx), f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return copyToken(f.tok), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("kommo: waiting for the access token refresh: %w", ctx.Err())
	}
}

// refreshContext is the context a refresh started by a caller with ctx
// reports to: the source's, carrying the observer of ctx (a client's
// WithObserver, see observerOf) when the source's context has none. So a
// client's observer counts the refreshes its calls start.
func (s *oauthTokenSource) refreshContext(ctx context.Context) context.Context {
	if observerOf(s.ctx) != nil {
		return s.ctx
	}
	if o := observerOf(ctx); o != nil {
		return ContextWithObserver(s.ctx, o)
	}
	return s.ctx
}

// fly runs flight f, whose refresh reports to rctx's observer, and hands
// its result to the callers waiting for it.
func (s *oauthTokenSource) fly(rctx context.Context, f *tokenFlight) {
	defer func() {
		if r := recover(); r != nil {
			f.tok, f.err = nil, fmt.Errorf("kommo: token refresh panicked: %v", r)
		}
		s.mu.Lock()
		s.flight = nil
		s.mu.Unlock()
		close(f.done)
	}()
	f.tok, f.err = s.refresh(rctx)
}

// refresh returns a valid token: it saves an unsaved pair, and refreshes
// the token when it is not valid. With a TokenLocker it holds the store's
// lock throughout and first loads the token again, which another process
// may have refreshed meanwhile.
func (s *oauthTokenSource) refresh(rctx context.Context) (*oauth2.Token, error) {
	if s.locker != nil {
		ctx, cancel := context.WithTimeout(s.ctx, oauthTimeout)
		unlock, err := s.locker.Lock(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("kommo: refresh access token: lock the token store: %w", err)
		}
		defer unlock()
	}
	s.mu.Lock()
	cur, unsaved := s.tok, s.unsaved
	s.mu.Unlock()
	if unsaved {
		// The last refresh spent the stored refresh token and its pair
		// is only in memory: save it first.
		if err := s.save(cur); err != nil {
			return nil, err
		}
		if s.valid(cur) {
			return cur, nil
		}
	} else if s.locker != nil {
		if t := s.reload(); t != nil {
			cur = t
			if s.valid(t) {
				return t, nil
			}
		}
	}
	return s.refreshWith(rctx, cur, true)
}

// refreshWith refreshes cur (with rctx) and saves the new pair. When the refresh
// token is rejected (or there is none), it loads the store again: another
// process may have spent it and saved a newer pair, which is used if it
// is valid and refreshed once (when retry is set) if it is not.
func (s *oauthTokenSource) refreshWith(rctx context.Context, cur *oauth2.Token, retry bool) (*oauth2.Token, error) {
	var err error
	if cur.RefreshToken == "" {
		err = fmt.Errorf("kommo: access token expired and there is no refresh token: %w", ErrReauthorizationRequired)
	} else {
		var tok *oauth2.Token
		tok, err = s.cfg.Refresh(rctx, cur.RefreshToken)
		if moved, ok := s.refreshAtNewDomain(rctx, cur, err); ok {
			tok, err = moved, nil // the account's subdomain changed: refreshed at its new domain (subdomain.go)
		}
		if err == nil {
			if d := TokenBaseDomain(cur); d != "" && TokenBaseDomain(tok) == "" {
				tok = withBaseDomain(tok, d) // keep the domain a subdomain change recorded
			}
			if tok.RefreshToken == "" {
				// Kommo always rotates the pair; should it ever not, keep
				// the old refresh token as x/oauth2 does.
				tok.RefreshToken = cur.RefreshToken
			}
			s.mu.Lock()
			s.tok, s.unsaved = tok, true
			s.mu.Unlock()
			if err := s.save(tok); err != nil {
				return nil, err
			}
			return tok, nil
		}
		err = fmt.Errorf("kommo: refresh access token: %w", err)
	}
	if retry && errors.Is(err, ErrReauthorizationRequired) {
		if t := s.reload(); t != nil && (t.RefreshToken != cur.RefreshToken || t.AccessToken != cur.AccessToken) {
			if s.valid(t) {
				return t, nil
			}
			if t.RefreshToken != "" && t.RefreshToken != cur.RefreshToken {
				return s.refreshWith(rctx, t, false)
			}
		}
	}
	return nil, err
}

// reload loads the stored token and makes it the source's token. It
// returns nil, and keeps the source's token, when the store fails or
// holds no token.
func (s *oauthTokenSource) reload() *oauth2.Token {
	ctx, cancel := context.WithTimeout(s.ctx, oauthTimeout)
	defer cancel()
	t, err := s.store.Load(ctx)
	if err != nil || t == nil || (t.AccessToken == "" && t.RefreshToken == "") {
		return nil
	}
	t = copyToken(t)
	s.mu.Lock()
	s.tok, s.unsaved = t, false
	s.mu.Unlock()
	s.follow(t)
	return t
}

// save stores tok, the source's current token.
func (s *oauthTokenSource) save(tok *oauth2.Token) error {
	// The old refresh token is already spent: finish saving the new one
	// even if the source's context has been cancelled meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), oauthTimeout)
	defer cancel()
	if err := s.store.Save(ctx, tok); err != nil {
		return errors.Join(errors.New("kommo: the access token was refreshed but the new token could not be saved (it is kept in memory and saving is retried on the next call)"), err)
	}
	s.mu.Lock()
	if s.tok == tok {
		s.unsaved = false
	}
	s.mu.Unlock()
	return nil
}

// String names the source and its store, never a token or the secret.
func (s *oauthTokenSource) String() string {
	if fs, ok := s.store.(*FileTokenStore); ok {
		return "kommo.TokenSource{" + fs.String() + "}"
	}
	return fmt.Sprintf("kommo.TokenSource{%T}", s.store)
}

// Format prints what String does, for every verb: fmt would otherwise
// print the fields, tokens and config included.
func (s *oauthTokenSource) Format(f fmt.State, verb rune) { oauthFormat(f, verb, s.String()) }

// LogValue never shows a token or the secret.
func (s *oauthTokenSource) LogValue() slog.Value { return slog.StringValue(s.String()) }

func (s *oauthTokenSource) valid(t *oauth2.Token) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	if t.Expiry.IsZero() {
		return true
	}
	return s.cfg.now().Add(TokenExpiryDelta).Before(t.Expiry)
}

func copyToken(t *oauth2.Token) *oauth2.Token {
	cp := *t
	return &cp
}
