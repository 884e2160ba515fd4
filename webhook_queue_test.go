package kommo_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
)

func queueTestDelivery(id string) *kommo.WebhookDelivery {
	return &kommo.WebhookDelivery{ID: id, ScopeID: kommo.ScopeID(hookTestChannel, hookTestAccount), Body: []byte(`{}`), ReceivedAt: time.Unix(1, 0)}
}

func TestMemoryWebhookQueue(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	q, err := kommo.NewMemoryWebhookQueue(3)
	require.NoError(t, err)

	require.NoError(t, q.Enqueue(ctx, queueTestDelivery("a")))
	require.NoError(t, q.Enqueue(ctx, queueTestDelivery("a")), "a second copy is dropped, not an error")
	require.NoError(t, q.Enqueue(ctx, queueTestDelivery("b")))
	queued, dead := q.Len()
	assert.Equal(t, [2]int{2, 0}, [2]int{queued, dead}, "the copy of a was dropped")

	d, err := q.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "a", d.ID, "first in, first out")
	assert.Equal(t, []byte(`{}`), d.Body)
	require.NoError(t, q.Ack(ctx, d))
	require.Error(t, q.Ack(ctx, d), "a delivery is acknowledged once")

	// Retry: not received before it is due.
	d, err = q.Receive(ctx)
	require.NoError(t, err)
	require.Equal(t, "b", d.ID)
	d.Attempts, d.LastError = 1, "boom"
	require.NoError(t, q.Retry(ctx, d, time.Now().Add(150*time.Millisecond)))
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = q.Receive(short)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "nothing is due yet")
	d, err = q.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "b", d.ID)
	assert.Equal(t, 1, d.Attempts)
	assert.Equal(t, "boom", d.LastError)

	// Bury, list, replay.
	require.NoError(t, q.Bury(ctx, d))
	letters, err := q.DeadLetters(ctx, 10)
	require.NoError(t, err)
	require.Len(t, letters, 1)
	assert.Equal(t, "b", letters[0].ID)
	assert.Equal(t, "boom", letters[0].LastError)
	ok, err := q.Replay(ctx, "nope")
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = q.Replay(ctx, "b")
	require.NoError(t, err)
	assert.True(t, ok)
	d, err = q.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "b", d.ID)
	assert.Zero(t, d.Attempts, "a replay starts over")
	require.NoError(t, q.Ack(ctx, d))

	// Capacity.
	for _, id := range []string{"c", "d", "e"} {
		require.NoError(t, q.Enqueue(ctx, queueTestDelivery(id)))
	}
	require.Error(t, q.Enqueue(ctx, queueTestDelivery("f")), "full")

	_, err = kommo.NewMemoryWebhookQueue(0)
	var oe *kommo.OptionError
	require.ErrorAs(t, err, &oe)
}

// queueTestRig is a handler with a queue and a worker on it.
type queueTestRig struct {
	url   string
	queue *kommo.MemoryWebhookQueue
	sink  *hookTestSink
}

func newQueueTestRig(t *testing.T, q kommo.WebhookQueue, inline kommo.WebhookFunc) *queueTestRig {
	t.Helper()
	rig := &queueTestRig{sink: &hookTestSink{}}
	if mq, ok := q.(*kommo.MemoryWebhookQueue); ok {
		rig.queue = mq
	}
	h, err := kommo.NewWebhookHandler(hookTestSecret, inline, kommo.WithWebhookQueue(q),
		kommo.WithWebhookErrorHandler(rig.sink.onError))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	rig.url = srv.URL + "/kommo/" + kommo.ScopeID(hookTestChannel, hookTestAccount)
	return rig
}

