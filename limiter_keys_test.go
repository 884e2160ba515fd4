package kommo

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

func TestMemoryLimiterPerKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := NewMemoryLimiter(DefaultRateLimit, 1, 2)
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	take := func(key string, at time.Time) time.Duration {
		d, err := l.Take(ctx, key, at)
		require.NoError(t, err)
		return d
	}
	assert.Zero(t, take("chat:a", t0))
	assert.Equal(t, time.Second/DefaultRateLimit, take("chat:a", t0), "a's next slot is one interval away")
	assert.Equal(t, time.Second/DefaultRateLimit, take("chat:a", t0), "a refused Take takes nothing")
	assert.Zero(t, take("chat:b", t0), "b does not wait for a")
	assert.Zero(t, take("chat:a", t0.Add(time.Second/DefaultRateLimit)))
	assert.Equal(t, 2, l.Len())

	// The key set is bounded: c evicts the least recently used (b).
	assert.Zero(t, take("chat:c", t0))
	assert.Equal(t, 2, l.Len())
	assert.Zero(t, take("chat:b", t0), "b starts again with a full bucket")
	assert.Equal(t, "kommo.MemoryLimiter{7 rps, burst 1, 2 keys max}", l.String())

	for _, bad := range []struct {
		rps          float64
		burst, limit int
	}{{0, 1, 0}, {-1, 1, 0}, {7, 0, 0}, {7, 1, -1}} {
		_, err := NewMemoryLimiter(bad.rps, bad.burst, bad.limit)
		var oe *OptionError
		assert.ErrorAs(t, err, &oe, "%+v", bad)
	}
}

func TestClientLimitKeys(t *testing.T) {
	t.Parallel()
	c, err := NewClient(WithChannel(harnessChannel, harnessSecret), WithBaseDomain("Example.kommo.com"), WithAccessToken("t"))
	require.NoError(t, err)
	assert.Equal(t, "chat:scope-1", c.limitKey(&call{api: chatAPI, scope: "scope-1"}))
	assert.Equal(t, "chat:"+harnessChannel, c.limitKey(&call{api: chatAPI}), "channel-level calls")
	assert.Equal(t, "crm:example.kommo.com", c.limitKey(&call{api: crmAPI}))
	_, isMem := c.chatLimiter.(*MemoryLimiter)
	assert.True(t, isMem, "the default limiter is per account")
	assert.Same(t, c.chatLimiter, c.crmLimiter, "one limiter, told apart by key")
}

// keyLog is a Limiter that records the keys it is asked for and fails or
// allows as told.
type keyLog struct {
	keys []string
	err  error
}

func (k *keyLog) Take(_ context.Context, key string, _ time.Time) (time.Duration, error) {
	k.keys = append(k.keys, key)
	return 0, k.err
}

// Every attempt asks the limiter with the account's key; a failing
// limiter fails the call with a *StoreError before anything is sent.
func TestClientAsksLimiterPerAccount(t *testing.T) {
	t.Parallel()
	lim := &keyLog{}
	h := newHarness(t, WithLimiter(lim))
	h.mux.HandleFunc("POST /v2/origin/custom/scope-1/typing", h.replyBody(http.StatusOK, `{}`))
	h.mux.HandleFunc("GET /api/v4/talks/7", h.reply(http.StatusOK, "crm", "talk_get.json"))
	ctx := context.Background()
	_, err := h.client.Messages.Typing(ctx, "scope-1", &TypingRequest{ConversationID: "c1", SenderID: "u1"})
	require.NoError(t, err)
	_, _, err = h.client.Talks.Get(ctx, 7)
	require.NoError(t, err)
	assert.Equal(t, []string{"chat:scope-1", "crm:" + h.host()}, lim.keys)

	lim.err = errors.New("redis: connection refused")
	_, err = h.client.Messages.Typing(ctx, "scope-1", &TypingRequest{ConversationID: "c1", SenderID: "u1"})
	var se *StoreError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, ErrStoreUnavailable)
	assert.Equal(t, StoreError{Store: "limiter", Op: "Take", Key: "chat:scope-1", Err: lim.err}, *se)
	assert.Len(t, h.requests(), 2, "nothing sent without the limiter's leave")

	_, err = NewClient(WithLimiter(nil))
	assert.ErrorContains(t, err, "WithLimiter")
	// A *rate.Limiter that never allows fails at once, as before.
	h2 := newHarness(t, WithChatRateLimiter(rate.NewLimiter(1, 0)))
	_, err = h2.client.Messages.Typing(ctx, "scope-1", &TypingRequest{ConversationID: "c1", SenderID: "u1"})
	assert.ErrorIs(t, err, ErrRateLimited)
}
