package kommo_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
)

// hookTestStatusWriter records the status a handler wrote. Unwrap lets
// http.ResponseController reach the server's writer through it.
type hookTestStatusWriter struct {
	http.ResponseWriter
	code int
}

func (w *hookTestStatusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *hookTestStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hookTestServed is one ServeHTTP call that has returned.
type hookTestServed struct {
	at   time.Time
	code int
}

// hookTestTimedServer serves h (over HTTP/2 and TLS when h2) and reports
// when each ServeHTTP returns.
func hookTestTimedServer(t *testing.T, h http.Handler, h2 bool) (*httptest.Server, <-chan hookTestServed) {
	t.Helper()
	served := make(chan hookTestServed, 64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &hookTestStatusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		served <- hookTestServed{at: time.Now(), code: sw.code}
	}))
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, served
}

// hookTestSlowClient sends the request line and headers of a signed hook,
// then the body one byte every interval until stop is closed or the
// connection breaks. It returns when the headers are out.
func hookTestSlowClient(t *testing.T, addr, path string, body []byte, interval time.Duration, stop <-chan struct{}, wg *sync.WaitGroup) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: hooks.test\r\nContent-Type: application/json\r\nX-Signature: %s\r\nContent-Length: %d\r\n\r\n",
		path, kommo.SignWebhookBody(body, hookTestSecret), len(body))
	require.NoError(t, err)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.Close()
		trickle(conn, body, interval, stop)
	}()
}

// Clients that send their headers and then trickle the body no longer hold
// a handler goroutine each: at the read deadline the handler gives up,
// answers 408 and reports it, and the callback never runs.
func TestWebhookHandler_SlowBodyCutOffAtReadDeadline(t *testing.T) {
	t.Parallel()
	const (
		clients  = 10
		deadline = 100 * time.Millisecond
		margin   = 2 * time.Second
		interval = 20 * time.Millisecond // ~700 bytes: 14 s
	)
	body := testkit.Fixture(t, "webhooks", "message_text.json")
	path := "/kommo/" + kommo.ScopeID(hookTestChannel, hookTestAccount)

	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			sink := &hookTestSink{}
			h, err := kommo.NewWebhookHandler(hookTestSecret, sink.callback,
				kommo.WithWebhookReadTimeout(deadline), kommo.WithWebhookErrorHandler(sink.onError))
			require.NoError(t, err)
			srv, served := hookTestTimedServer(t, h, proto == "HTTP/2")

			stop := make(chan struct{})
			var wg sync.WaitGroup
			t.Cleanup(func() { close(stop); wg.Wait() })
			start := time.Now()
			for range clients {
				if proto == "HTTP/2" {
					hookTestSlowH2Client(t, srv, path, body, interval, stop, &wg)
				} else {
					hookTestSlowClient(t, srv.Listener.Addr().String(), path, body, interval, stop, &wg)
				}
			}

			limit := time.NewTimer(deadline + margin)
			defer limit.Stop()
			for i := range clients {
				select {
				case s := <-served:
					assert.Less(t, s.at.Sub(start), deadline+margin)
					assert.Equal(t, http.StatusRequestTimeout, s.code)
				case <-limit.C:
					t.Fatalf("%d of %d handler calls still reading a trickled body %s after the headers (read deadline %s)",
						clients-i, clients, deadline+margin, deadline)
				}
			}
			assert.Zero(t, sink.calls(), "the callback never runs for an incomplete body")
			errs := sink.errors()
			require.Len(t, errs, clients)
			for _, e := range errs {
				assert.ErrorIs(t, e, kommo.ErrWebhookReadTimeout)
				assert.ErrorIs(t, e, kommo.ErrWebhookBodyRead)
				assert.ErrorIs(t, e, os.ErrDeadlineExceeded)
			}
		})
	}
}

// hookTestSlowH2Client is hookTestSlowClient over HTTP/2 (TLS).
func hookTestSlowH2Client(t *testing.T, srv *httptest.Server, path string, body []byte, interval time.Duration, stop <-chan struct{}, wg *sync.WaitGroup) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, pr)
	require.NoError(t, err)
	req.ContentLength = int64(len(body))
	req.Header.Set("X-Signature", kommo.SignWebhookBody(body, hookTestSecret))
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer pw.Close()
		trickle(pw, body, interval, stop)
	}()
	go func() {
		defer wg.Done()
		resp, err := srv.Client().Do(req)
		if err == nil {
			if resp.ProtoMajor != 2 {
				t.Errorf("got %s, want HTTP/2", resp.Proto)
			}
			resp.Body.Close()
		}
		pr.CloseWithError(io.ErrClosedPipe)
	}()
}

