package kommo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// TokenExpiryDelta is how long before its expiry an access token is
// treated as expired and refreshed, as in x/oauth2.
const TokenExpiryDelta = 10 * time.Second

// TokenStore persists the token of one account. Kommo's refresh tokens are
// single use, so the token source saves every new pair before using it.
// Implementations must be safe for concurrent use. Two processes sharing
// one stored refresh token race on refresh and one of them loses the grant:
// run one refresher per account, or make Save/Load coordinate (a lock or a
// compare-and-swap in the store).
type TokenStore interface {
	// Load returns the stored token.
	Load(ctx context.Context) (*oauth2.Token, error)
	// Save stores tok, replacing the previous one. It must not return
	// before tok is durable.
	Save(ctx context.Context, tok *oauth2.Token) error
}

// FileTokenStore is a TokenStore backed by a JSON file. Save writes a
// temporary file in the same directory (mode 0600), syncs it and renames it
// over the old one, so a crash leaves either the old or the new token,
// never a torn file.
type FileTokenStore struct {
	path string
	mu   sync.Mutex
}

// NewFileTokenStore returns a store at path. The directory must exist.
func NewFileTokenStore(path string) *FileTokenStore { return &FileTokenStore{path: path} }

// String shows the path only.
func (s *FileTokenStore) String() string { return "kommo.FileTokenStore{" + s.path + "}" }

// oauthFileToken is the file format of FileTokenStore.
type oauthFileToken struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// Load reads the token. A missing file is an error matching fs.ErrNotExist.
func (s *FileTokenStore) Load(ctx context.Context) (*oauth2.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("kommo: load token: %w", err)
	}
	var ft oauthFileToken
	if err := json.Unmarshal(data, &ft); err != nil {
		return nil, fmt.Errorf("kommo: load token from %s: malformed file", s.path)
	}
	return &oauth2.Token{AccessToken: ft.AccessToken, TokenType: ft.TokenType, RefreshToken: ft.RefreshToken, Expiry: ft.Expiry}, nil
}

// Save writes tok atomically (temporary file, fsync, rename) with mode
// 0600.
func (s *FileTokenStore) Save(ctx context.Context, tok *oauth2.Token) (err error) {
	if tok == nil {
		return errors.New("kommo: save token: nil token")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := json.Marshal(oauthFileToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry})
	if err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	if err = os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("kommo: save token: %w", err)
	}
	// Make the rename itself durable; not every platform can sync a
	// directory, so this is best effort.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// ContextTokenSource is an oauth2.TokenSource that can also be asked with
// the context of the call that needs the token. NewTokenSource returns
// one; the client passes each call's context to TokenContext when its
// token source offers it.
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
// own wait, through TokenContext). Each refresh and each save is also
// bounded by 30 s when the HTTP client has no timeout. Use the source with
// WithTokenSource:
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
	return &oauthTokenSource{ctx: ctx, cfg: &cp, store: store, tok: tok}, nil
}

var _ ContextTokenSource = (*oauthTokenSource)(nil)

// oauthTokenSource implements NewTokenSource.
type oauthTokenSource struct {
	ctx   context.Context
	cfg   *OAuthConfig
	store TokenStore

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
		go s.fly(f)
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

// fly runs flight f and hands its result to the callers waiting for it.
func (s *oauthTokenSource) fly(f *tokenFlight) {
	defer func() {
		if r := recover(); r != nil {
			f.tok, f.err = nil, fmt.Errorf("kommo: token refresh panicked: %v", r)
		}
		s.mu.Lock()
		s.flight = nil
		s.mu.Unlock()
		close(f.done)
	}()
	f.tok, f.err = s.refresh()
}

// refresh returns a valid token: it saves an unsaved pair, and refreshes
// the token when it is not valid.
func (s *oauthTokenSource) refresh() (*oauth2.Token, error) {
	s.mu.Lock()
	cur, unsaved := s.tok, s.unsaved
	s.mu.Unlock()
	if unsaved {
		if err := s.save(cur); err != nil {
			return nil, err
		}
		if s.valid(cur) {
			return cur, nil
		}
	}
	if cur.RefreshToken == "" {
		return nil, fmt.Errorf("kommo: access token expired and there is no refresh token: %w", ErrReauthorizationRequired)
	}
	tok, err := s.cfg.Refresh(s.ctx, cur.RefreshToken)
	if err != nil {
		return nil, fmt.Errorf("kommo: refresh access token: %w", err)
	}
	if tok.RefreshToken == "" {
		// Kommo always rotates the pair; should it ever not, keep the old
		// refresh token as x/oauth2 does.
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
