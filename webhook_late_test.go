package kommo_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
)

var errHookTestQueueClosed = errors.New("queue closed")

// A callback that ignores its context and finishes after the 500 has its
// outcome reported, with the event, and a late success is not recorded as
// handled: recovering the hook runs the callback again.
func TestWebhookHandler_LateOutcomeReported(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		outcome error
	}{
		{"late success", nil},
		{"late failure", errHookTestQueueClosed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := testkit.Fixture(t, "webhooks", "message_text.json")
			scope := kommo.ScopeID(hookTestChannel, hookTestAccount)
			release := make(chan struct{})
			var calls atomic.Int32
			sink := &hookTestSink{}
			h, err := kommo.NewWebhookHandler(hookTestSecret, func(ctx context.Context, ev kommo.WebhookEvent) error {
				if calls.Add(1) == 1 {
					<-release // past the deadline, ignoring ctx
					return tt.outcome
				}
				return nil
			}, kommo.WithWebhookTimeout(50*time.Millisecond), kommo.WithWebhookErrorHandler(sink.onError))
			require.NoError(t, err)
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			url := srv.URL + "/kommo/" + scope

			assert.Equal(t, http.StatusInternalServerError, hookTestPost(t, url, body))
			errs := sink.errors()
			require.Len(t, errs, 1)
			assert.ErrorIs(t, errs[0], kommo.ErrWebhookTimeout)

			close(release)
			require.Eventually(t, func() bool { return len(sink.errors()) == 2 }, 5*time.Second, time.Millisecond,
				"the late outcome reaches the error hook")
			late := sink.errors()[1]
			assert.ErrorIs(t, late, kommo.ErrWebhookLate)
			var le *kommo.WebhookLateError
			require.ErrorAs(t, late, &le)
			assert.Equal(t, scope, le.ScopeID)
			m, ok := le.Event.(*kommo.MessageEvent)
			require.Truef(t, ok, "event is %T", le.Event)
			assert.Equal(t, "0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a", m.Message.ID)
			if tt.outcome == nil {
				assert.NoError(t, le.Err, "a late success")
				assert.Contains(t, late.Error(), "succeeded")
			} else {
				assert.ErrorIs(t, late, errHookTestQueueClosed)
				assert.ErrorIs(t, late, kommo.ErrWebhookTimeout, "it failed after its deadline")
			}

			// The 500 stands in the dedupe store too: recovering the hook by
			// posting it again runs the callback.
			assert.Equal(t, http.StatusOK, hookTestPost(t, url, body))
			assert.Equal(t, int32(2), calls.Load(), "a late outcome is not recorded as handled")
			assert.Len(t, sink.errors(), 2)
		})
	}
}

// Callbacks that never return do not pile up: past the bound the handler
// answers 503 at once without starting another one, and recovers once they
// return.
func TestWebhookHandler_AbandonedCallbacksBounded(t *testing.T) {
	t.Parallel()
	const bound, hooks = 3, 12
	release := make(chan struct{})
	var running, started atomic.Int32
	sink := &hookTestSink{}
	h, err := kommo.NewWebhookHandler(hookTestSecret, func(ctx context.Context, ev kommo.WebhookEvent) error {
		started.Add(1)
		running.Add(1)
		defer running.Add(-1)
		<-release // never returns on its own, ignoring ctx
		return nil
	}, kommo.WithWebhookTimeout(20*time.Millisecond), kommo.WithWebhookMaxAbandoned(bound),
		kommo.WithWebhookErrorHandler(sink.onError), kommo.WithWebhookDedupe(nil))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	url := srv.URL + "/kommo/" + kommo.ScopeID(hookTestChannel, hookTestAccount)
	body := testkit.Fixture(t, "webhooks", "typing.json")

	var statuses []int
	for range hooks {
		statuses = append(statuses, hookTestPost(t, url, body))
	}
	want := make([]int, hooks)
	for i := range want {
		want[i] = http.StatusServiceUnavailable
		if i < bound {
			want[i] = http.StatusInternalServerError
		}
	}
	assert.Equal(t, want, statuses)
	assert.Equal(t, int32(bound), started.Load(), "no callback starts past the bound")
	assert.Equal(t, int32(bound), running.Load())
	var timeouts, overloaded int
	for _, e := range sink.errors() {
		switch {
		case errors.Is(e, kommo.ErrWebhookTimeout):
			timeouts++
		case errors.Is(e, kommo.ErrWebhookOverloaded):
			overloaded++
		}
	}
	assert.Equal(t, bound, timeouts)
	assert.Equal(t, hooks-bound, overloaded, "every 503 is reported")

	// Once they return (and their late outcomes are reported), hooks run again.
	released = true
	close(release)
	require.Eventually(t, func() bool { return len(sink.errors()) == hooks+bound }, 5*time.Second, time.Millisecond)
	assert.Equal(t, http.StatusOK, hookTestPost(t, url, body))
	assert.Equal(t, int32(bound+1), started.Load())
}

