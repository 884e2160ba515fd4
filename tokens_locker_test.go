package kommo

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// lockingMemStore is an oauthMemStore that is a TokenLocker and records
// the order of Lock, Load, Save and unlock.
type lockingMemStore struct {
	oauthMemStore
	lock  sync.Mutex
	omu   sync.Mutex
	order []string
}

func (s *lockingMemStore) log(op string) {
	s.omu.Lock()
	s.order = append(s.order, op)
	s.omu.Unlock()
}

func (s *lockingMemStore) Lock(context.Context) (func(), error) {
	s.lock.Lock()
	s.log("lock")
	return func() { s.log("unlock"); s.lock.Unlock() }, nil
}

func (s *lockingMemStore) Load(ctx context.Context) (*oauth2.Token, error) {
	s.log("load")
	return s.oauthMemStore.Load(ctx)
}

func (s *lockingMemStore) Save(ctx context.Context, tok *oauth2.Token) error {
	s.log("save")
	return s.oauthMemStore.Save(ctx, tok)
}

var (
	_ TokenLocker = (*FileTokenStore)(nil)
	_ TokenLocker = (*lockingMemStore)(nil)
)

// TestTokenSourceUsesStoreLock: with a store that is a TokenLocker, a
// refresh is lock → load → refresh → save → unlock.
func TestTokenSourceUsesStoreLock(t *testing.T) {
	ep := newRotatingEndpoint(t)
	store := &lockingMemStore{oauthMemStore: oauthMemStore{tok: expiredPair()}}
	ts, err := NewTokenSource(context.Background(), ep.config(), store)
	require.NoError(t, err)
	tok, err := ts.TokenContext(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "a1", tok.AccessToken)
	assert.Equal(t, []string{"load", "lock", "load", "save", "unlock"}, store.order)
	assert.Equal(t, int32(1), ep.requests.Load())
}

// TestTokenSourceSkipsRefreshWhenAnotherRefreshed: under the lock the
// stored pair is loaded again; when another source refreshed meanwhile,
// it is used and no refresh is sent.
func TestTokenSourceSkipsRefreshWhenAnotherRefreshed(t *testing.T) {
	ep := newRotatingEndpoint(t)
	path := filepath.Join(t.TempDir(), "token.json")
	require.NoError(t, NewFileTokenStore(path).Save(context.Background(), expiredPair()))
	a, err := NewTokenSource(context.Background(), ep.config(), NewFileTokenStore(path))
	require.NoError(t, err)
	b, err := NewTokenSource(context.Background(), ep.config(), NewFileTokenStore(path))
	require.NoError(t, err)

	ta, err := a.Token()
	require.NoError(t, err)
	tb, err := b.Token()
	require.NoError(t, err)
	assert.Equal(t, "a1", ta.AccessToken)
	assert.Equal(t, "a1", tb.AccessToken, "b uses the pair a saved")
	ok, rejected := ep.stats()
	assert.Equal(t, 1, ok)
	assert.Empty(t, rejected)
}

// TestFileTokenStoreLock: the lock excludes another store of the same
// file, Lock gives up when its context ends, and unlock may be called
// twice.
func TestFileTokenStoreLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	s1, s2 := NewFileTokenStore(path), NewFileTokenStore(path)
	unlock, err := s1.Lock(t.Context())
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s2.Lock(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), time.Second)

	got := make(chan struct{})
	go func() {
		u, err := s2.Lock(context.Background())
		if err == nil {
			u()
		}
		close(got)
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-got:
		t.Fatal("the second store got the lock while the first held it")
	default:
	}
	unlock()
	unlock()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the second store did not get the lock after unlock")
	}
}

// TestTokenSourceReloadsAfterRejectedRefresh: another process refreshed
// the shared grant and saved the new pair; this source's refresh token is
// spent, so the endpoint rejects it. The source loads the store again and
// uses the newer pair instead of reporting ErrReauthorizationRequired.
func TestTokenSourceReloadsAfterRejectedRefresh(t *testing.T) {
	t.Run("newer pair valid", func(t *testing.T) {
		ep := newRotatingEndpoint(t)
		store := &oauthMemStore{tok: expiredPair()}
		ts, err := NewTokenSource(context.Background(), ep.config(), store)
		require.NoError(t, err)
		// the other process
		require.NoError(t, store.Save(context.Background(), ep.issue(t, "r0")))

		tok, err := ts.Token()
		require.NoError(t, err)
		assert.Equal(t, "a1", tok.AccessToken)
		ok, rejected := ep.stats()
		assert.Equal(t, 1, ok)
		assert.Equal(t, []string{"r0"}, rejected, "only the spent token was rejected")
	})
	t.Run("newer pair stale", func(t *testing.T) {
		ep := newRotatingEndpoint(t)
		store := &oauthMemStore{tok: expiredPair()}
		ts, err := NewTokenSource(context.Background(), ep.config(), store)
		require.NoError(t, err)
		newer := ep.issue(t, "r0")
		newer.Expiry = time.Now().Add(-time.Second)
		require.NoError(t, store.Save(context.Background(), newer))

		tok, err := ts.Token()
		require.NoError(t, err)
		assert.Equal(t, "a2", tok.AccessToken, "refreshed with the newer refresh token")
		saved, _ := store.snapshot()
		assert.Equal(t, "r2", saved[len(saved)-1].RefreshToken)
		_, rejected := ep.stats()
		assert.Equal(t, []string{"r0"}, rejected)
	})
	t.Run("no newer pair", func(t *testing.T) {
		ep := newRotatingEndpoint(t)
		store := &oauthMemStore{tok: expiredPair()}
		ts, err := NewTokenSource(context.Background(), ep.config(), store)
		require.NoError(t, err)
		ep.issue(t, "r0") // spent, but the new pair was never saved
		_, err = ts.Token()
		require.ErrorIs(t, err, ErrReauthorizationRequired)
		_, rejected := ep.stats()
		assert.Equal(t, []string{"r0"}, rejected, "the rejected token is not sent again")
	})
}

// TestFileTokenStoreTwoSourcesOneProcess: two token sources over two
// FileTokenStores of one file in one process (as two processes would be)
// refresh 20 times each, concurrently: the file lock orders them, so no
// refresh token is used twice.
func TestFileTokenStoreTwoSourcesOneProcess(t *testing.T) {
	ep := newRotatingEndpoint(t)
	ep.expiresIn = 1
	path := filepath.Join(t.TempDir(), "token.json")
	require.NoError(t, NewFileTokenStore(path).Save(context.Background(), expiredPair()))
	const sources, calls = 2, 20
	var tss []oauth2.TokenSource
	for range sources {
		ts, err := NewTokenSource(context.Background(), ep.config(), NewFileTokenStore(path))
		require.NoError(t, err)
		tss = append(tss, ts)
	}
	errs := make([][]error, sources)
	var wg sync.WaitGroup
	for i, ts := range tss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				if _, err := ts.Token(); err != nil {
					errs[i] = append(errs[i], err)
				}
			}
		}()
	}
	wg.Wait()
	for i := range sources {
		if len(errs[i]) > 0 {
			t.Errorf("source %d: %d of %d calls failed, first: %v", i, len(errs[i]), calls, errs[i][0])
		}
	}
	ok, rejected := ep.stats()
	assert.Equal(t, sources*calls, ok)
	assert.Empty(t, rejected)
}
