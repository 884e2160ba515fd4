package demo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

func TestFromEnvAndRequireEnv(t *testing.T) {
	for k, v := range map[string]string{
		"KOMMO_CHANNEL_ID": "chan", "KOMMO_CHANNEL_SECRET": "", "KOMMO_BOT_ID": "bot",
		"KOMMO_BASE_DOMAIN": "example.kommo.com", "KOMMO_ACCESS_TOKEN": "", "KOMMO_ACCOUNT_AMOJO_ID": "",
		"KOMMO_WEBHOOK_ADDR": ":9090",
	} {
		t.Setenv(k, v)
	}
	a := FromEnv()
	assert.Equal(t, Account{ChannelID: "chan", BotID: "bot", BaseDomain: "example.kommo.com", WebhookAddr: ":9090"}, a)
	assert.False(t, a.FindsAccount(), "a base domain without a token cannot look the amojo id up")
	a.AccessToken = "tok"
	assert.True(t, a.FindsAccount())
	assert.True(t, Account{AccountAmojoID: "amojo"}.FindsAccount())

	assert.NoError(t, RequireEnv("KOMMO_CHANNEL_ID", "KOMMO_CHANNEL_ID", "KOMMO_BOT_ID"))
	assert.EqualError(t, RequireEnv("KOMMO_CHANNEL_ID", "KOMMO_CHANNEL_SECRET", "KOMMO_BOT_ID", "KOMMO_ACCESS_TOKEN"),
		"real mode (KOMMO_CHANNEL_ID is set) also needs KOMMO_CHANNEL_SECRET, KOMMO_ACCESS_TOKEN")
}

func TestOpenEmbedded(t *testing.T) {
	ctx := testkit.Context(t)

	// A server Open starts is closed by Close.
	var out bytes.Buffer
	s, err := Open(ctx, Account{}, Options{Real: "account", Scope: true}, &out)
	require.NoError(t, err)
	srv := s.Server
	require.NotNil(t, srv)
	assert.Equal(t, "mode: embedded kommotest server at "+srv.URL()+" (set KOMMO_CHANNEL_ID to use a real account)\n", out.String())
	assert.Equal(t, srv.ScopeID(), s.ScopeID, "connected as Channels.Connect would")
	assert.Equal(t, srv.ChannelSecret(), s.ChannelSecret)
	assert.Equal(t, srv.BotID(), s.BotID)
	assert.Equal(t, "127.0.0.1:0", s.WebhookAddr)
	_, _, err = s.Client.Account.Get(ctx, nil)
	require.NoError(t, err, "the client is wired to the server")
	s.Close()
	_, err = http.Get(srv.URL())
	assert.Error(t, err, "the server is closed")

	// A server of the caller's is used, and left open; without Scope the
	// channel is not connected.
	own := kommotest.New(t)
	out.Reset()
	s, err = Open(ctx, Account{}, Options{Real: "channel", Server: own}, &out)
	require.NoError(t, err)
	s.Close()
	assert.Same(t, own, s.Server)
	assert.Equal(t, "mode: embedded kommotest server at "+own.URL()+" (set KOMMO_CHANNEL_ID to use a real channel)\n", out.String())
	assert.Empty(t, s.ScopeID)
	_, _, err = s.Client.Account.Get(ctx, nil)
	assert.NoError(t, err, "still open")

	_, err = Open(ctx, Account{}, Options{Server: own, ClientOptions: []kommo.Option{kommo.WithRateLimit(-1, 0)}}, io.Discard)
	assert.Error(t, err, "bad client options")
}

