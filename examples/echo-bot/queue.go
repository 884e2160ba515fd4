package main

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommoredis"
)

// stores are what replicas of the bot share: the webhook queue and the
// per-account request limiter.
type stores struct {
	queue   kommo.WebhookQueue
	limiter kommo.Limiter // nil: the client's own (per account, in memory)
	close   func()
}

// openStores returns the stores: in memory (the queue is not durable: a
// hook still queued when the process dies is lost) unless redisURL is set
// ("redis://localhost:6379/0"), then in Redis, where every replica of the
// bot shares them and a queued hook survives a crash of its replica: the
// others take it after lease.
func openStores(redisURL string, lease time.Duration) (*stores, error) {
	if redisURL == "" {
		q, err := kommo.NewMemoryWebhookQueue(1024)
		if err != nil {
			return nil, err
		}
		return &stores{queue: q, close: func() {}}, nil
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	opts.ContextTimeoutEnabled = true // kommoredis needs calls to end with their context
	rdb := redis.NewClient(opts)
	q, err := kommoredis.NewWebhookQueue(rdb, "echo-bot", kommoredis.WithLease(lease))
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	lim, err := kommoredis.NewLimiter(rdb, kommo.DefaultRateLimit, 1)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	return &stores{queue: q, limiter: lim, close: func() { _ = rdb.Close() }}, nil
}
