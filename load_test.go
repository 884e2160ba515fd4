package kommo_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// TestLoadRateLimitedSendsExactlyOnce sends 32×50 messages through one
// client to a fake Kommo that allows 7 requests per second and fails about
// 5 % of requests with 503, and loses the response of 20 processed sends.
// Every message must be stored exactly once, no caller may see a 429 (or
// any error), and no goroutine may be left behind. It takes about as long
// as 1,600 requests at 7 rps (~4 minutes); -short skips it.
func TestLoadRateLimitedSendsExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: ~4 minutes at Kommo's 7 rps")
	}
	const (
		workers = 32
		each    = 50
		rps     = 7
	)
	before := runtime.NumGoroutine()

	srv := kommotest.NewServer(kommotest.WithRateLimit(rps, rps), kommotest.WithRandomFailures(0.05, 42))
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	policy := kommo.DefaultRetryPolicy()
	policy.MaxAttempts = 8
	policy.BaseBackoff = 200 * time.Millisecond
	policy.MaxBackoff = 2 * time.Second
	client, err := srv.Client(
		kommo.WithHTTPClient(hc),
		kommo.WithRateLimit(rps, 1), // the SDK's default, stated for clarity
		kommo.WithRetryPolicy(policy),
	)
	require.NoError(t, err)
	scope := srv.Connect(srv.AccountAmojoID())
	require.NotEmpty(t, scope)
	srv.DropResponseNext(20) // processed, but the client never hears back: it must retry with the same msgid

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	var (
		mu   sync.Mutex
		ids  = make(map[string]bool)
		errs []error
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				sent, _, err := client.Messages.Send(ctx, scope, &kommo.SendMessageRequest{
					ConversationID: fmt.Sprintf("load-chat-%d", w),
					Sender:         &kommo.Participant{ID: fmt.Sprintf("load-client-%d", w), Name: "Load Client"},
					Message:        kommo.TextMessage(fmt.Sprintf("message %d from worker %d", i, w)),
					Silent:         true,
				})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					ids[sent.MsgID] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	require.Empty(t, errs, "every send succeeded: no 429 or other error reached the caller")
	require.Len(t, ids, workers*each, "every send returned its own msgid")

	stored := srv.AllMessages()
	perID := make(map[string]int, len(stored))
	for _, m := range stored {
		perID[m.MsgID]++
	}
	assert.Len(t, stored, workers*each, "stored exactly once")
	for id := range ids {
		assert.Equal(t, 1, perID[id], "message %s stored once", id)
	}

	var faults, tooMany, dropped int
	for _, r := range srv.Requests() {
		switch {
		case r.Status == http.StatusTooManyRequests:
			tooMany++
		case r.Status == http.StatusServiceUnavailable:
			faults++
		case r.Status == 0:
			dropped++
		}
	}
	t.Logf("server answered %d requests: %d random 503s, %d dropped responses, %d 429s", len(srv.Requests()), faults, dropped, tooMany)
	assert.Positive(t, faults, "random 503s were injected")
	assert.Equal(t, 20, dropped, "dropped responses were injected and retried")
	assert.Zero(t, tooMany, "the client-side limiter kept under the server's limit")

	srv.Close()
	hc.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before, "no goroutines left behind")
}
