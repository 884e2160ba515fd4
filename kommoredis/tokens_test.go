package kommoredis_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommoredis"
	"github.com/kommo-go/kommo/kommotest"
)

const account = "example.kommo.com"

func TestTokenStoreRoundTrip(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	s := must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(rdb))
	exp := time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)
	in := &oauth2.Token{AccessToken: "at-1", TokenType: "Bearer", RefreshToken: "rt-1", Expiry: exp}
	require.NoError(t, s.SaveToken(ctx, account, in))

	got, err := s.LoadToken(ctx, account)
	require.NoError(t, err)
	assert.Equal(t, "at-1", got.AccessToken)
	assert.Equal(t, "Bearer", got.TokenType)
	assert.Equal(t, "rt-1", got.RefreshToken)
	assert.True(t, exp.Equal(got.Expiry), "expiry %v", got.Expiry)

	// The documented key, value and TTL.
	const key = "kommo:{tok:example.kommo.com}:token"
	raw, err := rdb.Get(ctx, key).Bytes()
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(raw, &fields))
	assert.Equal(t, map[string]any{"access_token": "at-1", "token_type": "Bearer",
		"refresh_token": "rt-1", "expiry": "2026-12-02T10:30:00Z"}, fields)
	ttl, err := rdb.TTL(ctx, key).Result()
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), ttl, "a token has no TTL")

	// Saving again replaces it.
	require.NoError(t, s.SaveToken(ctx, account, &oauth2.Token{AccessToken: "at-2"}))
	got, err = s.LoadToken(ctx, account)
	require.NoError(t, err)
	assert.Equal(t, "at-2", got.AccessToken)
	assert.Empty(t, got.RefreshToken)
	assert.Empty(t, kommo.TokenBaseDomain(got))

	// The base domain a subdomain change recorded is kept with the token.
	moved := (&oauth2.Token{AccessToken: "at-3"}).WithExtra(map[string]any{kommo.TokenBaseDomainKey: "renamed.kommo.com"})
	require.NoError(t, s.SaveToken(ctx, account, moved))
	got, err = s.LoadToken(ctx, account)
	require.NoError(t, err)
	assert.Equal(t, "renamed.kommo.com", kommo.TokenBaseDomain(got))
	assert.True(t, got.Expiry.IsZero())
}

func TestTokenStoreNoToken(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	s := must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(rdb))
	_, err := s.LoadToken(testkit.Context(t), "other.kommo.com")
	assert.ErrorIs(t, err, kommo.ErrNoToken)
	assert.EqualError(t, err, "kommo: no token stored for the account: other.kommo.com")
}

func TestTokenStoreCorruptValueNotShown(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	s := must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(rdb))
	require.NoError(t, rdb.Set(ctx, "kommo:{tok:example.kommo.com}:token", "secret-at-123", 0).Err())
	_, err := s.LoadToken(ctx, account)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret-at-123")
}

func TestTokenStoreRedisDown(t *testing.T) {
	t.Parallel()
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	s := must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(rdb))
	srv.Stop()
	start := time.Now()
	_, err := s.LoadToken(ctx, account)
	require.Error(t, err)
	assert.NotErrorIs(t, err, kommo.ErrNoToken, "an unreachable store is not a missing token")
	err = s.SaveToken(ctx, account, &oauth2.Token{AccessToken: "at-1"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "at-1")
	_, err = s.LockToken(ctx, account)
	require.Error(t, err, "a lock that cannot be taken fails at once instead of polling")
	assert.Less(t, time.Since(start), 3*time.Second, "three failed calls, each within the 500 ms timeout")

	// Through kommo.Accounts the failure is a *kommo.StoreError.
	accounts := must[*kommo.Accounts](t)(kommo.NewAccounts(ctx,
		&kommo.OAuthConfig{ClientID: "id", ClientSecret: "secret", RedirectURL: "https://example.com/cb"}, s))
	_, err = accounts.TokenSource(ctx, account)
	var se *kommo.StoreError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, kommo.ErrStoreUnavailable)
	assert.Equal(t, "token store", se.Store)
	assert.Equal(t, "LoadToken", se.Op)
}

