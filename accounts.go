package kommo

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/oauth2"
)

// AccountTokenStore persists the OAuth tokens of many accounts, each under
// its account key, the account's base domain ("example.kommo.com"). It is
// what Accounts uses, so one process, or several sharing the store, can
// serve every account an integration is installed in.
//
// Kommo's refresh tokens are single use, so a refresh must never run twice
// for one account, wherever the token sources are: LockToken locks one
// account against every other user of the store (every process, every
// token source), and a token source refreshes only under that lock, after
// loading the token again (see TokenLocker). Implementations must be safe
// for concurrent use; a store shared by processes needs a lock they all
// see (package kommoredis has one on Redis). MemoryTokenStore is the
// in-process one.
type AccountTokenStore interface {
	// LoadToken returns the account's stored token, or an error matching
	// ErrNoToken when there is none.
	LoadToken(ctx context.Context, account string) (*oauth2.Token, error)
	// SaveToken stores tok as the account's token. It must not return
	// before tok is durable.
	SaveToken(ctx context.Context, account string, tok *oauth2.Token) error
	// LockToken waits until the caller holds the account's lock or ctx
	// ends. The caller calls unlock once, when done; it is not reentrant.
	// A lock held by a process that died must expire (a store's lock TTL
	// must outlast a refresh: the token source gives each step 30 s).
	LockToken(ctx context.Context, account string) (unlock func(), err error)
}

// ErrNoToken: an AccountTokenStore has no token for the account: it has
// not been installed there (or the token was deleted).
var ErrNoToken = errors.New("kommo: no token stored for the account")

// AccountStore returns the TokenStore of one account of s, for
// NewTokenSource. It is also a TokenLocker (s.LockToken), so token sources
// on it refresh under the account's lock. Store failures come as a
// *StoreError (ErrStoreUnavailable).
func AccountStore(s AccountTokenStore, account string) TokenStore {
	return &accountStore{s: s, account: account}
}

// accountStore is AccountStore.
type accountStore struct {
	s       AccountTokenStore
	account string
}

var _ TokenLocker = (*accountStore)(nil)

func (a *accountStore) Load(ctx context.Context) (*oauth2.Token, error) {
	tok, err := a.s.LoadToken(ctx, a.account)
	return tok, a.wrap("LoadToken", ctx, err)
}

func (a *accountStore) Save(ctx context.Context, tok *oauth2.Token) error {
	return a.wrap("SaveToken", ctx, a.s.SaveToken(ctx, a.account, tok))
}

func (a *accountStore) Lock(ctx context.Context) (func(), error) {
	unlock, err := a.s.LockToken(ctx, a.account)
	if err != nil {
		return nil, a.wrap("LockToken", ctx, err)
	}
	return unlock, nil
}

// wrap makes a store failure a *StoreError; a missing token and the end of
// the caller's context stay as they are.
func (a *accountStore) wrap(op string, ctx context.Context, err error) error {
	if err == nil || errors.Is(err, ErrNoToken) || ctx.Err() != nil {
		return err
	}
	var se *StoreError
	if errors.As(err, &se) {
		return err
	}
	return &StoreError{Store: "token store", Op: op, Key: a.account, Err: err}
}

func (a *accountStore) String() string {
	return fmt.Sprintf("kommo.AccountStore{%T, %s}", a.s, a.account)
}

// Accounts hands out the token sources and clients of every account an
// integration is installed in, from one AccountTokenStore: one token source
// per account, made on first use and kept, so every client of an account
// in this process shares its single-flight refresh, and the store's lock
// keeps processes from refreshing one account twice.
//
//	store, err := kommoredis.NewTokenStore(rdb) // or kommo.NewMemoryTokenStore() in one process
//	accounts, err := kommo.NewAccounts(ctx, cfg, store)
//	// on install: tok, err := cfg.ForAccount(domain).Exchange(ctx, code); accounts.Save(ctx, domain, tok)
//	client, err := accounts.Client(ctx, "example.kommo.com", kommo.WithChannel(id, secret))
//
// It is safe for concurrent use.
type Accounts struct {
	ctx   context.Context
	cfg   *OAuthConfig
	store AccountTokenStore

	mu      sync.Mutex
	sources map[string]ContextTokenSource
}

