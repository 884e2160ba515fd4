package kommo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
)

// hostile is a hand-written CRM server that misbehaves on purpose. Each
// request that reaches the handler is counted as processed before the
// handler decides how to answer.
type hostile struct {
	srv       *httptest.Server
	processed atomic.Int32
	newConns  atomic.Int32
	answer    func(n int32, w http.ResponseWriter, r *http.Request)
}

func newHostile(t *testing.T, answer func(n int32, w http.ResponseWriter, r *http.Request)) *hostile {
	t.Helper()
	h := &hostile{answer: answer}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n := h.processed.Add(1)
		h.answer(n, w, r)
	}))
	h.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			h.newConns.Add(1)
		}
	}
	h.srv.Start()
	t.Cleanup(h.srv.Close)
	return h
}

// hostileClient is a CRM client for h with a fast retry policy on a manual
// clock, so waits are recorded and not spent.
func hostileClient(t *testing.T, h *hostile, opts ...kommo.Option) (*kommo.Client, *testkit.Clock) {
	t.Helper()
	// Real "now", so that context deadlines (wall clock) compare with it.
	clk := testkit.NewClock(time.Now())
	c, err := kommo.NewClient(append([]kommo.Option{
		kommo.WithCRMBaseURL(h.srv.URL), kommo.WithAccessToken("tok-hardening-123"),
		kommo.WithRateLimit(0, 0), kommo.WithClock(clk),
	}, opts...)...)
	require.NoError(t, err)
	return c, clk
}

// dropAnswer closes the connection after the request was processed, so the
// client never hears back.
func dropAnswer(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

const sourcesCreated = `{"_embedded":{"sources":[{"id":1,"name":"s","external_id":"e","pipeline_id":1,"request_id":"0"}]}}`

// TestNonIdempotentCRMWritesAreNotResent: a CRM POST or PATCH that may have
// reached the server is sent once, whatever went wrong with its answer.
func TestNonIdempotentCRMWritesAreNotResent(t *testing.T) {
	t.Parallel()
	faults := map[string]func(w http.ResponseWriter){
		"answer dropped": dropAnswer,
		"502":            func(w http.ResponseWriter) { http.Error(w, "bad gateway", http.StatusBadGateway) },
		"503":            func(w http.ResponseWriter) { http.Error(w, "unavailable", http.StatusServiceUnavailable) },
		"undecodable 2xx": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/hal+json")
			io.WriteString(w, `{"_embedded":`)
		},
	}
	calls := map[string]func(ctx context.Context, c *kommo.Client) error{
		"Sources.Create": func(ctx context.Context, c *kommo.Client) error {
			_, _, err := c.Sources.Create(ctx, []*kommo.Source{{Name: "s", ExternalID: "e"}})
			return err
		},
		"Sources.Update": func(ctx context.Context, c *kommo.Client) error {
			_, _, err := c.Sources.Update(ctx, []*kommo.Source{{ID: 1, Name: "s"}})
			return err
		},
		"ContactsChats.Link": func(ctx context.Context, c *kommo.Client) error {
			_, _, err := c.ContactsChats.Link(ctx, []*kommo.ContactChatLink{{ContactID: 1, ChatID: "chat-1"}})
			return err
		},
		"Talks.Close": func(ctx context.Context, c *kommo.Client) error {
			_, err := c.Talks.Close(ctx, 7, nil)
			return err
		},
	}
	for fname, fault := range faults {
		for cname, call := range calls {
			if cname == "Talks.Close" && fname == "undecodable 2xx" {
				continue // Talks.Close reads no body: any 2xx is success
			}
			t.Run(cname+"/"+fname, func(t *testing.T) {
				t.Parallel()
				h := newHostile(t, func(n int32, w http.ResponseWriter, r *http.Request) {
					if n == 1 {
						fault(w)
						return
					}
					io.WriteString(w, sourcesCreated)
				})
				c, clk := hostileClient(t, h)
				err := call(t.Context(), c)
				require.Error(t, err)
				assert.Equal(t, int32(1), h.processed.Load(), "processed once: the write was not resent")
				assert.Empty(t, clk.Waits(), "no retry was scheduled")
				if fname == "undecodable 2xx" {
					var de *kommo.DecodeError
					require.ErrorAs(t, err, &de)
					assert.Equal(t, http.StatusOK, de.StatusCode)
					assert.Equal(t, `{"_embedded":`, de.Body)
				}
			})
		}
	}
}