// TestTokenLockExcludes: a second LockToken waits while the lock is held
// and gets it once it is released.
func TestTokenLockExcludes(t *testing.T) {
	t.Parallel()
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	s1 := must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(rdb))
	s2 := must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(newClient(t, srv.Addr())))

	unlock, err := s1.LockToken(ctx, account)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	_, err = s2.LockToken(short, account)
	require.ErrorIs(t, err, context.DeadlineExceeded, "held: a second holder waits until its context ends")

	// Another account is not locked.
	unlockOther, err := s2.LockToken(ctx, "other.kommo.com")
	require.NoError(t, err)
	unlockOther()

	got := make(chan time.Time, 1)
	go func() {
		u, err := s2.LockToken(ctx, account)
		if assert.NoError(t, err) {
			got <- time.Now()
			u()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-got:
		t.Fatal("the second holder got the lock while it was held")
	default:
	}
	released := time.Now()
	unlock()
	unlock() // once only: a second call does nothing
	select {
	case at := <-got:
		assert.Less(t, at.Sub(released), time.Second, "the waiter gets the lock soon after the unlock")
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter never got the lock")
	}
}

// TestTokenLockExpiresWhenHolderDies: a lock never unlocked expires after
// the lock TTL; the dead holder's late unlock then leaves the new holder's
// lock alone.
func TestTokenLockExpiresWhenHolderDies(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	dead := must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(rdb, kommoredis.WithLockTTL(ttl)))
	live := must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(newClient(t, srv.Addr()), kommoredis.WithLockTTL(10*time.Second)))

	start := time.Now()
	lateUnlock, err := dead.LockToken(ctx, account)
	require.NoError(t, err)
	pttl, err := rdb.PTTL(ctx, "kommo:{tok:example.kommo.com}:lock").Result()
	require.NoError(t, err)
	assert.Greater(t, pttl, time.Duration(0))
	assert.LessOrEqual(t, pttl, ttl, "the lock key carries the lock TTL")

	unlock, err := live.LockToken(ctx, account)
	require.NoError(t, err)
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, ttl*3/4, "the lock was held until it expired")
	assert.Less(t, took, ttl+2*time.Second, "and then taken soon")

	lateUnlock() // the dead holder wakes up: its lock is gone, another's is there
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = dead.LockToken(short, account)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the late unlock did not delete the live holder's lock")
	unlock()
	u, err := dead.LockToken(ctx, account)
	require.NoError(t, err, "the live holder's unlock released it")
	u()
}

// TestAccountsRefreshOnceAcrossStores: two Accounts on one Redis, as two
// processes would have, refresh an expired token exactly once; both end
// with the new token.
func TestAccountsRefreshOnceAcrossStores(t *testing.T) {
	t.Parallel()
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	api := kommotest.New(t, kommotest.WithTokenLifetime(time.Hour))
	at, rt := api.IssueTokens(0) // already expired
	cfg := &kommo.OAuthConfig{ClientID: api.OAuthClientID(), ClientSecret: api.OAuthClientSecret(),
		RedirectURL: api.OAuthRedirectURI(), TokenURL: api.TokenURL(), HTTPClient: api.HTTPClient()}

	stores := []*kommoredis.TokenStore{
		must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(rdb)),
		must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(newClient(t, srv.Addr()))),
	}
	require.NoError(t, stores[0].SaveToken(ctx, account,
		&oauth2.Token{AccessToken: at, RefreshToken: rt, TokenType: "Bearer", Expiry: time.Now().Add(-time.Second)}))
	api.ResetRequests()

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens []string
	)
	for _, s := range stores {
		accounts := must[*kommo.Accounts](t)(kommo.NewAccounts(ctx, cfg, s))
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ts, err := accounts.TokenSource(ctx, account)
				if !assert.NoError(t, err) {
					return
				}
				tok, err := ts.TokenContext(ctx)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				tokens = append(tokens, tok.AccessToken)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()

	refreshes := 0
	for _, r := range api.Requests() {
		if r.Path == "/oauth2/access_token" {
			refreshes++
			assert.Equal(t, 200, r.Status)
		}
	}
	assert.Equal(t, 1, refreshes, "one refresh across both stores")
	require.Len(t, tokens, 8)
	for _, tok := range tokens {
		assert.Equal(t, tokens[0], tok, "every caller got the refreshed token")
	}
	assert.NotEqual(t, at, tokens[0])
	stored, err := stores[1].LoadToken(ctx, account)
	require.NoError(t, err)
	assert.Equal(t, tokens[0], stored.AccessToken, "the refreshed token is stored")
	assert.NotEqual(t, rt, stored.RefreshToken, "with the new refresh token")
}

func TestTokenStoreOptionErrors(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	_, err := kommoredis.NewTokenStore(rdb, kommoredis.WithLockTTL(0), kommoredis.WithGroup("g"))
	assert.EqualError(t, err, "WithLockTTL: duration must be positive, got 0s\nWithGroup: does not apply to NewTokenStore")
	assert.True(t, errors.Is(err, kommo.ErrInvalidOption))
	s := must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(rdb))
	assert.Equal(t, `kommoredis.TokenStore{prefix "kommo:", lock TTL 1m30s}`, s.String())
}
