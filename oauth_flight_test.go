package kommo

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTokenSourceWaitersLeaveOnTheirContext: the token endpoint stalls (up
// to 3 s) on the one refresh; 5 callers with 200 ms deadlines each return
// within their deadline plus a margin with their context's error, while
// the refresh is still in flight; exactly one request reaches the
// endpoint; once the stall ends, the next call gets the refreshed token
// without another request.
func TestTokenSourceWaitersLeaveOnTheirContext(t *testing.T) {
	ep := newRotatingEndpoint(t)
	release := make(chan struct{})
	ep.setStall(func(*http.Request) {
		select {
		case <-release:
		case <-time.After(3 * time.Second):
		}
	})
	ts, err := NewTokenSource(context.Background(), ep.config(), &oauthMemStore{tok: expiredPair()})
	require.NoError(t, err)

	const n = 5
	const deadline = 200 * time.Millisecond
	took := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			_, errs[i] = oauthTokenContext(ctx, ts)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i := range n {
		t.Logf("caller %d: %v after %v", i, errs[i], took[i])
		assert.ErrorIs(t, errs[i], context.DeadlineExceeded, "caller %d", i)
		assert.Less(t, took[i], 1500*time.Millisecond, "caller %d waited past its deadline", i)
	}
	assert.Equal(t, int32(1), ep.requests.Load(), "one refresh in flight for all callers")

	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tok, err := oauthTokenContext(ctx, ts)
	require.NoError(t, err)
	assert.Equal(t, "a1", tok.AccessToken)
	assert.Equal(t, int32(1), ep.requests.Load(), "the refresh that was in flight is used")
}

// TestTokenSourceSharesRefreshFailure: the one refresh fails after a
// stall; every caller that waited for it gets its error, and none of them
// sends a refresh of its own.
func TestTokenSourceSharesRefreshFailure(t *testing.T) {
	ep := newRotatingEndpoint(t)
	ep.status.Store(http.StatusServiceUnavailable)
	ep.setStall(func(*http.Request) { time.Sleep(300 * time.Millisecond) })
	ts, err := NewTokenSource(context.Background(), ep.config(), &oauthMemStore{tok: expiredPair()})
	require.NoError(t, err)

	const n = 5
	errs := make([]error, n)
	took := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			_, errs[i] = oauthTokenContext(ctx, ts)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i := range n {
		t.Logf("caller %d: %v after %v", i, errs[i], took[i])
		assert.ErrorIs(t, errs[i], ErrServer, "caller %d", i)
		assert.Less(t, took[i], 2*time.Second, "caller %d", i)
	}
	assert.Equal(t, int32(1), ep.requests.Load(), "the callers share the one failed refresh")

	// The next call after the failure tries again.
	ep.status.Store(0)
	ep.setStall(nil)
	tok, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, "a1", tok.AccessToken)
	assert.Equal(t, int32(2), ep.requests.Load())
}
