package kommoredis_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommoredis"
)

func delivery(id string) *kommo.WebhookDelivery {
	return &kommo.WebhookDelivery{ID: id, ScopeID: "chan_acct", Body: []byte(`{"message":{"id":"` + id + `"}}`),
		ReceivedAt: time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)}
}

func newQueue(t *testing.T, rdb redis.UniversalClient, opts ...kommoredis.Option) *kommoredis.WebhookQueue {
	t.Helper()
	return must[*kommoredis.WebhookQueue](t)(kommoredis.NewWebhookQueue(rdb, "hooks", append([]kommoredis.Option{kommoredis.WithPoll(50 * time.Millisecond)}, opts...)...))
}

// receiveWithin receives with a deadline; nil when nothing came.
func receiveWithin(t *testing.T, q *kommoredis.WebhookQueue, d time.Duration) *kommo.WebhookDelivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(testkit.Context(t), d)
	defer cancel()
	got, err := q.Receive(ctx)
	if err != nil {
		require.ErrorIs(t, err, context.DeadlineExceeded)
		return nil
	}
	return got
}

func TestQueueEnqueueReceiveAck(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	q := newQueue(t, rdb)
	in := delivery("e1")
	require.NoError(t, q.Enqueue(ctx, in))

	got, err := q.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "e1", got.ID)
	assert.Equal(t, "chan_acct", got.ScopeID)
	assert.Equal(t, in.Body, got.Body)
	assert.True(t, in.ReceivedAt.Equal(got.ReceivedAt))
	assert.Zero(t, got.Attempts)
	assert.NotEmpty(t, got.Receipt)

	queued, dead, err := q.Len(ctx)
	require.NoError(t, err)
	assert.Equal(t, [2]int64{1, 0}, [2]int64{queued, dead}, "leased is still queued")

	require.NoError(t, q.Ack(ctx, got))
	assert.ErrorContains(t, q.Ack(ctx, got), "is not leased", "a second ack")
	queued, _, err = q.Len(ctx)
	require.NoError(t, err)
	assert.Zero(t, queued, "acked and deleted from the stream")
	assert.Nil(t, receiveWithin(t, q, 150*time.Millisecond), "nothing left")

	keys, err := rdb.Keys(ctx, "*").Result()
	require.NoError(t, err)
	sort.Strings(keys)
	assert.Equal(t, []string{"kommo:{q:hooks}:seen:e1", "kommo:{q:hooks}:stream"}, keys, "the documented keys")
	assert.Error(t, q.Ack(ctx, &kommo.WebhookDelivery{ID: "x"}), "never received")
}

func TestQueueRetryWhenDue(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	q := newQueue(t, rdb)
	require.NoError(t, q.Enqueue(ctx, delivery("e1")))
	got, err := q.Receive(ctx)
	require.NoError(t, err)

	got.Attempts, got.LastError = 1, "callback failed"
	const delay = 500 * time.Millisecond
	retried := time.Now()
	require.NoError(t, q.Retry(ctx, got, retried.Add(delay)))
	assert.Nil(t, receiveWithin(t, q, 250*time.Millisecond), "not received before it is due")

	again, err := q.Receive(ctx)
	require.NoError(t, err)
	took := time.Since(retried)
	assert.GreaterOrEqual(t, took, delay-50*time.Millisecond, "received once due (Redis's clock, 1 ms resolution)")
	assert.Less(t, took, delay+2*time.Second)
	assert.Equal(t, "e1", again.ID)
	assert.Equal(t, 1, again.Attempts)
	assert.Equal(t, "callback failed", again.LastError)
	assert.Equal(t, got.Body, again.Body)
	require.NoError(t, q.Ack(ctx, again))
	assert.ErrorContains(t, q.Retry(ctx, again, time.Now()), "is not leased")
}

