package kommo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/oauth2"
)

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
	// BaseDomain is the domain a subdomain change recorded
	// (TokenBaseDomainKey).
	BaseDomain string `json:"base_domain,omitempty"`
}

// token returns the stored token.
func (ft *oauthFileToken) token() *oauth2.Token {
	tok := &oauth2.Token{AccessToken: ft.AccessToken, TokenType: ft.TokenType, RefreshToken: ft.RefreshToken, Expiry: ft.Expiry}
	if ft.BaseDomain != "" {
		tok = withBaseDomain(tok, ft.BaseDomain)
	}
	return tok
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
	return ft.token(), nil
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
	data, err := json.Marshal(oauthFileToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken,
		Expiry: tok.Expiry, BaseDomain: TokenBaseDomain(tok)})
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
