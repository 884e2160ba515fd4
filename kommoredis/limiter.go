package kommoredis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/kommo-go/kommo"
	"github.com/redis/go-redis/v9"
)

// Limiter is a kommo.Limiter on Redis: one GCRA limit per key
// (github.com/go-redis/redis_rate), so every client and every process
// using one Redis shares each account's budget. Redis keeps the time, so
// the hosts' clocks do not matter. It is safe for concurrent use.
type Limiter struct {
	rl    *redis_rate.Limiter
	limit redis_rate.Limit
	cfg   *config
}

var _ kommo.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter allowing rps requests per second with
// bursts of burst for each key (kommo.DefaultRateLimit and 1 match
// Kommo's documented limit). rps must be positive and burst at least 1; a
// bad value or option is a *kommo.OptionError. Options: WithPrefix,
// WithTimeout.
func NewLimiter(rdb redis.UniversalClient, rps float64, burst int, opts ...Option) (*Limiter, error) {
	if err := checkClient("NewLimiter", rdb); err != nil {
		return nil, err
	}
	switch {
	case !(rps > 0) || rps > 1e6:
		return nil, optionErr("NewLimiter", "rate must be positive and at most 1e6, got %v", rps)
	case burst < 1:
		return nil, optionErr("NewLimiter", "burst %d must be at least 1", burst)
	}
	cfg, err := newConfig(kindLimiter, opts)
	if err != nil {
		return nil, err
	}
	// GCRA only needs the emission interval, period/rate: a whole rps is
	// rps per second, any other is one request per 1/rps seconds.
	limit := redis_rate.Limit{Rate: 1, Period: time.Duration(float64(time.Second) / rps), Burst: burst}
	if rps == math.Trunc(rps) {
		limit = redis_rate.Limit{Rate: int(rps), Period: time.Second, Burst: burst}
	}
	return &Limiter{rl: redis_rate.NewLimiter(rdb), limit: limit, cfg: cfg}, nil
}

// Take implements kommo.Limiter. It ignores now: Redis's clock rules. A
// Redis failure is an error wrapping the Redis client's.
func (l *Limiter) Take(ctx context.Context, key string, _ time.Time) (time.Duration, error) {
	ctx, cancel := l.cfg.op(ctx)
	defer cancel()
	res, err := l.rl.Allow(ctx, l.key(key), l.limit)
	if err != nil {
		return 0, storeErr("limiter take", key, err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, time.Millisecond), nil
}

// key is the limit's key without redis_rate's own "rate:" prefix.
func (l *Limiter) key(key string) string { return l.cfg.prefix + "rl:" + key }

// String describes the limiter.
func (l *Limiter) String() string {
	return fmt.Sprintf("kommoredis.Limiter{%v, prefix %q}", l.limit, l.cfg.prefix)
}