func TestQueueBuryDeadLettersReplay(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	q := newQueue(t, rdb)
	for _, id := range []string{"e1", "e2"} {
		require.NoError(t, q.Enqueue(ctx, delivery(id)))
		got, err := q.Receive(ctx)
		require.NoError(t, err)
		got.Attempts, got.LastError = 5, "gave up on "+id
		require.NoError(t, q.Bury(ctx, got))
	}
	assert.Nil(t, receiveWithin(t, q, 150*time.Millisecond), "buried deliveries are not received")

	dead, err := q.DeadLetters(ctx, 10)
	require.NoError(t, err)
	require.Len(t, dead, 2)
	assert.Equal(t, []string{"e1", "e2"}, []string{dead[0].ID, dead[1].ID}, "oldest first")
	assert.Equal(t, 5, dead[0].Attempts)
	assert.Equal(t, "gave up on e1", dead[0].LastError)
	one, err := q.DeadLetters(ctx, 1)
	require.NoError(t, err)
	assert.Len(t, one, 1)
	none, err := q.DeadLetters(ctx, 0)
	require.NoError(t, err)
	assert.Empty(t, none)

	ok, err := q.Replay(ctx, "e2")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = q.Replay(ctx, "e2")
	require.NoError(t, err)
	assert.False(t, ok, "replayed already")
	ok, err = q.Replay(ctx, "nope")
	require.NoError(t, err)
	assert.False(t, ok)

	got, err := q.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "e2", got.ID)
	assert.Zero(t, got.Attempts, "attempts reset")
	assert.Empty(t, got.LastError)
	require.NoError(t, q.Ack(ctx, got))
	dead, err = q.DeadLetters(ctx, 10)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.Equal(t, "e1", dead[0].ID)
	_, n, err := q.Len(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

// TestQueueLeaseExpires: a delivery received and never acknowledged (its
// worker died) is received by another consumer after the lease, not before.
func TestQueueLeaseExpires(t *testing.T) {
	t.Parallel()
	const lease = 400 * time.Millisecond
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	dies := newQueue(t, rdb, kommoredis.WithLease(lease), kommoredis.WithConsumer("dies"))
	lives := newQueue(t, newClient(t, srv.Addr()), kommoredis.WithLease(lease), kommoredis.WithConsumer("lives"))
	require.NoError(t, dies.Enqueue(ctx, delivery("e1")))
	first, err := dies.Receive(ctx)
	require.NoError(t, err)
	leased := time.Now()

	assert.Nil(t, receiveWithin(t, lives, lease/2), "leased: not received by another before the lease ends")
	again, err := lives.Receive(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(leased), lease-50*time.Millisecond)
	assert.Equal(t, "e1", again.ID)
	assert.Equal(t, first.Receipt, again.Receipt, "the same entry")
	require.NoError(t, lives.Ack(ctx, again))
	assert.ErrorContains(t, dies.Ack(ctx, first), "is not leased", "the late worker's ack finds it handled")
}

// TestQueueTwoConsumersEachOnce: with nobody dying, two consumers receive
// every delivery exactly once between them.
func TestQueueTwoConsumersEachOnce(t *testing.T) {
	t.Parallel()
	const n = 60
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	queues := []*kommoredis.WebhookQueue{newQueue(t, rdb), newQueue(t, newClient(t, srv.Addr()))}
	require.NotEqual(t, queues[0].Consumer(), queues[1].Consumer(), "default consumer names are unique")
	for i := range n {
		require.NoError(t, queues[i%2].Enqueue(ctx, delivery(fmt.Sprintf("e%02d", i))))
	}
	var (
		mu   sync.Mutex
		seen []string
		per  [2]int
		wg   sync.WaitGroup
	)
	for w, q := range queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				d := receiveWithin(t, q, 300*time.Millisecond)
				if d == nil {
					return // drained
				}
				mu.Lock()
				seen = append(seen, d.ID)
				per[w]++
				mu.Unlock()
				assert.NoError(t, q.Ack(ctx, d))
			}
		}()
	}
	wg.Wait()
	sort.Strings(seen)
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("e%02d", i)
	}
	assert.Equal(t, want, seen, "each delivery once")
	t.Logf("consumer shares: %v", per)
}

// TestQueueSurvivesRedisRestart: with appendonly yes, deliveries enqueued
// before Redis is killed are received after it restarts, and one received
// but not acknowledged comes back after its lease.
func TestQueueSurvivesRedisRestart(t *testing.T) {
	t.Parallel()
	const lease = 300 * time.Millisecond
	srv, rdb := newRedis(t, true)
	ctx := testkit.Context(t)
	q := newQueue(t, rdb, kommoredis.WithLease(lease))
	for _, id := range []string{"e1", "e2", "e3"} {
		require.NoError(t, q.Enqueue(ctx, delivery(id)))
	}
	leased, err := q.Receive(ctx)
	require.NoError(t, err)
	require.Equal(t, "e1", leased.ID)

	srv.Restart() // SIGKILL: only the append-only file brings them back

	var got []string
	for len(got) < 3 {
		d := receiveWithin(t, q, 5*time.Second)
		require.NotNil(t, d, "lost in the restart after %v", got)
		got = append(got, d.ID)
		require.NoError(t, q.Ack(ctx, d))
	}
	sort.Strings(got)
	assert.Equal(t, []string{"e1", "e2", "e3"}, got)
	assert.Nil(t, receiveWithin(t, q, lease+200*time.Millisecond), "nothing twice")
}