// TestCRMWriteRetriedOn429AndWhenNotSent: a 429 and a dial failure mean the
// server did not act, so even a POST is tried again.
func TestCRMWriteRetriedOn429AndWhenNotSent(t *testing.T) {
	t.Parallel()
	t.Run("429", func(t *testing.T) {
		t.Parallel()
		h := newHostile(t, func(n int32, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "2")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			io.WriteString(w, sourcesCreated)
		})
		c, clk := hostileClient(t, h)
		_, _, err := c.Sources.Create(t.Context(), []*kommo.Source{{Name: "s", ExternalID: "e"}})
		require.NoError(t, err)
		assert.Equal(t, int32(2), h.processed.Load())
		assert.Equal(t, []time.Duration{2 * time.Second}, clk.Waits(), "Retry-After honoured on the injected clock")
	})
	t.Run("dial refused", func(t *testing.T) {
		t.Parallel()
		h := newHostile(t, func(n int32, w http.ResponseWriter, r *http.Request) { io.WriteString(w, sourcesCreated) })
		var dials atomic.Int32
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) == 1 {
				return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}
		c, _ := hostileClient(t, h, kommo.WithHTTPClient(&http.Client{Transport: tr}))
		_, _, err := c.Sources.Create(t.Context(), []*kommo.Source{{Name: "s", ExternalID: "e"}})
		require.NoError(t, err)
		assert.Equal(t, int32(1), h.processed.Load(), "the first attempt never left")
		assert.Equal(t, int32(2), dials.Load())
	})
}

// TestCheckRetryIsReplaceable: a user's classifier decides instead of the
// default one, and sees the attempt it judges.
func TestCheckRetryIsReplaceable(t *testing.T) {
	t.Parallel()
	h := newHostile(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	})
	var seen []kommo.RetryAttempt
	p := kommo.DefaultRetryPolicy()
	p.CheckRetry = func(p kommo.RetryPolicy, a kommo.RetryAttempt) kommo.RetryDecision {
		seen = append(seen, a)
		d := kommo.DefaultCheckRetry(p, a)
		d.Retry = d.Retry && a.Attempt < 2
		return d
	}
	c, clk := hostileClient(t, h, kommo.WithRetryPolicy(p))
	_, _, err := c.Talks.Get(t.Context(), 7)
	assert.ErrorIs(t, err, kommo.ErrServer)
	assert.Equal(t, int32(2), h.processed.Load(), "GET retried once, then the custom rule stopped")
	require.Len(t, seen, 2)
	assert.Equal(t, kommo.RetryAttempt{Method: http.MethodGet, Idempotent: true, Attempt: 1, Err: seen[0].Err}, seen[0])
	assert.Len(t, clk.Waits(), 1)
}

// TestLongErrorBodiesKeepConnections: error pages longer than what the SDK
// keeps are drained, so the connection is reused.
func TestLongErrorBodiesKeepConnections(t *testing.T) {
	t.Parallel()
	page := strings.Repeat("x", 200<<10)
	h := newHostile(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, page)
	})
	// A transport of its own: parallel tests must not share its idle pool.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	c, _ := hostileClient(t, h, kommo.WithHTTPClient(&http.Client{Transport: tr}))
	for range 50 {
		_, _, err := c.Talks.Get(t.Context(), 7)
		require.ErrorIs(t, err, kommo.ErrNotFound)
	}
	assert.Equal(t, int32(50), h.processed.Load())
	assert.LessOrEqual(t, h.newConns.Load(), int32(2), "50 calls with 200 KiB error pages reuse their connection")
}