func TestWebhookHandler_MaxAbandonedOption(t *testing.T) {
	t.Parallel()
	ok := func(context.Context, kommo.WebhookEvent) error { return nil }
	for _, n := range []int{0, -1} {
		_, err := kommo.NewWebhookHandler(hookTestSecret, ok, kommo.WithWebhookMaxAbandoned(n))
		var oe *kommo.OptionError
		require.ErrorAs(t, err, &oe, n)
		assert.Equal(t, "WithWebhookMaxAbandoned", oe.Option)
		assert.ErrorIs(t, err, kommo.ErrInvalidOption)
	}
	_, err := kommo.NewWebhookHandler(hookTestSecret, ok, kommo.WithWebhookMaxAbandoned(1))
	assert.NoError(t, err)
}

// A burst of hooks whose callbacks all hang before the first times out
// is bounded too: no more than WithWebhookMaxConcurrent callbacks start,
// the rest are answered 503 at once, and the bound frees up as they return.
func TestWebhookHandler_ConcurrentCallbacksBounded(t *testing.T) {
	t.Parallel()
	const bound, hooks = 4, 10
	release := make(chan struct{})
	var started atomic.Int32
	sink := &hookTestSink{}
	h, err := kommo.NewWebhookHandler(hookTestSecret, func(ctx context.Context, ev kommo.WebhookEvent) error {
		started.Add(1)
		<-release
		return nil
	}, kommo.WithWebhookMaxConcurrent(bound), // the default 4 s deadline: released well before it
		kommo.WithWebhookErrorHandler(sink.onError), kommo.WithWebhookDedupe(nil))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	url := srv.URL + "/kommo/" + kommo.ScopeID(hookTestChannel, hookTestAccount)
	body := testkit.Fixture(t, "webhooks", "typing.json")

	statuses := make(chan int, hooks)
	for range hooks {
		go func() { statuses <- hookTestPost(t, url, body) }()
	}
	var got []int
	for range hooks - bound { // the 503s come at once, while the others hang
		got = append(got, <-statuses)
	}
	assert.Equal(t, slices.Repeat([]int{http.StatusServiceUnavailable}, hooks-bound), got)
	assert.Equal(t, int32(bound), started.Load(), "no callback starts past the bound")
	overloaded := 0
	for _, e := range sink.errors() {
		if errors.Is(e, kommo.ErrWebhookOverloaded) {
			overloaded++
		}
	}
	assert.Equal(t, hooks-bound, overloaded, "every 503 is reported")

	once.Do(func() { close(release) })
	for range bound {
		assert.Equal(t, http.StatusOK, <-statuses)
	}
	assert.Equal(t, http.StatusOK, hookTestPost(t, url, body), "the bound frees up once callbacks return")
	assert.Equal(t, int32(bound+1), started.Load())
}
