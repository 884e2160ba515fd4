package kommo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"
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

// FileTokenStore is a TokenStore backed by a JSON file (mode 0600) that
// several processes may share. Save writes a temporary file in the same
// directory, named "." + the file's name + ".tmp-" + a random number,
// syncs it and renames it over the old one, so a crash leaves whole files
// only.
//
// A crash between the sync and the rename leaves the newest pair in the
// temporary file while the token file holds the previous one, whose
// refresh token the endpoint has already spent. Load therefore recovers:
// it moves the newest complete temporary file that is not older than the
// token file (by modification time) into place and removes the other
// temporary files, stale or torn. It does so only while this process holds
// the lock, or when it can take it without waiting, so it never touches a
// file that another process is writing under the lock.
//
// It is a TokenLocker: Lock locks the file across processes (flock(2), or
// LockFileEx on Windows, through github.com/gofrs/flock) with a lock file
// next to it, the token file's path plus ".lock", which stays in place
// (removing it would let two processes lock two different files). Token
// sources of NewTokenSource take the lock around every refresh. Save does
// not: a program that saves outside a token source (after Exchange, say)
// while other processes use the file should hold Lock around the Save.
type FileTokenStore struct {
	path string
	key  string // absolute path, the key of the process-wide state
}

// NewFileTokenStore returns a store at path. The directory must exist.
func NewFileTokenStore(path string) *FileTokenStore {
	key := path
	if abs, err := filepath.Abs(path); err == nil {
		key = abs
	}
	return &FileTokenStore{path: path, key: key}
}

// String shows the path only.
func (s *FileTokenStore) String() string { return "kommo.FileTokenStore{" + s.path + "}" }

// fileStoreState is shared by every FileTokenStore of one file in this
// process.
type fileStoreState struct {
	mu   sync.Mutex    // serialises reading and writing the files
	sem  chan struct{} // taken with the lock file: one holder per process
	held atomic.Bool   // a goroutine of this process holds the lock
}

// fileStoreStates maps a token file's absolute path to its state.
var fileStoreStates sync.Map

func (s *FileTokenStore) state() *fileStoreState {
	key := s.key
	if key == "" {
		key = s.path
	}
	if st, ok := fileStoreStates.Load(key); ok {
		return st.(*fileStoreState)
	}
	st, _ := fileStoreStates.LoadOrStore(key, &fileStoreState{sem: make(chan struct{}, 1)})
	return st.(*fileStoreState)
}

// fileLockRetry is how often Lock tries the lock file again while another
// process holds it.
const fileLockRetry = 5 * time.Millisecond

// Lock locks the token file against other processes and other
// FileTokenStores of the same file in this process (TokenLocker), waiting
// until ctx ends. The lock file is the token file's path plus ".lock".
func (s *FileTokenStore) Lock(ctx context.Context) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kommo: lock token file: %w", err)
	}
	st := s.state()
	select {
	case st.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("kommo: lock token file: %w", ctx.Err())
	}
	fl := flock.New(s.path + ".lock")
	ok, err := fl.TryLockContext(ctx, fileLockRetry)
	if err != nil || !ok {
		<-st.sem
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("kommo: lock token file: %w", err)
	}
	st.held.Store(true)
	var once sync.Once
	return func() {
		once.Do(func() {
			st.held.Store(false)
			_ = fl.Unlock()
			<-st.sem
		})
	}, nil
}

// oauthFileToken is the file format of FileTokenStore.
type oauthFileToken struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// tryLock takes the lock if it is free now; the caller holds st.mu.
func (s *FileTokenStore) tryLock(st *fileStoreState) (unlock func(), ok bool) {
	select {
	case st.sem <- struct{}{}:
	default:
		return nil, false
	}
	fl := flock.New(s.path + ".lock")
	if ok, err := fl.TryLock(); err != nil || !ok {
		<-st.sem
		return nil, false
	}
	st.held.Store(true)
	return func() {
		st.held.Store(false)
		_ = fl.Unlock()
		<-st.sem
	}, true
}

