package kommo

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter paces requests per account. Kommo limits each account on its
// own (DefaultRateLimit requests per second for the Chat API and for the
// CRM API), so a client that serves many accounts waits only for the
// account a request is for.
//
// The client asks the limiter before every attempt, retries included, with
// the key of the account the request counts against:
//
//   - "chat:<scope id>" for Chat API calls made for an account (Send, Edit,
//     History, …), "chat:<channel id>" for channel-level calls (Connect,
//     Disconnect);
//   - "crm:<host>" for CRM calls, the host of the account's CRM base URL
//     ("example.kommo.com").
//
// A limiter shared by several clients, or by processes through a shared
// store (package kommoredis), keeps them together under Kommo's limit.
// Implementations must be safe for concurrent use.
type Limiter interface {
	// Take takes one request slot for key when one is free at now and
	// returns 0. Otherwise it takes nothing and returns how long until the
	// next slot is due, after which the client asks again. An error (the
	// shared store is down, say) fails the call at once with a
	// *StoreError: the client does not send without the limiter's leave.
	// A limiter keeping its own time (a Redis server's) may ignore now.
	Take(ctx context.Context, key string, now time.Time) (time.Duration, error)
}

// DefaultLimiterKeys is how many accounts' limiters a MemoryLimiter keeps
// when NewMemoryLimiter is given no bound.
const DefaultLimiterKeys = 10000

// MemoryLimiter is the in-process Limiter and the client's default: one
// token bucket (golang.org/x/time/rate) per key, at most a fixed number of
// keys, the least recently used one dropped first (it starts again with a
// full bucket of burst requests when next seen). It suits one process; a
// limiter shared by replicas needs a shared store (package kommoredis).
type MemoryLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu   sync.Mutex
	keys map[string]*list.Element // of *memoryLimit
	lru  *list.List               // most recently used first
}

type memoryLimit struct {
	key string
	l   *rate.Limiter
}

// NewMemoryLimiter returns a MemoryLimiter allowing rps requests per second
// with bursts of burst for each key, keeping at most maxKeys keys
// (DefaultLimiterKeys when maxKeys is 0). rps must be positive and burst at
// least 1; an invalid value is an *OptionError.
func NewMemoryLimiter(rps float64, burst, maxKeys int) (*MemoryLimiter, error) {
	switch {
	case !(rps > 0) || rps > 1e9:
		return nil, optionErr("NewMemoryLimiter", "rate must be positive, got %v", rps)
	case burst < 1:
		return nil, optionErr("NewMemoryLimiter", "burst %d must be at least 1", burst)
	case maxKeys < 0:
		return nil, optionErr("NewMemoryLimiter", "negative key bound %d", maxKeys)
	}
	if maxKeys == 0 {
		maxKeys = DefaultLimiterKeys
	}
	return &MemoryLimiter{limit: rate.Limit(rps), burst: burst, max: maxKeys,
		keys: make(map[string]*list.Element), lru: list.New()}, nil
}

// Take implements Limiter.
func (m *MemoryLimiter) Take(_ context.Context, key string, now time.Time) (time.Duration, error) {
	return takeAt(m.limiter(key), now)
}

// Len reports how many keys the limiter holds.
func (m *MemoryLimiter) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.Len()
}

// String describes the limiter.
func (m *MemoryLimiter) String() string {
	return fmt.Sprintf("kommo.MemoryLimiter{%v rps, burst %d, %d keys max}", float64(m.limit), m.burst, m.max)
}

func (m *MemoryLimiter) limiter(key string) *rate.Limiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.keys[key]; ok {
		m.lru.MoveToFront(e)
		return e.Value.(*memoryLimit).l
	}
	if m.lru.Len() >= m.max {
		old := m.lru.Back()
		m.lru.Remove(old)
		delete(m.keys, old.Value.(*memoryLimit).key)
	}
	l := rate.NewLimiter(m.limit, m.burst)
	m.keys[key] = m.lru.PushFront(&memoryLimit{key: key, l: l})
	return l
}

// errLimiterNever: the limiter can never allow a request (a
// *rate.Limiter with a zero burst).
var errLimiterNever = errors.New("kommo: the rate limiter allows no request")

// takeAt takes a token from l when one is there at now and returns 0;
// otherwise it takes nothing and returns the wait for the next one.
func takeAt(l *rate.Limiter, now time.Time) (time.Duration, error) {
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return 0, errLimiterNever
	}
	d := r.DelayFrom(now)
	if d > 0 {
		r.CancelAt(now)
	}
	return d, nil
}

// sharedRateLimiter is a Limiter over one *rate.Limiter for every key
// (WithCRMRateLimiter, WithChatRateLimiter).
type sharedRateLimiter struct{ l *rate.Limiter }

func (s sharedRateLimiter) Take(_ context.Context, _ string, now time.Time) (time.Duration, error) {
	return takeAt(s.l, now)
}

// limitKey is the Limiter key of a call (see Limiter): its API and
// account key (CallInfo.AccountKey), the channel id for a channel-level
// Chat API call.
func (c *Client) limitKey(cl *call) string {
	account := c.callAccountKey(cl)
	if cl.api == chatAPI && account == "" {
		account = c.channelID
	}
	return apiName(cl.api) + ":" + account
}
