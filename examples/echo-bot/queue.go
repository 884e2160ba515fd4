package main

import (
	"context"

	"github.com/kommo-go/kommo"
)

// openQueue returns the webhook queue: in memory (not durable) unless
// cfg.redisURL is set.
func openQueue(_ context.Context, cfg config) (kommo.WebhookQueue, error) {
	return kommo.NewMemoryWebhookQueue(1024)
}
