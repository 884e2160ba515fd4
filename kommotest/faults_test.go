package kommotest_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo/kommotest"
)

// sendRequest builds a signed incoming-message request.
func (e *ktEnv) sendRequest(conv, msgid string) *http.Request {
	e.t.Helper()
	req, _ := e.chatRequest(http.MethodPost, e.scopePath(""), map[string]any{"event_type": "new_message", "payload": map[string]any{
		"msgid": msgid, "conversation_id": conv, "sender": map[string]any{"id": "user-1", "name": "Client"},
		"message": map[string]any{"type": "text", "text": "hi"}}})
	return req
}

func TestFailNext(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	e.srv.FailNext(2, http.StatusServiceUnavailable, "3")
	assert.Equal(t, 2, e.srv.PendingFaults())

	resp, data := e.send("c1", "m1", "hi")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "3", resp.Header.Get("Retry-After"))
	assert.EqualValues(t, 503, data["error_code"], "Chat API error shape")
	assert.Empty(t, e.srv.AllMessages(), "a failed request changes nothing")

	resp, body := e.crm(http.MethodGet, "/api/v4/account", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.EqualValues(t, 503, decode(t, body)["status"])

	resp, data = e.send("c1", "m1", "hi")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "m1", newMessage(t, data)["ref_id"])
	assert.Len(t, e.srv.AllMessages(), 1)

	reqs := e.srv.Requests()
	require.Len(t, reqs, 4) // connect, 2 faulted, 1 ok
	assert.Equal(t, []string{"", "status", "status", ""}, []string{reqs[0].Fault, reqs[1].Fault, reqs[2].Fault, reqs[3].Fault})
	assert.Equal(t, []int{200, 503, 503, 200}, []int{reqs[0].Status, reqs[1].Status, reqs[2].Status, reqs[3].Status})
	assert.Equal(t, "/api/v4/account", reqs[2].Path)
	assert.Contains(t, string(reqs[1].Body), `"msgid":"m1"`)

	// Out-of-range statuses become 500; ClearFaults drops the queue.
	e.srv.FailNext(1, 42, "")
	resp, _ = e.crm(http.MethodGet, "/api/v4/account", nil)
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Retry-After"))
	e.srv.FailNext(5, 500, "")
	e.srv.ClearFaults()
	assert.Zero(t, e.srv.PendingFaults())
	resp, _ = e.crm(http.MethodGet, "/api/v4/account", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	e.srv.ResetRequests()
	assert.Empty(t, e.srv.Requests())
}

func TestResetNext(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	e.srv.ResetNext(1)
	_, err := e.hc.Do(e.sendRequest("c1", "m1"))
	require.Error(t, err)
	assert.Empty(t, e.srv.AllMessages())
	reqs := e.srv.Requests()
	assert.Equal(t, "reset", reqs[len(reqs)-1].Fault)
	assert.Zero(t, reqs[len(reqs)-1].Status)

	resp, _ := e.send("c1", "m1", "hi")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestDropResponseNextProcessesTheRequest(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	e.srv.DropResponseNext(1)
	_, err := e.hc.Do(e.sendRequest("c1", "m1"))
	require.Error(t, err, "the answer is lost")
	msgs := e.srv.AllMessages()
	require.Len(t, msgs, 1, "but the message was stored")

	// The client's retry (the same payload, so the same msgid) gets the
	// original ids.
	resp, body := e.do(e.sendRequest("c1", "m1"))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, msgs[0].ID, newMessage(t, decode(t, body))["msgid"])
	assert.Len(t, e.srv.AllMessages(), 1)
	reqs := e.srv.Requests()
	assert.Equal(t, "drop", reqs[1].Fault)
	assert.Zero(t, reqs[1].Status)
}