// With a queue the handler answers 200 without running the callback; the
// worker runs it, once per event even when the webhook arrives twice.
func TestWebhookQueue_HandlerEnqueuesWorkerRuns(t *testing.T) {
	t.Parallel()
	q, err := kommo.NewMemoryWebhookQueue(100)
	require.NoError(t, err)
	var inline atomic.Int32
	rig := newQueueTestRig(t, q, func(context.Context, kommo.WebhookEvent) error { inline.Add(1); return nil })

	body := testkit.Fixture(t, "webhooks", "message_text.json")
	assert.Equal(t, http.StatusOK, hookTestPost(t, rig.url, body))
	assert.Equal(t, http.StatusOK, hookTestPost(t, rig.url, body), "a copy is answered 200 too")
	assert.Equal(t, http.StatusOK, hookTestPost(t, rig.url, testkit.Fixture(t, "webhooks", "typing.json")))
	assert.Zero(t, inline.Load(), "the handler does not run the callback")
	queued, _ := q.Len()
	assert.Equal(t, 2, queued, "two events: the copy was dropped")

	got := &hookTestSink{}
	w, err := kommo.NewWebhookWorker(q, got.callback, kommo.WithWorkerConcurrency(2))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(testkit.Context(t))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	require.Eventually(t, func() bool { return got.calls() == 2 }, 5*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, 2, got.calls())
	got.mu.Lock()
	defer got.mu.Unlock()
	kinds := []kommo.WebhookKind{got.events[0].Kind(), got.events[1].Kind()}
	assert.ElementsMatch(t, []kommo.WebhookKind{kommo.WebhookKindMessage, kommo.WebhookKindTyping}, kinds)
	assert.Equal(t, []string{kommo.ScopeID(hookTestChannel, hookTestAccount), kommo.ScopeID(hookTestChannel, hookTestAccount)}, got.scopes,
		"the worker's callback sees the scope id of the URL")
	queued, dead := q.Len()
	assert.Equal(t, [2]int{0, 0}, [2]int{queued, dead})
}

