package kommotest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

// ktEnv bundles a server, its clock and a raw HTTP client.
type ktEnv struct {
	t     *testing.T
	srv   *kommotest.Server
	clock *testkit.Clock // shared by the test and its server
	hc    *http.Client
}

func newKTEnv(t *testing.T, opts ...kommotest.Option) *ktEnv {
	t.Helper()
	clock := testkit.NewClock(time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC))
	srv := kommotest.New(t, append([]kommotest.Option{kommotest.WithClock(clock)}, opts...)...)
	return &ktEnv{t: t, srv: srv, clock: clock, hc: srv.HTTPClient()}
}

func ktBody(t *testing.T, body any) []byte {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	data, err := json.Marshal(body)
	require.NoError(t, err)
	return data
}

// chatRequest builds a Chat API request signed like the SDK signs it, with
// the server's clock; edit may tamper with it afterwards.
func (e *ktEnv) chatRequest(method, path string, body any) (*http.Request, []byte) {
	e.t.Helper()
	data := ktBody(e.t, body)
	req, err := http.NewRequest(method, e.srv.URL()+path, bytes.NewReader(data))
	require.NoError(e.t, err)
	signer := kommo.NewSigner(e.srv.ChannelSecret(), kommo.WithSignerClock(e.clock))
	require.NoError(e.t, signer.Sign(req, data))
	return req, data
}

// do sends req and returns the response with its body read.
func (e *ktEnv) do(req *http.Request) (*http.Response, []byte) {
	e.t.Helper()
	resp, err := e.hc.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp, data
}

// chat sends a correctly signed Chat API request.
func (e *ktEnv) chat(method, path string, body any) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := e.chatRequest(method, path, body)
	return e.do(req)
}

// crm sends a CRM request with the server's static bearer token.
func (e *ktEnv) crm(method, path string, body any) (*http.Response, []byte) {
	e.t.Helper()
	return e.crmWithToken(e.srv.AccessToken(), method, path, body)
}

func (e *ktEnv) crmWithToken(token, method, path string, body any) (*http.Response, []byte) {
	e.t.Helper()
	data := ktBody(e.t, body)
	req, err := http.NewRequest(method, e.srv.URL()+path, bytes.NewReader(data))
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if data != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.do(req)
}

func (e *ktEnv) scopePath(suffix string) string {
	return "/v2/origin/custom/" + e.srv.ScopeID() + suffix
}

// connect connects the main account through the API.
func (e *ktEnv) connect() string {
	e.t.Helper()
	resp, body := e.chat(http.MethodPost, "/v2/origin/custom/"+e.srv.ChannelID()+"/connect",
		map[string]any{"account_id": e.srv.AccountAmojoID(), "hook_api_version": "v2"})
	require.Equal(e.t, http.StatusOK, resp.StatusCode, string(body))
	return e.srv.ScopeID()
}

// send posts an incoming text message from client user "user-1".
func (e *ktEnv) send(conv, msgid, text string) (*http.Response, map[string]any) {
	e.t.Helper()
	resp, body := e.chat(http.MethodPost, e.scopePath(""), map[string]any{
		"event_type": "new_message",
		"payload": map[string]any{
			"timestamp": e.clock.Now().Unix(), "msec_timestamp": e.clock.Now().UnixMilli(),
			"msgid": msgid, "conversation_id": conv,
			"sender":  map[string]any{"id": "user-1", "name": "Client", "profile": map[string]any{"phone": "+15550001111"}},
			"message": map[string]any{"type": "text", "text": text},
			"silent":  false,
		},
	})
	var out map[string]any
	if len(body) > 0 && body[0] == '{' {
		require.NoError(e.t, json.Unmarshal(body, &out))
	}
	return resp, out
}

// newMessage returns the "new_message" object of a send answer.
func newMessage(t *testing.T, out map[string]any) map[string]any {
	t.Helper()
	nm, ok := out["new_message"].(map[string]any)
	require.True(t, ok, "answer has no new_message: %v", out)
	return nm
}

func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m), string(data))
	return m
}
