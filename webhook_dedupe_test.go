package kommo_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
)

// Two validly signed bodies with the same message id but other content are
// two events: the second must run the callback (and be reported), while an
// exact replay of either is still acknowledged without running it.
func TestWebhookHandler_DedupeKeysOnIDAndBody(t *testing.T) {
	t.Parallel()
	first := testkit.Fixture(t, "webhooks", "message_text.json")
	second := bytes.Replace(first, []byte(`"text":"Hello, \u0412\u0430\u0441\u044f!"`), []byte(`"text":"Hello again"`), 1)
	require.NotEqual(t, first, second)
	for _, store := range []struct {
		name string
		opts []kommo.WebhookHandlerOption
	}{
		{"default store", nil},
		{"given store", []kommo.WebhookHandlerOption{kommo.WithWebhookDedupe(kommo.NewMemoryDedupe(100))}},
	} {
		t.Run(store.name, func(t *testing.T) {
			t.Parallel()
			sink := &hookTestSink{}
			h, err := kommo.NewWebhookHandler(hookTestSecret, sink.callback,
				append([]kommo.WebhookHandlerOption{kommo.WithWebhookErrorHandler(sink.onError)}, store.opts...)...)
			require.NoError(t, err)
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			url := srv.URL + "/kommo/" + kommo.ScopeID(hookTestChannel, hookTestAccount)

			assert.Equal(t, http.StatusOK, hookTestPost(t, url, first))
			assert.Equal(t, http.StatusOK, hookTestPost(t, url, first), "exact replay")
			assert.Equal(t, 1, sink.calls(), "an exact replay does not run the callback")
			assert.Empty(t, sink.errors(), "an exact replay is not an error")

			assert.Equal(t, http.StatusOK, hookTestPost(t, url, second))
			require.Equal(t, 2, sink.calls(), "same id, other bytes: the callback runs")
			errs := sink.errors()
			require.Len(t, errs, 1, "the collision is reported")
			assert.ErrorIs(t, errs[0], kommo.ErrWebhookDedupeCollision)
			assert.NotErrorIs(t, errs[0], kommo.ErrWebhookDedupe, "not a store failure")

			assert.Equal(t, http.StatusOK, hookTestPost(t, url, second), "exact replay of the second")
			assert.Equal(t, http.StatusOK, hookTestPost(t, url, first), "exact replay of the first")
			assert.Equal(t, 2, sink.calls())
			assert.Len(t, sink.errors(), 1)

			sink.mu.Lock()
			defer sink.mu.Unlock()
			assert.Equal(t, "Hello again", sink.events[1].(*kommo.MessageEvent).Message.Text)
		})
	}
}

// A failed first attempt leaves no trace: the replay runs again and is not
// taken for a collision.
func TestWebhookHandler_DedupeReplayAfterFailureIsNoCollision(t *testing.T) {
	t.Parallel()
	body := testkit.Fixture(t, "webhooks", "message_file.json")
	var calls atomic.Int32
	sink := &hookTestSink{}
	h, err := kommo.NewWebhookHandler(hookTestSecret, func(ctx context.Context, ev kommo.WebhookEvent) error {
		if calls.Add(1) == 1 {
			return errors.New("queue full")
		}
		return nil
	}, kommo.WithWebhookErrorHandler(sink.onError))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	url := srv.URL + "/kommo/" + kommo.ScopeID(hookTestChannel, hookTestAccount)

	assert.Equal(t, http.StatusInternalServerError, hookTestPost(t, url, body))
	assert.Equal(t, http.StatusOK, hookTestPost(t, url, body))
	assert.Equal(t, http.StatusOK, hookTestPost(t, url, body))
	assert.Equal(t, int32(2), calls.Load())
	errs := sink.errors()
	require.Len(t, errs, 1, "only the failure")
	assert.ErrorIs(t, errs[0], kommo.ErrWebhookCallback)
}
