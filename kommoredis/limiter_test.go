package kommoredis_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommoredis"
)

// TestLimiterBurstThenWait: a key allows its burst at once, then asks to
// wait one emission interval (1/rps), and allows again after the wait.
func TestLimiterBurstThenWait(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	l := must[*kommoredis.Limiter](t)(kommoredis.NewLimiter(rdb, 10, 3))
	start := time.Now()
	for i := range 3 {
		wait, err := l.Take(ctx, "chat:a", time.Time{})
		require.NoError(t, err)
		require.Zero(t, wait, "request %d of the burst", i+1)
	}
	wait, err := l.Take(ctx, "chat:a", time.Time{})
	require.NoError(t, err)
	// The next slot is 100 ms after the first take, less the time the
	// takes themselves took (5 ms for Redis's millisecond rounding).
	assert.GreaterOrEqual(t, wait, 100*time.Millisecond-time.Since(start)-5*time.Millisecond)
	assert.LessOrEqual(t, wait, 100*time.Millisecond)

	// A refused take takes nothing: asking again still waits.
	again, err := l.Take(ctx, "chat:a", time.Time{})
	require.NoError(t, err)
	assert.Greater(t, again, time.Duration(0))

	time.Sleep(again)
	wait, err = l.Take(ctx, "chat:a", time.Time{})
	require.NoError(t, err)
	assert.Zero(t, wait, "after the wait the next slot is free")
}

func TestLimiterFractionalRate(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	l := must[*kommoredis.Limiter](t)(kommoredis.NewLimiter(rdb, 0.5, 1))
	wait, err := l.Take(ctx, "crm:example.kommo.com", time.Time{})
	require.NoError(t, err)
	require.Zero(t, wait)
	wait, err = l.Take(ctx, "crm:example.kommo.com", time.Time{})
	require.NoError(t, err)
	assert.Greater(t, wait, 1500*time.Millisecond, "0.5 rps: the next slot is 2 s away")
	assert.LessOrEqual(t, wait, 2*time.Second)
}

func TestLimiterKeysAreIndependent(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	l := must[*kommoredis.Limiter](t)(kommoredis.NewLimiter(rdb, 1, 1))
	wait, err := l.Take(ctx, "chat:a", time.Time{})
	require.NoError(t, err)
	require.Zero(t, wait)
	wait, err = l.Take(ctx, "chat:a", time.Time{})
	require.NoError(t, err)
	require.Greater(t, wait, time.Duration(0), "chat:a is spent")

	for _, key := range []string{"chat:b", "crm:a"} {
		wait, err = l.Take(ctx, key, time.Time{})
		require.NoError(t, err)
		assert.Zero(t, wait, "%s has its own budget", key)
	}
}

// TestLimiterInstancesShareABudget: two limiters on two clients, as two
// replicas would have, share one key's budget.
func TestLimiterInstancesShareABudget(t *testing.T) {
	t.Parallel()
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	l1 := must[*kommoredis.Limiter](t)(kommoredis.NewLimiter(rdb, 1, 2))
	l2 := must[*kommoredis.Limiter](t)(kommoredis.NewLimiter(newClient(t, srv.Addr()), 1, 2))
	for _, l := range []*kommoredis.Limiter{l1, l2} {
		wait, err := l.Take(ctx, "chat:shared", time.Time{})
		require.NoError(t, err)
		require.Zero(t, wait)
	}
	for _, l := range []*kommoredis.Limiter{l1, l2} {
		wait, err := l.Take(ctx, "chat:shared", time.Time{})
		require.NoError(t, err)
		assert.Greater(t, wait, 500*time.Millisecond, "the burst of 2 is spent by both together")
	}

	// A different prefix is a different budget.
	l3 := must[*kommoredis.Limiter](t)(kommoredis.NewLimiter(rdb, 1, 2, kommoredis.WithPrefix("other:")))
	wait, err := l3.Take(ctx, "chat:shared", time.Time{})
	require.NoError(t, err)
	assert.Zero(t, wait)
	keys, err := rdb.Keys(ctx, "*").Result()
	require.NoError(t, err)
	sort.Strings(keys)
	assert.Equal(t, []string{"rate:kommo:rl:chat:shared", "rate:other:rl:chat:shared"}, keys, "the documented key layout")
}