// tempFiles returns the paths of the store's temporary files.
func (s *FileTokenStore) tempFiles() []string {
	dir, prefix := filepath.Dir(s.path), "."+filepath.Base(s.path)+".tmp-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var paths []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	return paths
}

// recoverTemp moves the newest complete temporary file that is not older
// than the token file into place and removes the others. The caller holds
// the lock and st.mu.
func (s *FileTokenStore) recoverTemp(paths []string) {
	var mainMod time.Time
	fi, err := os.Stat(s.path)
	haveMain := err == nil
	if haveMain {
		mainMod = fi.ModTime()
	}
	best, bestMod := "", time.Time{}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(p)
		var ft oauthFileToken
		if err != nil || json.Unmarshal(data, &ft) != nil || (ft.AccessToken == "" && ft.RefreshToken == "") ||
			(haveMain && fi.ModTime().Before(mainMod)) {
			_ = os.Remove(p) // torn, empty or stale
			continue
		}
		if best != "" && !fi.ModTime().After(bestMod) {
			_ = os.Remove(p)
			continue
		}
		if best != "" {
			_ = os.Remove(best)
		}
		best, bestMod = p, fi.ModTime()
	}
	if best == "" {
		return
	}
	if os.Rename(best, s.path) == nil {
		syncDir(filepath.Dir(s.path))
	}
}

// Load reads the token, first recovering the pair of a Save that crashed
// before its rename (see FileTokenStore). A missing file is an error
// matching fs.ErrNotExist.
func (s *FileTokenStore) Load(ctx context.Context) (*oauth2.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := s.state()
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(s.tempFiles()) > 0 {
		if st.held.Load() {
			s.recoverTemp(s.tempFiles())
		} else if unlock, ok := s.tryLock(st); ok {
			s.recoverTemp(s.tempFiles())
			unlock()
		}
	}
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
	st := s.state()
	st.mu.Lock()
	defer st.mu.Unlock()
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
	fileTokenStoreTestPause()
	if err = os.Rename(tmp, s.path); err != nil {
		// A Load of another process, run while this Save did not hold
		// the lock, may have moved this very file into place.
		if cur, rerr := os.ReadFile(s.path); !errors.Is(err, fs.ErrNotExist) || rerr != nil || !bytes.Equal(cur, data) {
			return fmt.Errorf("kommo: save token: %w", err)
		}
		err = nil
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable; not every platform can sync a
// directory, so this is best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// fileTokenStoreSavePause is empty in every build but that of the crash
// test's helper, which sets it with go build -ldflags "-X
// github.com/kommo-go/kommo.fileTokenStoreSavePause=1h" so that Save stops
// between syncing the temporary file and renaming it, where the test kills
// the process. Nothing can set it at run time.
var fileTokenStoreSavePause string

func fileTokenStoreTestPause() {
	if fileTokenStoreSavePause == "" {
		return
	}
	if d, err := time.ParseDuration(fileTokenStoreSavePause); err == nil {
		time.Sleep(d)
	}
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
// the token when it is not valid. With a TokenLocker it holds the store's
// lock throughout and first loads the token again, which another process
// may have refreshed meanwhile.
func (s *oauthTokenSource) refresh() (*oauth2.Token, error) {
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
	return s.refreshWith(cur, true)
}

// refreshWith refreshes cur and saves the new pair. When the refresh
// token is rejected (or there is none), it loads the store again: another
// process may have spent it and saved a newer pair, which is used if it
// is valid and refreshed once (when retry is set) if it is not.
func (s *oauthTokenSource) refreshWith(cur *oauth2.Token, retry bool) (*oauth2.Token, error) {
	var err error
	if cur.RefreshToken == "" {
		err = fmt.Errorf("kommo: access token expired and there is no refresh token: %w", ErrReauthorizationRequired)
	} else {
		var tok *oauth2.Token
		tok, err = s.cfg.Refresh(s.ctx, cur.RefreshToken)
		if moved, ok := s.refreshAtNewDomain(cur, err); ok {
			tok, err = moved, nil // the account's subdomain changed: refreshed at its new domain (subdomain.go)
		}
		if err == nil {
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
				return s.refreshWith(t, false)
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
