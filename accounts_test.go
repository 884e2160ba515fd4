package kommo_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

func accountsTestConfig(srv *kommotest.Server, clk kommo.Clock) *kommo.OAuthConfig {
	return &kommo.OAuthConfig{
		ClientID: srv.OAuthClientID(), ClientSecret: srv.OAuthClientSecret(), RedirectURL: srv.OAuthRedirectURI(),
		TokenURL: srv.TokenURL(), HTTPClient: srv.HTTPClient(), Clock: clk,
	}
}

// Two Accounts on one store, as two replicas would be, refresh an expired
// token of an account exactly once between them: the store's per-account
// lock and the reload under it keep the single-use refresh token from
// being spent twice, and both get the new pair.
func TestAccountsShareOneRefresh(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	clk := testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	srv := kommotest.New(t, kommotest.WithClock(clk), kommotest.WithRequestLog(1000))
	store := kommo.NewMemoryTokenStore()
	cfg := accountsTestConfig(srv, clk)
	domain := srv.AccountDomain()

	a1, err := kommo.NewAccounts(ctx, cfg, store)
	require.NoError(t, err)
	a2, err := kommo.NewAccounts(ctx, cfg, store)
	require.NoError(t, err)

	_, err = a1.TokenSource(ctx, domain)
	require.ErrorIs(t, err, kommo.ErrNoToken, "not installed yet")

	at, rt := srv.IssueTokens(time.Hour)
	require.NoError(t, a1.Save(ctx, "https://"+domain+"/", &oauth2.Token{AccessToken: at, RefreshToken: rt, Expiry: clk.Now().Add(time.Hour)}),
		"the domain is normalised to the account key")

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens = map[string]int{}
	)
	clk.Advance(2 * time.Hour) // expired
	for i := range 10 {
		accs := a1
		if i%2 == 1 {
			accs = a2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts, err := accs.TokenSource(ctx, domain)
			if !assert.NoError(t, err) {
				return
			}
			tok, err := ts.TokenContext(ctx)
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			tokens[tok.AccessToken]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	require.Len(t, tokens, 1, "every caller got the same new token")
	assert.NotContains(t, tokens, at)
	refreshes := 0
	for _, r := range srv.Requests() {
		if r.Method == http.MethodPost && r.Path == "/oauth2/access_token" {
			refreshes++
		}
	}
	assert.Equal(t, 1, refreshes, "one refresh for the account, across both Accounts")
	stored, err := store.LoadToken(ctx, domain)
	require.NoError(t, err)
	assert.Contains(t, tokens, stored.AccessToken, "the new pair is stored")

	// A client from Accounts calls the account's API with it.
	client, err := a2.Client(ctx, domain, kommo.WithCRMBaseURL(srv.URL()+"/"), kommo.WithHTTPClient(srv.HTTPClient()))
	require.NoError(t, err)
	id, _, err := client.Account.AmojoID(ctx)
	require.NoError(t, err)
	assert.Equal(t, srv.AccountAmojoID(), id)
}

// lockFailStore is an AccountTokenStore whose lock is down.
type lockFailStore struct{ *kommo.MemoryTokenStore }

func (lockFailStore) LockToken(context.Context, string) (func(), error) {
	return nil, errors.New("redis: i/o timeout")
}

// A store failure is a *StoreError naming the store, the operation and
// the account, and no refresh is tried without the lock.
func TestAccountsStoreFailure(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	clk := testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	srv := kommotest.New(t, kommotest.WithClock(clk), kommotest.WithRequestLog(100))
	store := lockFailStore{kommo.NewMemoryTokenStore()}
	require.NoError(t, store.SaveToken(ctx, "acme.kommo.com", &oauth2.Token{AccessToken: "old", RefreshToken: "rt", Expiry: clk.Now().Add(-time.Minute)}))
	accs, err := kommo.NewAccounts(ctx, accountsTestConfig(srv, clk), store)
	require.NoError(t, err)

	err = accs.Save(ctx, "acme.kommo.com", &oauth2.Token{AccessToken: "x"})
	var se *kommo.StoreError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "token store", se.Store)
	assert.Equal(t, "LockToken", se.Op)
	assert.Equal(t, "acme.kommo.com", se.Key)

	ts, err := accs.TokenSource(ctx, "acme.kommo.com")
	require.NoError(t, err)
	_, err = ts.TokenContext(ctx)
	require.ErrorIs(t, err, kommo.ErrStoreUnavailable)
	assert.Empty(t, srv.Requests(), "no refresh without the account's lock")

	var ve *kommo.ValidationError
	_, err = accs.TokenSource(ctx, "ftp://acme")
	require.ErrorAs(t, err, &ve)
	require.ErrorAs(t, accs.Save(ctx, "acme.kommo.com", nil), &ve)
	_, err = kommo.NewAccounts(ctx, &kommo.OAuthConfig{}, store)
	require.Error(t, err)
	assert.Equal(t, "kommo.MemoryTokenStore{1 accounts}", store.MemoryTokenStore.String())
}