const testChannel = "4dc7a5c3-8a5e-4a4a-9f1e-5a9b0f3e2c11"

// chatRecorder is a Chat API stand-in answering Chats.Create, recording
// when each scope's requests arrived.
type chatRecorder struct {
	mu   sync.Mutex
	seen map[string][]time.Time
	hits atomic.Int64
}

func (c *chatRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.hits.Add(1)
	_, _ = io.Copy(io.Discard, r.Body)
	scope, ok := strings.CutPrefix(r.URL.Path, "/v2/origin/custom/")
	scope, ok2 := strings.CutSuffix(scope, "/chats")
	if !ok || !ok2 || r.Method != http.MethodPost {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	c.mu.Lock()
	c.seen[scope] = append(c.seen[scope], time.Now())
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"b6a3ea3c-33a5-4f7e-8a48-6a2a9a5b8e01","user":{"id":"u1","client_id":"c1","name":"Client"}}`)
}

func createChat(t *testing.T, c *kommo.Client, scope string) error {
	_, _, err := c.Chats.Create(testkit.Context(t), scope, &kommo.CreateChatRequest{
		ConversationID: "conv-1",
		User:           kommo.Participant{ID: "c1", Name: "Client"},
	})
	return err
}

// TestClientWithRedisLimiterPacesEachScope: a kommo.Client on the Redis
// limiter sends each scope's requests at the limiter's rate, and the two
// scopes side by side.
func TestClientWithRedisLimiterPacesEachScope(t *testing.T) {
	t.Parallel()
	const (
		rps = 20 // one slot every 50 ms
		n   = 6  // requests per scope
	)
	_, rdb := newRedis(t, false)
	rec := &chatRecorder{seen: make(map[string][]time.Time)}
	api := httptest.NewServer(rec)
	t.Cleanup(api.Close)
	l := must[*kommoredis.Limiter](t)(kommoredis.NewLimiter(rdb, rps, 1))
	client := must[*kommo.Client](t)(kommo.NewClient(kommo.WithChannel(testChannel, "secret"),
		kommo.WithChatBaseURL(api.URL+"/"), kommo.WithLimiter(l)))
	scopes := []string{
		must[string](t)(kommo.NewScopeID(testChannel, "0b8d6f3a-1c2e-4f5a-9b7c-3d2e1f0a9b8c")),
		must[string](t)(kommo.NewScopeID(testChannel, "7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9")),
	}
	var wg sync.WaitGroup
	for _, scope := range scopes {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.NoError(t, createChat(t, client, scope))
			}()
		}
	}
	wg.Wait()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, scope := range scopes {
		times := rec.seen[scope]
		require.Len(t, times, n, "scope %s", scope)
		sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
		// n requests at burst 1 need n-1 intervals (250 ms); half of it is
		// an honest margin for arrival jitter, and far above the few
		// milliseconds an unpaced burst takes.
		span := times[n-1].Sub(times[0])
		assert.GreaterOrEqual(t, span, (n-1)*time.Second/rps/2, "scope %s kept to the rate", scope)
	}
	a, b := rec.seen[scopes[0]], rec.seen[scopes[1]]
	assert.True(t, b[0].Before(a[n-1]) && a[0].Before(b[n-1]),
		"the scopes are paced side by side, not one after the other")
}

// TestLimiterRedisDown: with Redis gone, Take fails at once, and a client
// call fails with a *kommo.StoreError without sending.
func TestLimiterRedisDown(t *testing.T) {
	t.Parallel()
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	l := must[*kommoredis.Limiter](t)(kommoredis.NewLimiter(rdb, 7, 1))
	_, err := l.Take(ctx, "chat:warm", time.Time{}) // a pooled connection, to be broken
	require.NoError(t, err)
	srv.Stop()

	start := time.Now()
	_, err = l.Take(ctx, "chat:a", time.Time{})
	elapsed := time.Since(start)
	require.Error(t, err)
	assert.Less(t, elapsed, time.Second, "Take fails fast")
	assert.Contains(t, err.Error(), `kommoredis: limiter take "chat:a"`)

	rec := &chatRecorder{seen: make(map[string][]time.Time)}
	api := httptest.NewServer(rec)
	t.Cleanup(api.Close)
	client := must[*kommo.Client](t)(kommo.NewClient(kommo.WithChannel(testChannel, "secret"),
		kommo.WithChatBaseURL(api.URL+"/"), kommo.WithLimiter(l)))
	scope := must[string](t)(kommo.NewScopeID(testChannel, "0b8d6f3a-1c2e-4f5a-9b7c-3d2e1f0a9b8c"))
	start = time.Now()
	err = createChat(t, client, scope)
	elapsed = time.Since(start)
	var se *kommo.StoreError
	require.ErrorAs(t, err, &se)
	assert.True(t, errors.Is(err, kommo.ErrStoreUnavailable))
	assert.Equal(t, "limiter", se.Store)
	assert.Less(t, elapsed, time.Second, "the call fails fast")
	assert.Zero(t, rec.hits.Load(), "nothing was sent without the limiter's leave")
}

func TestLimiterOptionErrors(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	for _, tc := range []struct {
		rps   float64
		burst int
		opts  []kommoredis.Option
		want  string
	}{
		{0, 1, nil, "NewLimiter: rate must be positive and at most 1e6, got 0"},
		{7, 0, nil, "NewLimiter: burst 0 must be at least 1"},
		{7, 1, []kommoredis.Option{kommoredis.WithLease(time.Second)}, "WithLease: does not apply to NewLimiter"},
		{7, 1, []kommoredis.Option{kommoredis.WithPrefix("a{b}:")}, `WithPrefix: prefix "a{b}:" must not contain { or }`},
		{7, 1, []kommoredis.Option{kommoredis.WithTimeout(0)}, "WithTimeout: duration must be positive, got 0s"},
	} {
		_, err := kommoredis.NewLimiter(rdb, tc.rps, tc.burst, tc.opts...)
		require.Error(t, err)
		assert.EqualError(t, err, tc.want)
		assert.ErrorIs(t, err, kommo.ErrInvalidOption)
	}
	_, err := kommoredis.NewLimiter(nil, 7, 1)
	assert.EqualError(t, err, "NewLimiter: nil Redis client")
}

// TestConstructorsRejectAClientIgnoringContexts: a go-redis client with
// ContextTimeoutEnabled false (its default) would let a stuck Redis hold
// calls for seconds; every constructor refuses it.
func TestConstructorsRejectAClientIgnoringContexts(t *testing.T) {
	t.Parallel()
	for _, rdb := range []redis.UniversalClient{
		redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}),
		redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}}),
		redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}}),
	} {
		t.Cleanup(func() { _ = rdb.Close() })
		const want = ": the Redis client ignores contexts: set ContextTimeoutEnabled: true in its options, " +
			"so that a stuck Redis fails calls within the store's timeout"
		_, err := kommoredis.NewLimiter(rdb, 7, 1)
		assert.EqualError(t, err, "NewLimiter"+want)
		assert.ErrorIs(t, err, kommo.ErrInvalidOption)
		_, err = kommoredis.NewTokenStore(rdb)
		assert.EqualError(t, err, "NewTokenStore"+want)
		_, err = kommoredis.NewDedupe(rdb)
		assert.EqualError(t, err, "NewDedupe"+want)
		_, err = kommoredis.NewWebhookQueue(rdb, "hooks")
		assert.EqualError(t, err, "NewWebhookQueue"+want)
	}
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = cluster.Close() })
	_, err := kommoredis.NewWebhookQueue(cluster, "hooks")
	assert.NoError(t, err, "a cluster client that honours contexts")
}