// A callback that keeps failing runs MaxAttempts times, then the delivery
// is a dead letter and Kommo hears of the message as delivery status -1.
func TestWebhookWorker_DeadLetterReportsDeliveryStatus(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		status []string
		bodies [][]byte
	)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		status = append(status, r.Method+" "+r.URL.Path)
		bodies = append(bodies, b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(api.Close)
	client, err := kommo.NewClient(kommo.WithChannel(hookTestChannel, hookTestSecret),
		kommo.WithChatBaseURL(api.URL+"/"), kommo.WithRateLimit(0, 0))
	require.NoError(t, err)

	q, err := kommo.NewMemoryWebhookQueue(10)
	require.NoError(t, err)
	rig := newQueueTestRig(t, q, func(context.Context, kommo.WebhookEvent) error { return nil })
	require.Equal(t, http.StatusOK, hookTestPost(t, rig.url, testkit.Fixture(t, "webhooks", "message_text.json")))

	var runs atomic.Int32
	var (
		emu  sync.Mutex
		errs []error
	)
	policy := kommo.DefaultWebhookWorkerRetry()
	policy.MaxAttempts, policy.BaseBackoff, policy.MaxBackoff = 3, time.Millisecond, time.Millisecond
	var observed []error
	obs := &kommo.Observer{WebhookCallbackDone: func(_ context.Context, ev kommo.WebhookCallbackDone) {
		emu.Lock()
		defer emu.Unlock()
		assert.Equal(t, kommo.WebhookKindMessage, ev.Kind)
		assert.Equal(t, kommo.ScopeID(hookTestChannel, hookTestAccount), ev.ScopeID)
		observed = append(observed, ev.Err)
	}}
	w, err := kommo.NewWebhookWorker(q, func(context.Context, kommo.WebhookEvent) error {
		runs.Add(1)
		return errors.New("downstream is down")
	}, kommo.WithWorkerRetry(policy), kommo.WithWorkerDeliveryStatus(client), kommo.WithWorkerObserver(obs),
		kommo.WithWorkerErrorHandler(func(d *kommo.WebhookDelivery, err error) {
			emu.Lock()
			errs = append(errs, err)
			emu.Unlock()
		}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(testkit.Context(t))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	require.Eventually(t, func() bool { _, dead := q.Len(); return dead == 1 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(status) == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	assert.Equal(t, int32(3), runs.Load(), "MaxAttempts runs, no more")
	letters, err := q.DeadLetters(testkit.Context(t), 10)
	require.NoError(t, err)
	require.Len(t, letters, 1)
	assert.Equal(t, 3, letters[0].Attempts)
	assert.Contains(t, letters[0].LastError, "downstream is down")

	scope := kommo.ScopeID(hookTestChannel, hookTestAccount)
	assert.Equal(t, []string{"POST /v2/origin/custom/" + scope + "/0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a/delivery_status"}, status)
	var sent map[string]any
	require.NoError(t, json.Unmarshal(bodies[0], &sent))
	assert.Equal(t, map[string]any{"status_code": float64(-1), "error_code": float64(905),
		"error": "The message could not be delivered (3 attempts)"}, sent)

	emu.Lock()
	defer emu.Unlock()
	var failed, deadLetter int
	for _, e := range errs {
		switch {
		case errors.Is(e, kommo.ErrWebhookDeadLetter):
			deadLetter++
		case errors.Is(e, kommo.ErrWebhookCallback):
			failed++
		}
	}
	assert.Equal(t, 3, failed, "each failed run is reported")
	require.Len(t, observed, 3, "each run is observed")
	for _, e := range observed {
		assert.ErrorIs(t, e, kommo.ErrWebhookCallback)
	}
	assert.Equal(t, 1, deadLetter, "the dead letter is reported")
}

// failingQueue is a WebhookQueue whose store is down.
type failingQueue struct{ kommo.WebhookQueue }

func (failingQueue) Enqueue(context.Context, *kommo.WebhookDelivery) error {
	return errors.New("dial tcp 127.0.0.1:6379: connection refused")
}

// When the queue is down the handler runs the callback inline, so the
// webhook Kommo sends once is not lost, and reports the fallback.
func TestWebhookQueue_FallbackRunsInline(t *testing.T) {
	t.Parallel()
	sink := &hookTestSink{}
	rig := newQueueTestRig(t, failingQueue{}, sink.callback)
	assert.Equal(t, http.StatusOK, hookTestPost(t, rig.url, testkit.Fixture(t, "webhooks", "message_text.json")))
	assert.Equal(t, 1, sink.calls(), "the callback ran inline")
	errs := rig.sink.errors()
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], kommo.ErrWebhookQueueFallback)
	var se *kommo.StoreError
	require.ErrorAs(t, errs[0], &se)
	assert.Equal(t, "webhook queue", se.Store)
	assert.Equal(t, "Enqueue", se.Op)
	assert.ErrorIs(t, errs[0], kommo.ErrStoreUnavailable)
}

func TestNewWebhookWorker_Options(t *testing.T) {
	t.Parallel()
	q, err := kommo.NewMemoryWebhookQueue(1)
	require.NoError(t, err)
	ok := func(context.Context, kommo.WebhookEvent) error { return nil }
	_, err = kommo.NewWebhookWorker(nil, nil, kommo.WithWorkerConcurrency(0), kommo.WithWorkerTimeout(0),
		kommo.WithWorkerRetry(kommo.RetryPolicy{}), kommo.WithWorkerDeliveryStatus(nil), kommo.WithWorkerClock(nil),
		kommo.WithWorkerLogger(nil), kommo.WithWorkerErrorHandler(nil), kommo.WithWorkerObserver(nil), nil)
	var oe *kommo.OptionError
	require.ErrorAs(t, err, &oe)
	for _, want := range []string{"nil queue", "nil callback", "WithWorkerConcurrency", "WithWorkerTimeout", "WithWorkerRetry",
		"WithWorkerDeliveryStatus", "WithWorkerClock", "WithWorkerLogger", "WithWorkerErrorHandler", "WithWorkerObserver", "nil option"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = kommo.NewWebhookWorker(q, ok)
	require.NoError(t, err)
	_, err = kommo.NewWebhookHandler(hookTestSecret, ok, kommo.WithWebhookQueue(nil))
	require.ErrorAs(t, err, &oe)
	_, err = kommo.NewWebhookHandler(hookTestSecret, ok, kommo.WithWebhookMaxConcurrent(0))
	require.ErrorAs(t, err, &oe)
}
