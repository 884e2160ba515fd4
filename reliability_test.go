package kommo

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo/internal/testkit"
)

type step func(w http.ResponseWriter, r *http.Request)

// scripted answers the n-th request with steps[n]; the last step repeats.
// Unlike harness.sequence it never runs out: attempts are what the tests
// count.
func scripted(steps ...step) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := min(n, len(steps)-1)
		n++
		mu.Unlock()
		steps[i](w, r)
	}
}

func status(code int, body string, hdr ...string) step {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

func resetConn(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // RST instead of FIN
	}
	conn.Close()
}

func truncated(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "100")
	w.WriteHeader(200)
	io.WriteString(w, `{"new_message":{"msg`)
}

func stall(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body) // lets the server notice the client hanging up
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

const okSend = `{"new_message":{"conversation_id":"c","sender_id":"s","receiver_id":null,"msgid":"amojo-1","ref_id":"m-1"}}`

// newReliabilityHarness returns a harness whose client retries with the
// default policy without jitter and reads clk, and whose Chat API send
// path (sendCall) is answered by steps.
func newReliabilityHarness(t *testing.T, clk Clock, steps []step, opts ...Option) *harness {
	t.Helper()
	p := DefaultRetryPolicy()
	p.Jitter = 0
	h := newHarness(t, append([]Option{WithAccessToken(testToken), WithRetryPolicy(p), WithClock(clk)}, opts...)...)
	h.mux.HandleFunc("POST /v2/origin/custom/scope", scripted(steps...))
	return h
}

func sendCall(out any) *call {
	return &call{api: chatAPI, method: http.MethodPost, path: "v2/origin/custom/scope",
		body: map[string]any{"event_type": "new_message", "payload": map[string]string{"msgid": "m-1"}}, out: out}
}

func TestFaultInjection(t *testing.T) {
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		steps     []step
		opts      []Option
		wantCalls int32
		wantWaits []time.Duration
		check     func(t *testing.T, resp *Response, err error)
	}{
		{
			name:      "429 with Retry-After seconds",
			steps:     []step{status(429, `{"title":"Too Many Requests","status":429}`, "Retry-After", "3"), status(200, okSend)},
			wantCalls: 2, wantWaits: []time.Duration{3 * time.Second},
			check: func(t *testing.T, resp *Response, err error) {
				require.NoError(t, err)
				assert.Equal(t, 2, resp.Attempts)
			},
		},
		{
			name:      "429 with Retry-After date",
			steps:     []step{status(429, "", "Retry-After", start.Add(7*time.Second).Format(http.TimeFormat)), status(200, okSend)},
			wantCalls: 2, wantWaits: []time.Duration{7 * time.Second},
			check: func(t *testing.T, resp *Response, err error) { require.NoError(t, err) },
		},
		{
			name:      "HTML 429 without Retry-After backs off",
			steps:     []step{status(429, "<html><h1>Too many requests</h1></html>", "Content-Type", "text/html"), status(429, "<html></html>"), status(200, okSend)},
			wantCalls: 3, wantWaits: []time.Duration{time.Second, 2 * time.Second},
			check: func(t *testing.T, resp *Response, err error) {
				require.NoError(t, err)
				assert.Equal(t, 3, resp.Attempts)
			},
		},
		{
			name:      "503 burst then success",
			steps:     []step{status(503, "down"), status(503, "down"), status(502, "bad gw"), status(200, okSend)},
			wantCalls: 4, wantWaits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
			check: func(t *testing.T, resp *Response, err error) {
				require.NoError(t, err)
				assert.Equal(t, 4, resp.Attempts)
			},
		},
		{
			name:      "503 until attempts run out",
			steps:     []step{status(503, "down")},
			wantCalls: 4, wantWaits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
			check: func(t *testing.T, resp *Response, err error) {
				var re *RetryError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, 4, re.Attempts)
				var ae *APIError
				require.ErrorAs(t, err, &ae, "the last APIError is wrapped")
				assert.Equal(t, 503, ae.StatusCode)
				assert.ErrorIs(t, err, ErrServer)
				assert.Contains(t, err.Error(), "giving up after 4 attempts")
			},
		},
		{
			name:      "connection reset",
			steps:     []step{resetConn, status(200, okSend)},
			wantCalls: 2, wantWaits: []time.Duration{time.Second},
			check: func(t *testing.T, resp *Response, err error) { require.NoError(t, err) },
		},
		{
			// A body cut off in transit is retried (the Chat API send keeps its
			// msgid); a complete 2xx whose body does not decode was accepted by
			// the server and is never sent again.
			name:      "truncated body is retried, an undecodable 2xx is not",
			steps:     []step{truncated, status(200, `{"new_message":{"msg`), status(200, okSend)},
			wantCalls: 2, wantWaits: []time.Duration{time.Second},
			check: func(t *testing.T, resp *Response, err error) {
				var de *DecodeError
				require.ErrorAs(t, err, &de)
				assert.Equal(t, 200, de.StatusCode)
				assert.Equal(t, `{"new_message":{"msg`, de.Body)
				assert.Contains(t, de.Error(), "the server accepted the request")
			},
		},
		{
			name:      "stall past the per-attempt timeout",
			steps:     []step{stall, status(200, okSend)},
			opts:      []Option{WithRequestTimeout(300 * time.Millisecond)},
			wantCalls: 2, wantWaits: []time.Duration{time.Second},
			check: func(t *testing.T, resp *Response, err error) { require.NoError(t, err) },
		},
		{
			name:      "403 is not retried",
			steps:     []step{status(403, `{"error_code":403,"error_description":"bad signature"}`), status(200, okSend)},
			wantCalls: 1, wantWaits: nil,
			check: func(t *testing.T, resp *Response, err error) {
				assert.ErrorIs(t, err, ErrForbidden)
				var re *RetryError
				assert.False(t, errors.As(err, &re), "a single attempt is not a RetryError")
			},
		},
		{
			name:      "Retry-After above MaxRetryAfter ends the call",
			steps:     []step{status(429, "", "Retry-After", "3600"), status(200, okSend)},
			wantCalls: 1, wantWaits: nil,
			check: func(t *testing.T, resp *Response, err error) {
				var rle *RateLimitError
				require.ErrorAs(t, err, &rle)
				assert.Equal(t, time.Hour, rle.RetryAfter)
				assert.ErrorIs(t, err, ErrRateLimited)
			},
		},
	}
	for _, noRetry := range []int{400, 401, 402, 404, 422} {
		cases = append(cases, struct {
			name      string
			steps     []step
			opts      []Option
			wantCalls int32
			wantWaits []time.Duration
			check     func(t *testing.T, resp *Response, err error)
		}{
			name: http.StatusText(noRetry) + " is not retried", steps: []step{status(noRetry, `{}`), status(200, okSend)}, wantCalls: 1,
			check: func(t *testing.T, resp *Response, err error) {
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, noRetry, ae.StatusCode)
			},
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := testkit.NewClock(start)
			h := newReliabilityHarness(t, clk, tc.steps, tc.opts...)
			var out map[string]any
			resp, err := h.client.do(t.Context(), sendCall(&out))
			assert.Equal(t, tc.wantCalls, int32(len(h.requests())), "attempts that reached the server")
			assert.Equal(t, tc.wantWaits, clk.Waits(), "waits")
			tc.check(t, resp, err)
			if err == nil {
				assert.Equal(t, "amojo-1", out["new_message"].(map[string]any)["msgid"])
			}
		})
	}
}

func TestCancellationDuringWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	clk := testkit.NewClock(time.Now(), testkit.OnSleep(cancel))
	h := newReliabilityHarness(t, clk, []step{status(503, "down"), status(200, okSend)})
	_, err := h.client.do(ctx, sendCall(nil))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Len(t, h.requests(), 1, "no attempt after the cancel")
	assert.Equal(t, []time.Duration{time.Second}, clk.Waits())
}

func TestDeadlineShorterThanRetryAfter(t *testing.T) {
	t.Parallel()
	clk := testkit.NewClock(time.Now())
	h := newReliabilityHarness(t, clk, []step{status(429, `{"title":"Too Many Requests"}`, "Retry-After", "30"), status(200, okSend)})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := h.client.do(ctx, sendCall(nil))
	var rle *RateLimitError
	require.ErrorAs(t, err, &rle)
	assert.Equal(t, 30*time.Second, rle.RetryAfter)
	assert.ErrorIs(t, err, ErrRateLimited)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 429, ae.StatusCode)
	assert.Empty(t, clk.Waits(), "returned at once instead of waiting")
	assert.NoError(t, ctx.Err(), "returned before the deadline")
	assert.Len(t, h.requests(), 1)
}

func TestRetriedSendKeepsBodyAndResigns(t *testing.T) {
	t.Parallel()
	var bodies [][]byte
	var mu sync.Mutex
	steps := []step{
		func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			bodies = append(bodies, b)
			mu.Unlock()
			resetConn(w, r)
		},
		func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			bodies = append(bodies, b)
			mu.Unlock()
			// The path as sent: r.URL.Path has lost the base path here.
			sent := harnessRequest{Method: r.Method, EscapedPath: harnessChatPath + r.URL.EscapedPath(), Header: r.Header, Body: b}
			if checkChatSignature(sent, testSecret) != nil {
				w.WriteHeader(403)
				return
			}
			io.WriteString(w, okSend)
		},
	}
	clk := testkit.NewClock(time.Now(), testkit.AdvanceOnNow(time.Second))
	h := newReliabilityHarness(t, clk, steps)
	_, err := h.client.do(t.Context(), sendCall(nil))
	require.NoError(t, err)
	require.Len(t, bodies, 2)
	assert.Equal(t, bodies[0], bodies[1])
	assert.Contains(t, string(bodies[1]), `"msgid":"m-1"`)
	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.NotEqual(t, reqs[0].Header.Get("Date"), reqs[1].Header.Get("Date"), "each attempt is signed with a fresh Date")
}