// TestHostileRetryAfter: Retry-After values that are not a sane number of
// seconds never give a negative or overflowing wait.
func TestHostileRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    string
		huge bool // past any MaxRetryAfter: the call ends, rate limited
	}{
		{"NaN", false}, {"-Inf", false}, {"-5", false},
		{"Inf", true}, {"+Inf", true}, {"1e30", true}, {"1e400", true}, {"9223372036854775807", true},
	} {
		t.Run(tc.v, func(t *testing.T) {
			t.Parallel()
			h := newHostile(t, func(n int32, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", tc.v)
					http.Error(w, "slow down", http.StatusTooManyRequests)
					return
				}
				io.WriteString(w, `{"id":7}`)
			})
			c, clk := hostileClient(t, h)
			_, _, err := c.Talks.Get(t.Context(), 7)
			if tc.huge {
				var rle *kommo.RateLimitError
				require.ErrorAs(t, err, &rle, "a huge Retry-After is not 'retry now'")
				assert.Equal(t, 24*time.Hour, rle.RetryAfter, "capped, never overflowing")
				assert.Equal(t, int32(1), h.processed.Load())
				return
			}
			require.NoError(t, err, "an unusable Retry-After is ignored: the backoff applies")
			require.Len(t, clk.Waits(), 1)
			assert.Positive(t, clk.Waits()[0], "the computed backoff, not a negative or zero wait")
		})
	}
}

// TestBackoffPastDeadlineIsNotRateLimited: a 503 whose backoff would pass
// the call's deadline ends the call with the 503, not as rate limited.
func TestBackoffPastDeadlineIsNotRateLimited(t *testing.T) {
	t.Parallel()
	h := newHostile(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	})
	// The backoff (at least 7.5 s) passes the deadline by far; the deadline
	// leaves the first attempt 5 s of wall time even on a loaded machine.
	p := kommo.DefaultRetryPolicy()
	p.BaseBackoff, p.MaxBackoff = 10*time.Second, 10*time.Second
	c, clk := hostileClient(t, h, kommo.WithRetryPolicy(p))
	ctx, cancel := context.WithDeadline(t.Context(), clk.Now().Add(5*time.Second))
	defer cancel()
	_, _, err := c.Talks.Get(ctx, 7)
	require.Error(t, err)
	assert.ErrorIs(t, err, kommo.ErrServer)
	assert.NotErrorIs(t, err, kommo.ErrRateLimited)
	var rle *kommo.RateLimitError
	assert.False(t, errors.As(err, &rle))
	assert.Equal(t, int32(1), h.processed.Load())
}