func TestTruncateNext(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	e.srv.TruncateNext(1)
	resp, err := e.hc.Do(e.sendRequest("c1", "m1"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Empty(t, e.srv.AllMessages())
	reqs := e.srv.Requests()
	assert.Equal(t, "truncate", reqs[1].Fault)
	assert.Equal(t, http.StatusOK, reqs[1].Status)
}

func TestStallNext(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()

	e.srv.StallNext(1, 100*time.Millisecond)
	start := time.Now()
	resp, _ := e.send("c1", "m1", "hi")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	assert.Len(t, e.srv.AllMessages(), 1, "a stalled request is processed once it goes on")

	// A client that gives up: the request is not processed.
	e.srv.StallNext(1, time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := e.hc.Do(e.sendRequest("c1", "m2").WithContext(ctx))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	start = time.Now()
	e.srv.Close() // waits for the stalled handler, which the client's leaving ended
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Len(t, e.srv.AllMessages(), 1)
	reqs := e.srv.Requests()
	assert.Equal(t, "stall", reqs[len(reqs)-1].Fault)
	assert.Zero(t, reqs[len(reqs)-1].Status)
}

func TestStallEndsOnClose(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.srv.StallNext(1, time.Minute)
	done := make(chan error, 1)
	go func() {
		resp, err := e.hc.Get(e.srv.URL() + "/api/v4/account")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	require.Eventually(t, func() bool { return len(e.srv.Requests()) == 1 }, 5*time.Second, 5*time.Millisecond)
	start := time.Now()
	e.srv.Close()
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Error(t, <-done, "the stalled request is cut off, not answered with an empty 200")
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t, kommotest.WithRateLimit(0.5, 2))
	statuses := func() (out []int) {
		for range 3 {
			resp, _ := e.crm(http.MethodGet, "/api/v4/account", nil)
			out = append(out, resp.StatusCode)
		}
		return out
	}
	assert.Equal(t, []int{200, 200, 429}, statuses())

	resp, data := e.crm(http.MethodGet, "/api/v4/account", nil)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "2", resp.Header.Get("Retry-After"))
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "Too many requests per second", decode(t, data)["detail"])
	// Chat API requests share the limit and answer in their own shape; a
	// limited request changes nothing.
	resp, out := e.send("c1", "m1", "hi")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.EqualValues(t, 429, out["error_code"])
	reqs := e.srv.Requests()
	assert.Equal(t, "rate_limit", reqs[len(reqs)-1].Fault)
	assert.Equal(t, 429, reqs[len(reqs)-1].Status)

	h := newKTEnv(t, kommotest.WithRateLimit(1, 1), kommotest.WithHTMLRateLimitBody())
	h.crm(http.MethodGet, "/api/v4/account", nil)
	resp, data = h.crm(http.MethodGet, "/api/v4/account", nil)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"))
	assert.Contains(t, string(data), "<h1>429 Too Many Requests</h1>")
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
}

func TestRandomFailures(t *testing.T) {
	t.Parallel()
	run := func(p float64, seed uint64) []int {
		e := newKTEnv(t, kommotest.WithRandomFailures(p, seed))
		var out []int
		for range 40 {
			resp, _ := e.crm(http.MethodGet, "/api/v4/account", nil)
			out = append(out, resp.StatusCode)
		}
		return out
	}
	all := run(1, 1)
	for _, s := range all {
		require.Equal(t, http.StatusServiceUnavailable, s)
	}
	a, b := run(0.5, 7), run(0.5, 7)
	assert.Equal(t, a, b, "the same seed fails the same requests")
	assert.Contains(t, a, 200)
	assert.Contains(t, a, 503)
	assert.NotContains(t, run(0, 7), 503)
}

func TestFaultedRequestsWithQueuedFaultsComeFirst(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t, kommotest.WithRandomFailures(1, 3))
	e.srv.FailNext(1, http.StatusBadGateway, "")
	resp, _ := e.crm(http.MethodGet, "/api/v4/account", nil)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	resp, _ = e.crm(http.MethodGet, "/api/v4/account", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	reqs := e.srv.Requests()
	assert.Equal(t, []string{"status", "random"}, []string{reqs[0].Fault, reqs[1].Fault})
}