func TestQueueRedisDown(t *testing.T) {
	t.Parallel()
	srv, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	q := newQueue(t, rdb)
	srv.Stop()
	start := time.Now()
	err := q.Enqueue(ctx, delivery("e1"))
	require.Error(t, err)
	assert.Less(t, time.Since(start), time.Second, "Enqueue fails fast")
	_, err = q.Receive(ctx)
	assert.ErrorContains(t, err, `kommoredis: queue create group "hooks"`)
}

func TestQueueOptionErrors(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	for _, tc := range []struct {
		name string
		opts []kommoredis.Option
		want string
	}{
		{"", nil, "NewWebhookQueue: empty queue name"},
		{"a{b}", nil, `NewWebhookQueue: queue name "a{b}" must not contain { or }`},
		{"q", []kommoredis.Option{kommoredis.WithLease(0)}, "WithLease: duration must be positive, got 0s"},
		{"q", []kommoredis.Option{kommoredis.WithConsumer("")}, "WithConsumer: empty consumer name"},
		{"q", []kommoredis.Option{kommoredis.WithLockTTL(time.Second)}, "WithLockTTL: does not apply to NewWebhookQueue"},
		{"q", []kommoredis.Option{nil}, "NewWebhookQueue: nil option"},
	} {
		_, err := kommoredis.NewWebhookQueue(rdb, tc.name, tc.opts...)
		assert.EqualError(t, err, tc.want)
	}
}

// Enqueue drops a copy of a delivery it took: an event runs once however
// often its webhook arrives.
func TestWebhookQueueEnqueueDropsCopies(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	q, err := kommoredis.NewWebhookQueue(rdb, "copies", kommoredis.WithSeenTTL(time.Minute))
	require.NoError(t, err)
	ctx := testkit.Context(t)
	d := &kommo.WebhookDelivery{ID: "message:abc:01", ScopeID: "s", Body: []byte(`{}`)}
	require.NoError(t, q.Enqueue(ctx, d))
	require.NoError(t, q.Enqueue(ctx, d), "a copy is not an error")
	n, err := rdb.XLen(ctx, "kommo:{q:copies}:stream").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "one entry")
	ttl, err := rdb.PTTL(ctx, "kommo:{q:copies}:seen:message:abc:01").Result()
	require.NoError(t, err)
	assert.InDelta(t, time.Minute.Seconds(), ttl.Seconds(), 5)

	_, err = kommoredis.NewDedupe(rdb, kommoredis.WithSeenTTL(time.Minute))
	var oe *kommo.OptionError
	require.ErrorAs(t, err, &oe, "WithSeenTTL is the queue's")
}

// TestQueueReceiveEndsWithItsContext: a canceled Receive returns within
// about one poll time, with the context's error.
func TestQueueReceiveEndsWithItsContext(t *testing.T) {
	t.Parallel()
	const poll = 300 * time.Millisecond
	_, rdb := newRedis(t, false)
	q := must[*kommoredis.WebhookQueue](t)(kommoredis.NewWebhookQueue(rdb, "hooks", kommoredis.WithPoll(poll)))
	ctx, cancel := context.WithCancel(testkit.Context(t))
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := q.Receive(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), poll+time.Second)
}

// TestQueueRecreatesItsGroup: when the stream and its group are gone (a
// Redis without persistence restarted), the queue creates the group again.
func TestQueueRecreatesItsGroup(t *testing.T) {
	t.Parallel()
	_, rdb := newRedis(t, false)
	ctx := testkit.Context(t)
	q := newQueue(t, rdb)
	require.NoError(t, q.Enqueue(ctx, delivery("e1")))
	got, err := q.Receive(ctx)
	require.NoError(t, err)
	require.NoError(t, q.Ack(ctx, got))

	require.NoError(t, rdb.FlushAll(ctx).Err())
	require.NoError(t, q.Enqueue(ctx, delivery("e2")))
	got, err = q.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "e2", got.ID)
}