// TestEchoedCredentialsAreScrubbed: a server that echoes the bearer token or
// the signature in its error body does not get them into the error.
func TestEchoedCredentialsAreScrubbed(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var sigs []string
	echo := func(n int32, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if s := r.Header.Get("X-Signature"); s != "" {
			sigs = append(sigs, s)
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"title":"bad %s","detail":"you sent %q and %q","status":400}`,
			r.Header.Get("Authorization"), r.Header.Get("Authorization"), r.Header.Get("X-Signature"))
	}
	h := newHostile(t, echo)
	c, _ := hostileClient(t, h, kommo.WithChannel("chan", "secret-for-hardening"), kommo.WithChatBaseURL(h.srv.URL))
	_, _, crmErr := c.Talks.Get(t.Context(), 7)
	_, _, chatErr := c.Messages.Send(t.Context(), "chan_acc", &kommo.SendMessageRequest{
		ConversationID: "c", Sender: &kommo.Participant{ID: "u", Name: "n"}, Message: kommo.TextMessage("hi"),
	})
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, sigs)
	for _, err := range []error{crmErr, chatErr} {
		var ae *kommo.APIError
		require.ErrorAs(t, err, &ae)
		out := fmt.Sprintf("%v %+v %#v %s %s %s %v", err, ae, ae, ae.Body, ae.Title, ae.Detail, ae.Response.Request.Header)
		assert.NotContains(t, out, "tok-hardening-123")
		for _, s := range sigs {
			assert.NotContains(t, out, s)
		}
	}
}

// TestPathIDsThatNameAnotherPathAreRefused: an id that would change the
// request's path is refused with a *ValidationError, before anything is
// signed or sent.
func TestPathIDsThatNameAnotherPathAreRefused(t *testing.T) {
	t.Parallel()
	h := newHostile(t, func(n int32, w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) })
	c, _ := hostileClient(t, h, kommo.WithChannel("chan", "secret-for-hardening"), kommo.WithChatBaseURL(h.srv.URL))
	ctx := t.Context()
	status := &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusDelivered}
	for _, bad := range []string{"", " ", ".", "..", "a/b", `a\b`, "../../x", "a\x00b", "a\nb", "a\x7fb"} {
		_, err := c.Messages.UpdateDeliveryStatus(ctx, "chan_acc", bad, status)
		assert.ErrorIs(t, err, kommo.ErrInvalidRequest, "msgid %q", bad)
		_, err = c.Messages.UpdateDeliveryStatus(ctx, bad, "msg-1", status)
		assert.ErrorIs(t, err, kommo.ErrInvalidRequest, "scope %q", bad)
		_, _, err = c.History.List(ctx, "chan_acc", bad, nil)
		assert.ErrorIs(t, err, kommo.ErrInvalidRequest, "conversation %q", bad)
		_, _, err = c.Chats.Create(ctx, bad, &kommo.CreateChatRequest{ConversationID: "c", User: kommo.Participant{ID: "u", Name: "n"}})
		assert.ErrorIs(t, err, kommo.ErrInvalidRequest, "scope %q", bad)
	}
	assert.Zero(t, h.processed.Load(), "nothing was sent")
	for _, bad := range []string{"..", "a/b"} {
		_, err := kommo.NewClient(kommo.WithChannel(bad, "secret"))
		assert.ErrorIs(t, err, kommo.ErrInvalidOption, "channel id %q", bad)
	}
	// A legitimate id with characters that need escaping still works.
	_, err := c.Messages.UpdateDeliveryStatus(ctx, "chan_acc", "msg 1?x#y", status)
	require.NoError(t, err)
	assert.Equal(t, int32(1), h.processed.Load())
}

// historyServer serves a chat's history newest first from msgs, which the
// test may grow between pages; ignoreOffset makes it serve the first page
// for every offset.
func historyServer(t *testing.T, msgs func(page int) []string, ignoreOffset, withIDs bool) (*kommo.Client, *hostile) {
	t.Helper()
	var page atomic.Int32
	h := newHostile(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		all := msgs(int(page.Add(1)) - 1)
		off, limit := 0, 50
		fmt.Sscan(r.URL.Query().Get("offset"), &off)
		fmt.Sscan(r.URL.Query().Get("limit"), &limit)
		if ignoreOffset {
			off = 0
		}
		var items []string
		for i := off; i < len(all) && i < off+limit; i++ {
			id := ""
			if withIDs {
				id = all[i]
			}
			items = append(items, fmt.Sprintf(`{"timestamp":1700000000,"sender":{"id":"u"},"message":{"id":%q,"type":"text","text":%q}}`, id, all[i]))
		}
		fmt.Fprintf(w, `{"messages":[%s]}`, strings.Join(items, ","))
	})
	c, _ := hostileClient(t, h, kommo.WithChannel("chan", "secret-for-hardening"), kommo.WithChatBaseURL(h.srv.URL))
	return c, h
}

// TestHistoryAllSkipsMessagesThatArriveDuringPaging: new messages shift the
// pages; History.All still yields every message exactly once.
func TestHistoryAllSkipsMessagesThatArriveDuringPaging(t *testing.T) {
	t.Parallel()
	// 200 messages, newest first; 4 new ones arrive before each later page.
	msgs := func(page int) []string {
		var out []string
		for i := 200 + 4*page; i > 0; i-- {
			out = append(out, fmt.Sprintf("m%03d", i))
		}
		return out
	}
	c, _ := historyServer(t, msgs, false, true)
	got, err := kommo.Collect(c.History.All(t.Context(), "chan_acc", "chat-1", nil))
	require.NoError(t, err)
	seen := map[string]int{}
	for _, m := range got {
		seen[m.Message.ID]++
	}
	for id, n := range seen {
		assert.Equal(t, 1, n, "message %s yielded once", id)
	}
	for i := 1; i <= 200; i++ {
		assert.Contains(t, seen, fmt.Sprintf("m%03d", i), "every message that was there at the start is yielded")
	}
}

// TestHistoryAllEndsWhenOffsetIsIgnored: a server that ignores offset, with
// items that have no ids, cannot make History.All page forever.
func TestHistoryAllEndsWhenOffsetIsIgnored(t *testing.T) {
	t.Parallel()
	msgs := func(int) []string {
		var out []string
		for i := range 50 {
			out = append(out, fmt.Sprintf("text %d", i))
		}
		return out
	}
	c, h := historyServer(t, msgs, true, false)
	got, err := kommo.Collect(c.History.All(t.Context(), "chan_acc", "chat-1", nil))
	require.ErrorIs(t, err, kommo.ErrHistoryNoProgress)
	assert.Len(t, got, 50)
	assert.Equal(t, int32(2), h.processed.Load())
}

// TestHostileHistoryPageMemory: a history page of empty items costs at most
// 10× its body (up to the cap) in allocations, plus a fixed allowance, however large it is: more
// items than the limit asked for are refused before they are decoded, and
// a body over the cap is not read past it. Not parallel: it reads the
// process's allocation counter.
func TestHostileHistoryPageMemory(t *testing.T) {
	const historyCap = 4 << 20 // history.go's historyMaxBody
	for _, size := range []int{64 << 10, 1 << 20, 4<<20 - 64, 16 << 20} {
		t.Run(fmt.Sprintf("%dKiB", size>>10), func(t *testing.T) {
			items := (size - len(`{"messages":[]}`)) / 3
			body := []byte(`{"messages":[` + strings.TrimSuffix(strings.Repeat("{},", items), ",") + `]}`)
			h := newHostile(t, func(n int32, w http.ResponseWriter, r *http.Request) { w.Write(body) })
			c, _ := hostileClient(t, h, kommo.WithChannel("chan", "secret-for-hardening"), kommo.WithChatBaseURL(h.srv.URL))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			msgs, _, err := c.History.List(t.Context(), "chan_acc", "chat-1", &kommo.HistoryOptions{Limit: 50})
			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d-byte body: %d bytes allocated", len(body), allocated)
			require.Error(t, err, "a page of %d items for a limit of 50 is refused", items)
			assert.Empty(t, msgs)
			// Plus a fixed 1 MiB for the request itself (connection, buffers,
			// the test server's side): about 0.4 MiB measured, 0.7 MiB under -race.
			assert.LessOrEqual(t, allocated, uint64(10*min(len(body), historyCap)+1<<20), "allocations stay within 10× the body (up to the cap)")
		})
	}
}

// stallingTokens is a ContextTokenSource whose refresh takes far longer
// than a call may wait.
type stallingTokens struct{ stall time.Duration }

func (s stallingTokens) Token() (*oauth2.Token, error) {
	time.Sleep(s.stall)
	return nil, errors.New("refresh gave up")
}

func (s stallingTokens) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(s.stall):
		return nil, errors.New("refresh gave up")
	}
}

// TestCallDeadlineBoundsTokenRefresh: the client hands the call's context
// to a ContextTokenSource, so a stalled refresh cannot hold a call past its
// deadline.
func TestCallDeadlineBoundsTokenRefresh(t *testing.T) {
	t.Parallel()
	h := newHostile(t, func(n int32, w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"id":7}`) })
	c, err := kommo.NewClient(kommo.WithCRMBaseURL(h.srv.URL), kommo.WithTokenSource(stallingTokens{stall: 10 * time.Second}),
		kommo.WithRateLimit(0, 0))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = c.Talks.Get(ctx, 7)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, elapsed, 3*time.Second, "returned at its 200 ms deadline (an honest margin for a loaded machine), not after the 10 s stall")
	assert.Zero(t, h.processed.Load())
}