// The deadline covers the body only: a callback that takes longer than it
// is not cut off, and the next request on the connection is not hit by it.
func TestWebhookHandler_ReadDeadlineLiftedForCallback(t *testing.T) {
	t.Parallel()
	const deadline = 50 * time.Millisecond
	sink := &hookTestSink{}
	var ctxErr error
	h, err := kommo.NewWebhookHandler(hookTestSecret, func(ctx context.Context, ev kommo.WebhookEvent) error {
		time.Sleep(6 * deadline)
		ctxErr = ctx.Err()
		return ctxErr
	}, kommo.WithWebhookReadTimeout(deadline), kommo.WithWebhookErrorHandler(sink.onError))
	require.NoError(t, err)
	srv, served := hookTestTimedServer(t, h, false)
	url := srv.URL + "/kommo/" + kommo.ScopeID(hookTestChannel, hookTestAccount)

	// Two hooks on one keep-alive connection.
	for _, name := range []string{"message_text", "typing"} {
		assert.Equal(t, http.StatusOK, hookTestPost(t, url, testkit.Fixture(t, "webhooks", name+".json")), name)
		assert.Equal(t, http.StatusOK, (<-served).code)
		assert.NoError(t, ctxErr)
	}
	assert.Empty(t, sink.errors())

	// A body that arrives in time, in pieces, is fine too.
	body := testkit.Fixture(t, "webhooks", "reaction_react.json")
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /kommo/%s HTTP/1.1\r\nHost: hooks.test\r\nX-Signature: %s\r\nContent-Length: %d\r\n\r\n%s",
		kommo.ScopeID(hookTestChannel, hookTestAccount), kommo.SignWebhookBody(body, hookTestSecret), len(body), body[:10])
	require.NoError(t, err)
	time.Sleep(deadline / 5)
	_, err = conn.Write(body[10:])
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// A shorter http.Server ReadTimeout is left in force, and its expiry is
// classified the same way.
func TestWebhookHandler_ServerReadTimeoutShorter(t *testing.T) {
	t.Parallel()
	sink := &hookTestSink{}
	h, err := kommo.NewWebhookHandler(hookTestSecret, sink.callback,
		kommo.WithWebhookReadTimeout(3*time.Second), kommo.WithWebhookErrorHandler(sink.onError))
	require.NoError(t, err)
	served := make(chan hookTestServed, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &hookTestStatusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		served <- hookTestServed{at: time.Now(), code: sw.code}
	}))
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	start := time.Now()
	hookTestSlowClient(t, srv.Listener.Addr().String(), "/kommo/"+kommo.ScopeID(hookTestChannel, hookTestAccount),
		testkit.Fixture(t, "webhooks", "typing.json"), 20*time.Millisecond, stop, &wg)
	select {
	case s := <-served:
		assert.Equal(t, http.StatusRequestTimeout, s.code)
		assert.Less(t, s.at.Sub(start), 2*time.Second+200*time.Millisecond, "the server's 200 ms, not our 3 s")
	case <-time.After(2*time.Second + 200*time.Millisecond):
		t.Fatal("handler still reading")
	}
	errs := sink.errors()
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], kommo.ErrWebhookReadTimeout)
	assert.ErrorContains(t, errs[0], "after 200ms")
}

func TestWebhookHandler_ReadTimeoutOption(t *testing.T) {
	t.Parallel()
	ok := func(context.Context, kommo.WebhookEvent) error { return nil }
	for _, d := range []time.Duration{0, -time.Second, kommo.KommoWebhookWait, 10 * time.Second} {
		_, err := kommo.NewWebhookHandler(hookTestSecret, ok, kommo.WithWebhookReadTimeout(d))
		var oe *kommo.OptionError
		require.ErrorAs(t, err, &oe, d)
		assert.Equal(t, "WithWebhookReadTimeout", oe.Option)
		assert.ErrorIs(t, err, kommo.ErrInvalidOption)
	}
	assert.Less(t, kommo.WebhookDefaultReadTimeout, kommo.KommoWebhookWait)

	// A ResponseWriter without deadlines (ErrNotSupported): carry on.
	h, err := kommo.NewWebhookHandler(hookTestSecret, ok, kommo.WithWebhookReadTimeout(kommo.KommoWebhookWait-time.Millisecond))
	require.NoError(t, err)
	body := testkit.Fixture(t, "webhooks", "typing.json")
	r := httptest.NewRequest(http.MethodPost, "/kommo/"+kommo.ScopeID(hookTestChannel, hookTestAccount), bytes.NewReader(body))
	r.Header.Set("X-Signature", kommo.SignWebhookBody(body, hookTestSecret))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusOK, w.Code)
}

// trickle writes body to w one byte per interval, until it is written, a
// write fails or stop is closed.
func trickle(w io.Writer, body []byte, interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := range body {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
	}
}
