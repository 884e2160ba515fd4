package kommoredis_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommoredis"
)

// TestStoresFailFastOnAStuckRedis: a Redis that holds its connections but
// answers nothing (paused) fails each operation after the round-trip
// timeout instead of hanging, and the stores work again once it answers.
func TestStoresFailFastOnAStuckRedis(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	l := must[*kommoredis.Limiter](t)(kommoredis.NewLimiter(rdb, 7, 1, kommoredis.WithTimeout(timeout)))
	s := must[*kommoredis.TokenStore](t)(kommoredis.NewTokenStore(rdb, kommoredis.WithTimeout(timeout)))
	q := must[*kommoredis.WebhookQueue](t)(kommoredis.NewWebhookQueue(rdb, "hooks", kommoredis.WithTimeout(timeout)))
	_, err := l.Take(ctx, "chat:a", time.Time{}) // connections are open before Redis sticks
	require.NoError(t, err)

	srv.Pause()
	for name, op := range map[string]func() error{
		"Take":      func() error { _, err := l.Take(ctx, "chat:a", time.Time{}); return err },
		"LoadToken": func() error { _, err := s.LoadToken(ctx, account); return err },
		"SaveToken": func() error { return s.SaveToken(ctx, account, &oauth2.Token{AccessToken: "at"}) },
		"LockToken": func() error { _, err := s.LockToken(ctx, account); return err },
		"Enqueue":   func() error { return q.Enqueue(ctx, delivery("e1")) },
		"Receive":   func() error { _, err := q.Receive(ctx); return err },
	} {
		start := time.Now()
		err := op()
		took := time.Since(start)
		assert.Error(t, err, name)
		// The timeout, with room for a loaded machine; a hang would last
		// the test context's 60 s.
		assert.Less(t, took, timeout+2*time.Second, "%s returned after %v", name, took)
	}
	srv.Resume()
	wait, err := l.Take(ctx, "chat:b", time.Time{})
	require.NoError(t, err, "working again once Redis answers")
	assert.Zero(t, wait)
}