// TestNoSecretsInLogsOrErrors drives failures and retries with a debug
// logger and checks no token, secret or signature leaks.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	var sigs []string
	var mu sync.Mutex
	steps := []step{
		func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			sigs = append(sigs, r.Header.Get("X-Signature"))
			mu.Unlock()
			w.WriteHeader(503)
		},
		func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if sig := r.Header.Get("X-Signature"); sig != "" {
				sigs = append(sigs, sig)
			}
			mu.Unlock()
			w.WriteHeader(403)
			io.WriteString(w, `{"error_description":"signature mismatch"}`)
		},
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newReliabilityHarness(t, testkit.NewClock(time.Now()), steps, WithLogger(logger))
	h.mux.HandleFunc("GET /api/v4/account", scripted(steps[1]))
	c := h.client
	_, chatErr := c.do(t.Context(), sendCall(nil))
	require.Error(t, chatErr)
	_, crmErr := c.do(t.Context(), &call{api: crmAPI, method: http.MethodGet, path: "api/v4/account", query: urlValues("with", "amojo_id")})
	require.Error(t, crmErr)
	logger.Info("client", "client", c, "signer", c.signer)

	require.NotEmpty(t, sigs)
	out := logs.String() + chatErr.Error() + crmErr.Error()
	assert.Contains(t, logs.String(), `"msg":"kommo: retrying"`)
	assert.Contains(t, logs.String(), `"path":"`+harnessChatPath+`/v2/origin/custom/scope"`)
	assert.NotContains(t, out, testToken)
	assert.NotContains(t, out, testSecret)
	for _, sig := range sigs {
		assert.NotContains(t, out, sig)
	}
	assert.NotContains(t, out, "msgid", "no bodies in logs")
}

// TestTransportErrorClassification covers what is never retried.
func TestTransportErrorClassification(t *testing.T) {
	assert.False(t, retryableTransport(errBodyTooLarge))
	assert.False(t, retryableTransport(fmt.Errorf("wrapped: %w", x509.UnknownAuthorityError{})))
	assert.True(t, retryableTransport(io.ErrUnexpectedEOF))
	assert.True(t, retryableTransport(&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}))
}

func TestBackoffJitterBounds(t *testing.T) {
	p := DefaultRetryPolicy()
	for n := 1; n <= 8; n++ {
		want := min(time.Second<<(n-1), 30*time.Second)
		for range 50 {
			d := p.Backoff(n)
			assert.LessOrEqual(t, d, want)
			assert.GreaterOrEqual(t, d, want-want/4)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"5": 5 * time.Second, "0.5": 500 * time.Millisecond, now.Add(time.Minute).Format(http.TimeFormat): time.Minute,
		now.Add(-time.Minute).Format(http.TimeFormat): 0,
	} {
		got, ok := parseRetryAfter(in, now)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "-1", "soon"} {
		_, ok := parseRetryAfter(bad, now)
		assert.False(t, ok, bad)
	}
}

// TestRedirectsAreNotFollowed: a signed Chat API request answered with a
// redirect to another host is neither followed nor retried, and the
// caller's http.Client is left unchanged.
func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	// other is another host: it stays a bare server, so that a followed
	// redirect reaches it instead of failing the harness.
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	hc := &http.Client{}
	h := newHarness(t, WithHTTPClient(hc), WithRetryPolicy(DefaultRetryPolicy()))
	h.mux.HandleFunc("POST /v2/origin/custom/scope", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path+"?token=leaked-if-shown", http.StatusTemporaryRedirect)
	})
	_, _, err := h.client.Messages.Send(t.Context(), "scope", &SendMessageRequest{
		ConversationID: "c", Sender: &Participant{ID: "u", Name: "n"}, Message: TextMessage("hi"),
	})
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusTemporaryRedirect, ae.StatusCode)
	assert.Equal(t, other.URL+"/v2/origin/custom/scope", ae.Location, "the target, without its query")
	assert.NotContains(t, ae.Response.Header.Get("Location"), "token=")
	assert.Len(t, h.requests(), 1, "a redirect is not retried")
	assert.Zero(t, elsewhere.Load(), "the redirect was not followed")
	assert.Nil(t, hc.CheckRedirect, "the caller's http.Client is not mutated")
}