// NewAccounts returns the Accounts of cfg's integration (its client id,
// secret and redirect URL; BaseDomain is set per account) on store. ctx is
// the token sources' context (see NewTokenSource): pass a long-lived one.
func NewAccounts(ctx context.Context, cfg *OAuthConfig, store AccountTokenStore) (*Accounts, error) {
	if ctx == nil {
		return nil, errors.New("kommo: NewAccounts: nil context")
	}
	if store == nil {
		return nil, errors.New("kommo: NewAccounts: nil store")
	}
	probe := cfg.ForAccount("example.kommo.com")
	if err := probe.oauthCheck("NewAccounts"); err != nil {
		return nil, err
	}
	cp := *cfg
	return &Accounts{ctx: ctx, cfg: &cp, store: store, sources: make(map[string]ContextTokenSource)}, nil
}

// TokenSource returns the token source of the account at baseDomain,
// loading its token from the store on first use (an error matching
// ErrNoToken when the integration is not installed there).
func (a *Accounts) TokenSource(ctx context.Context, baseDomain string) (ContextTokenSource, error) {
	account, err := accountKey(baseDomain)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	ts, ok := a.sources[account]
	a.mu.Unlock()
	if ok {
		return ts, nil
	}
	if _, err := a.store.LoadToken(ctx, account); err != nil {
		return nil, (&accountStore{a.store, account}).wrap("LoadToken", ctx, err)
	}
	ts, err = NewTokenSource(a.ctx, a.cfg.ForAccount(account), AccountStore(a.store, account))
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, ok := a.sources[account]; ok {
		return prev, nil // another caller made one meanwhile: share it
	}
	a.sources[account] = ts
	return ts, nil
}

// Client returns a client for the account at baseDomain with its token
// source (WithBaseDomain and WithTokenSource) and opts.
func (a *Accounts) Client(ctx context.Context, baseDomain string, opts ...Option) (*Client, error) {
	ts, err := a.TokenSource(ctx, baseDomain)
	if err != nil {
		return nil, err
	}
	account, _ := accountKey(baseDomain)
	return NewClient(append([]Option{WithBaseDomain(account), WithTokenSource(ts)}, opts...)...)
}

// Save stores the first token of an account, from Exchange after an
// install, under the account's lock, and drops the token source this
// process holds for it, so that the next TokenSource call starts from tok.
func (a *Accounts) Save(ctx context.Context, baseDomain string, tok *oauth2.Token) error {
	account, err := accountKey(baseDomain)
	if err != nil {
		return err
	}
	if tok == nil || tok.AccessToken == "" {
		return &ValidationError{Op: "Accounts.Save", Problems: []string{"token: no access token"}}
	}
	st := &accountStore{a.store, account}
	unlock, err := st.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := st.Save(ctx, tok); err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.sources, account)
	a.mu.Unlock()
	return nil
}

// accountKey normalises a base domain to the account key.
func accountKey(baseDomain string) (string, error) {
	host, problem := normaliseBaseDomain(baseDomain)
	if problem != "" {
		return "", &ValidationError{Op: "Accounts", Problems: []string{"base domain: " + problem}}
	}
	return host, nil
}

// MemoryTokenStore is the in-process AccountTokenStore: tokens in a map,
// one lock per account. Nothing survives the process: it suits tests and a
// single process whose tokens are saved elsewhere too; replicas need a
// shared store (package kommoredis).
type MemoryTokenStore struct {
	mu     sync.Mutex
	tokens map[string]*oauth2.Token
	locks  map[string]chan struct{}
}

// NewMemoryTokenStore returns an empty MemoryTokenStore.
func NewMemoryTokenStore() *MemoryTokenStore {
	return &MemoryTokenStore{tokens: make(map[string]*oauth2.Token), locks: make(map[string]chan struct{})}
}

// LoadToken implements AccountTokenStore.
func (m *MemoryTokenStore) LoadToken(_ context.Context, account string) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[account]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoToken, account)
	}
	return copyToken(t), nil
}

// SaveToken implements AccountTokenStore.
func (m *MemoryTokenStore) SaveToken(_ context.Context, account string, tok *oauth2.Token) error {
	if tok == nil {
		return errors.New("kommo: MemoryTokenStore: nil token")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[account] = copyToken(tok)
	return nil
}

// LockToken implements AccountTokenStore.
func (m *MemoryTokenStore) LockToken(ctx context.Context, account string) (func(), error) {
	m.mu.Lock()
	l, ok := m.locks[account]
	if !ok {
		l = make(chan struct{}, 1)
		m.locks[account] = l
	}
	m.mu.Unlock()
	select {
	case l <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("kommo: lock the token of %s: %w", account, ctx.Err())
	}
	var once sync.Once
	return func() { once.Do(func() { <-l }) }, nil
}

// String names the store, never a token.
func (m *MemoryTokenStore) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("kommo.MemoryTokenStore{%d accounts}", len(m.tokens))
}
