package kommoredis_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommoredis"
)

// TestWebhookHandlersShareRedisDedupe: two webhook handlers (two
// instances) on one Redis run the callback once for copies of one
// webhook posted to both at once.
func TestWebhookHandlersShareRedisDedupe(t *testing.T) {
	t.Parallel()
	const secret = "hook-secret"
	srv, rdb := newRedis(t, false)
	body, err := os.ReadFile("../testdata/webhooks/message_text.json")
	require.NoError(t, err)

	var calls atomic.Int64
	var urls []string
	for range 2 {
		d := must[*kommoredis.Dedupe](t)(kommoredis.NewDedupe(newClient(t, srv.Addr())))
		h, err := kommo.NewWebhookHandler(secret, func(context.Context, kommo.WebhookEvent) error {
			calls.Add(1)
			return nil
		}, kommo.WithWebhookDedupe(d))
		require.NoError(t, err)
		mux := http.NewServeMux()
		mux.Handle("POST /hook/", h)
		hs := httptest.NewServer(mux)
		t.Cleanup(hs.Close)
		urls = append(urls, hs.URL+"/hook/no-account-part")
	}

	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, urls[i%2], bytes.NewReader(body))
			if !assert.NoError(t, err) {
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Signature", kommo.SignWebhookBody(body, secret))
			resp, err := http.DefaultClient.Do(req)
			if !assert.NoError(t, err) {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(1), calls.Load(), "one callback across both instances")
	keys, err := rdb.Keys(t.Context(), "kommo:dedupe:*").Result()
	require.NoError(t, err)
	assert.Len(t, keys, 2, "a message hook takes its exact key and its id key")
	for _, k := range keys {
		v, err := rdb.Get(t.Context(), k).Result()
		require.NoError(t, err)
		assert.Equal(t, "done", v, k)
	}
}