func TestOpenReal(t *testing.T) {
	ctx := testkit.Context(t)
	var out bytes.Buffer

	// A channel only: no request is sent.
	s, err := Open(ctx, Account{ChannelID: "chan-1", ChannelSecret: "secret", BotID: "bot-1", WebhookAddr: ":8080"},
		Options{App: "demo-test", Real: "channel"}, &out)
	require.NoError(t, err)
	s.Close()
	assert.Equal(t, "mode: real channel chan-1\n", out.String())
	assert.Nil(t, s.Server)
	assert.Equal(t, "secret", s.ChannelSecret)
	assert.Equal(t, "bot-1", s.BotID)
	assert.Equal(t, ":8080", s.WebhookAddr)
	assert.Contains(t, s.Client.UserAgent(), " demo-test/"+kommo.Version)
	_, _, err = s.Client.Account.Get(ctx, nil)
	assert.ErrorIs(t, err, kommo.ErrNoCredentials, "no CRM part without a base domain and token")

	// An account named by its base domain.
	out.Reset()
	_, err = Open(ctx, Account{ChannelID: "chan-1", ChannelSecret: "secret", BaseDomain: "example.kommo.com", AccessToken: "tok"},
		Options{Real: "account"}, &out)
	require.NoError(t, err)
	assert.Equal(t, "mode: real account example.kommo.com\n", out.String())

	// With Scope: the given amojo id, or the one the account reports.
	out.Reset()
	s, err = Open(ctx, Account{ChannelID: "chan-1", ChannelSecret: "secret", AccountAmojoID: "amojo-1"},
		Options{Real: "account", Scope: true}, &out)
	require.NoError(t, err)
	assert.Equal(t, "mode: real account amojo-1\n", out.String())
	assert.Equal(t, "chan-1_amojo-1", s.ScopeID)

	srv := kommotest.New(t) // stands in for the account's CRM
	out.Reset()
	s, err = Open(ctx, Account{ChannelID: "chan-1", ChannelSecret: "secret", BaseDomain: "kommotest.kommo.com", AccessToken: srv.AccessToken()},
		Options{Real: "account", Scope: true, ClientOptions: []kommo.Option{kommo.WithCRMBaseURL(srv.URL() + "/"), kommo.WithHTTPClient(srv.HTTPClient())}}, &out)
	require.NoError(t, err)
	assert.Equal(t, "mode: real account "+srv.AccountAmojoID()+"\n", out.String())
	assert.Equal(t, "chan-1_"+srv.AccountAmojoID(), s.ScopeID)

	srv.FailNext(1, http.StatusUnauthorized, "")
	_, err = Open(ctx, Account{ChannelID: "chan-1", ChannelSecret: "secret", BaseDomain: "kommotest.kommo.com", AccessToken: srv.AccessToken()},
		Options{Real: "account", Scope: true, ClientOptions: []kommo.Option{kommo.WithCRMBaseURL(srv.URL() + "/"), kommo.WithHTTPClient(srv.HTTPClient())}}, io.Discard)
	require.ErrorIs(t, err, kommo.ErrUnauthorized)
	assert.ErrorContains(t, err, "get account amojo id: ")

	_, err = Open(ctx, Account{ChannelID: "chan-1"}, Options{}, io.Discard)
	assert.Error(t, err, "NewClient refuses a channel without a secret")
}

func TestReport(t *testing.T) {
	var out bytes.Buffer
	report(&out, "quickstart", errors.New("boom"))
	assert.Equal(t, "quickstart: boom\n", out.String())

	out.Reset()
	report(&out, "quickstart", fmt.Errorf("close talk: %w", &kommo.APIError{StatusCode: 500, RequestID: "req-42"}))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 2)
	assert.True(t, strings.HasPrefix(lines[0], "quickstart: close talk: "), lines[0])
	assert.Equal(t, "quickstart: request id: req-42", lines[1])
}

func TestServe(t *testing.T) {
	var hooks atomic.Int32
	s, err := ServeWebhooks("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hooks.Add(1)
		fmt.Fprint(w, r.PathValue("scope_id"))
	}))
	require.NoError(t, err)
	defer s.Stop()

	assert.Equal(t, ReadHeaderTimeout, s.srv.ReadHeaderTimeout)
	assert.Equal(t, ReadTimeout, s.srv.ReadTimeout)
	assert.Equal(t, WriteTimeout, s.srv.WriteTimeout)
	assert.Equal(t, IdleTimeout, s.srv.IdleTimeout)
	assert.Less(t, ReadTimeout, kommotest.WebhookTimeout, "reads end well within Kommo's webhook budget")

	assert.Equal(t, "http://"+s.Addr().String(), s.URL())
	assert.Equal(t, s.URL()+"/kommo/:scope_id", s.WebhookURL())
	resp, err := http.Post(s.URL()+"/kommo/scope-1", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "scope-1", string(body))
	resp, err = http.Get(s.URL() + "/kommo/scope-1")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "webhooks are POSTs")
	assert.Equal(t, int32(1), hooks.Load())

	require.NoError(t, s.Shutdown(context.Background()))
	select {
	case err := <-s.Err():
		t.Fatalf("Err after Shutdown: %v", err)
	default:
	}
	_, err = Serve(s.Addr().String(), http.NotFoundHandler())
	require.NoError(t, err, "the port is free again")

	_, err = Serve("256.0.0.1:0", http.NotFoundHandler())
	assert.Error(t, err)
}

func TestServeCutsSlowClients(t *testing.T) {
	// A client that sends its headers too slowly is disconnected once the
	// read-header timeout passes (short here; ReadHeaderTimeout in Serve).
	s, err := serve("127.0.0.1:0", &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	defer s.Stop()
	conn, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprint(conn, "POST /kommo/x HTTP/1.1\r\nHost: x\r\n") // and never the blank line
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = bufio.NewReader(conn).ReadString('\n')
	assert.ErrorIs(t, err, io.EOF, "the server closed the connection")
	assert.Less(t, time.Since(start), 3*time.Second)
}

func TestAwait(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	v, err := Await(t.Context(), ch, time.Second)
	require.NoError(t, err)
	assert.Equal(t, 7, v)

	_, err = Await(t.Context(), ch, 10*time.Millisecond)
	require.ErrorIs(t, err, ErrTimeout)
	assert.EqualError(t, err, "timed out after 10ms")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = Await(ctx, ch, time.Minute)
	assert.ErrorIs(t, err, context.Canceled)
}
