package kommoredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
)

// TokenStore is a kommo.AccountTokenStore on Redis: each account's token
// is a JSON string without a TTL, and its lock a SET NX PX key holding a
// random value, deleted on unlock only while it still holds that value, so
// a holder whose lock expired never deletes the next holder's. It is safe
// for concurrent use by many processes.
//
// SaveToken returns once Redis has the token in memory; that it survives a
// Redis restart is Redis's persistence (appendonly yes, and replicas for a
// failover): configure it, since a lost refresh token loses the account.
type TokenStore struct {
	rdb redis.UniversalClient
	cfg *config
}

var _ kommo.AccountTokenStore = (*TokenStore)(nil)

// NewTokenStore returns the TokenStore on rdb. Options: WithPrefix,
// WithTimeout, WithLockTTL.
func NewTokenStore(rdb redis.UniversalClient, opts ...Option) (*TokenStore, error) {
	if err := checkClient("NewTokenStore", rdb); err != nil {
		return nil, err
	}
	cfg, err := newConfig(kindTokens, opts)
	if err != nil {
		return nil, err
	}
	return &TokenStore{rdb: rdb, cfg: cfg}, nil
}

// storedToken is a token's JSON in Redis.
type storedToken struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// BaseDomain is the domain a subdomain change recorded
	// (kommo.TokenBaseDomainKey).
	BaseDomain string `json:"base_domain,omitempty"`
}

func (s *TokenStore) tokenKey(account string) string {
	return s.cfg.prefix + "{tok:" + account + "}:token"
}

func (s *TokenStore) lockKey(account string) string {
	return s.cfg.prefix + "{tok:" + account + "}:lock"
}

// LoadToken implements kommo.AccountTokenStore: an error matching
// kommo.ErrNoToken when the account has none.
func (s *TokenStore) LoadToken(ctx context.Context, account string) (*oauth2.Token, error) {
	ctx, cancel := s.cfg.op(ctx)
	defer cancel()
	b, err := s.rdb.Get(ctx, s.tokenKey(account)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %s", kommo.ErrNoToken, account)
	}
	if err != nil {
		return nil, storeErr("load token", account, err)
	}
	var st storedToken
	if err := json.Unmarshal(b, &st); err != nil {
		// The error never carries the stored bytes: they may be a token.
		return nil, fmt.Errorf("kommoredis: load token %q: stored value is not a token (%d bytes)", account, len(b))
	}
	tok := &oauth2.Token{AccessToken: st.AccessToken, TokenType: st.TokenType,
		RefreshToken: st.RefreshToken, Expiry: st.Expiry}
	if st.BaseDomain != "" {
		tok = tok.WithExtra(map[string]any{kommo.TokenBaseDomainKey: st.BaseDomain})
	}
	return tok, nil
}

// SaveToken implements kommo.AccountTokenStore.
func (s *TokenStore) SaveToken(ctx context.Context, account string, tok *oauth2.Token) error {
	if tok == nil {
		return fmt.Errorf("kommoredis: save token %q: nil token", account)
	}
	b, err := json.Marshal(storedToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType,
		RefreshToken: tok.RefreshToken, Expiry: tok.Expiry, BaseDomain: kommo.TokenBaseDomain(tok)})
	if err != nil {
		return fmt.Errorf("kommoredis: save token %q: %w", account, err)
	}
	ctx, cancel := s.cfg.op(ctx)
	defer cancel()
	if err := s.rdb.Set(ctx, s.tokenKey(account), b, 0).Err(); err != nil {
		return storeErr("save token", account, err)
	}
	return nil
}

// unlockScript deletes the lock only while it holds the caller's value.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// Lock polling backoff: from lockPollMin doubling to lockPollMax, jittered.
const (
	lockPollMin = 5 * time.Millisecond
	lockPollMax = 100 * time.Millisecond
)

// LockToken implements kommo.AccountTokenStore: it polls with a short
// backoff until it holds the account's lock or ctx ends. The lock expires
// after the store's lock TTL (WithLockTTL) if unlock is never called. A
// Redis failure ends the wait at once with an error.
func (s *TokenStore) LockToken(ctx context.Context, account string) (func(), error) {
	key, value := s.lockKey(account), randomHex(16)
	wait := lockPollMin
	for {
		octx, cancel := s.cfg.op(ctx)
		ok, err := s.rdb.SetNX(octx, key, value, s.cfg.lockTTL).Result()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("kommoredis: lock token %q: %w", account, ctx.Err())
			}
			return nil, storeErr("lock token", account, err)
		}
		if ok {
			return s.unlocker(key, value), nil
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("kommoredis: lock token %q: %w", account, ctx.Err())
		}
		wait = min(2*wait, lockPollMax)
	}
}

// unlocker returns the unlock func of a held lock: once, on its own
// context (the caller's may have ended). A failed unlock leaves the lock
// to expire at its TTL.
func (s *TokenStore) unlocker(key, value string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := s.cfg.op(context.Background())
			defer cancel()
			_ = unlockScript.Run(ctx, s.rdb, []string{key}, value).Err()
		})
	}
}

// String describes the store, never a token.
func (s *TokenStore) String() string {
	return fmt.Sprintf("kommoredis.TokenStore{prefix %q, lock TTL %v}", s.cfg.prefix, s.cfg.lockTTL)
}
