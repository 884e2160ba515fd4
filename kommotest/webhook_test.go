package kommotest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// hookSink is an integration's webhook endpoint that verifies signatures
// with the SDK's verifier and records what it got.
type hookSink struct {
	url    string
	secret string
	mu     sync.Mutex
	bodies [][]byte
	paths  []string
	ctypes []string
	status int
}

func httpHookSink(t *testing.T) *hookSink {
	t.Helper()
	h := &hookSink{secret: kommotest.DefaultChannelSecret, status: http.StatusOK}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || !kommo.VerifyWebhookSignature(body, r.Header.Get("X-Signature"), h.secret) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.mu.Lock()
		h.bodies = append(h.bodies, body)
		h.paths = append(h.paths, r.URL.Path)
		h.ctypes = append(h.ctypes, r.Header.Get("Content-Type"))
		status := h.status
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(ts.Close)
	h.url = ts.URL
	return h
}

func (h *hookSink) last(t *testing.T) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotEmpty(t, h.bodies, "no webhook received")
	return string(h.bodies[len(h.bodies)-1])
}

func TestDeliverManagerMessage(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	_, out := e.send("my-chat-1", "my-msg-1", "Hello")
	chat, _ := e.srv.FindChat("", "my-chat-1")
	_ = out
	sink := httpHookSink(t)

	require.NoError(t, e.srv.DeliverWebhook(t.Context(), sink.url+"/kommo/:scope_id", kommotest.ManagerMessage("my-chat-1", "Hi, how can I help?")))

	msgs := e.srv.Messages("", chat.ID)
	require.Len(t, msgs, 2)
	mgr := msgs[1]
	assert.True(t, mgr.FromKommo)
	assert.False(t, mgr.Incoming)
	assert.Equal(t, e.srv.ManagerAmojoID(), mgr.Sender.ID)
	now := e.clock.Now()
	assert.JSONEq(t, fmt.Sprintf(`{"account_id":%q,"time":%d,"message":{
		"receiver":{"id":%q,"phone":"+15550001111","email":"","client_id":"user-1"},
		"sender":{"id":%q,"name":"Manager"},
		"conversation":{"id":%q,"client_id":"my-chat-1"},
		"timestamp":%d,"msec_timestamp":%d,
		"message":{"id":%q,"type":"text","text":"Hi, how can I help?","tag":"","media":"","thumbnail":"","file_name":"","file_size":0}}}`,
		e.srv.AccountAmojoID(), now.Unix(), chat.User.ID, e.srv.ManagerAmojoID(), chat.ID, now.Unix(), now.UnixMilli(), mgr.ID),
		sink.last(t))
	assert.Equal(t, []string{"/kommo/" + e.srv.ScopeID()}, sink.paths, ":scope_id is substituted")
	assert.Equal(t, []string{"application/json"}, sink.ctypes)

	// The integration reports delivery of the manager's message.
	resp, data := e.chat(http.MethodPost, e.scopePath("/"+mgr.ID+"/delivery_status"), map[string]any{"status_code": 2})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	got, _ := e.srv.FindMessage(mgr.ID)
	assert.Equal(t, kommo.DeliveryStatusRead, got.DeliveryStatus)

	// History shows it with a receiver.
	_, data = e.chat(http.MethodGet, e.scopePath("/chats/"+chat.ID+"/history?limit=1"), nil)
	assert.Contains(t, string(data), `"receiver":{"id":"`+chat.User.ID+`"`)
}

func TestDeliverTypingReactionAndWriteFirst(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	_, out := e.send("c1", "m1", "Hello")
	msgID := newMessage(t, out)["msgid"].(string)
	chat, _ := e.srv.FindChat("", "c1")
	sink := httpHookSink(t)
	now := e.clock.Now()

	require.NoError(t, e.srv.DeliverWebhook(t.Context(), sink.url, kommotest.ManagerTyping(chat.ID)))
	assert.JSONEq(t, fmt.Sprintf(`{"account_id":%q,"time":%d,"action":{"typing":{"user":{"id":%q},
		"conversation":{"id":%q,"client_id":"c1"},"expired_at":%d}}}`,
		e.srv.AccountAmojoID(), now.Unix(), e.srv.ManagerAmojoID(), chat.ID, now.Unix()+5), sink.last(t))

	require.NoError(t, e.srv.DeliverWebhook(t.Context(), sink.url, kommotest.ManagerReaction("c1", "m1", "😍")))
	assert.JSONEq(t, fmt.Sprintf(`{"account_id":%q,"time":%d,"action":{"reaction":{"msgid":"m1",
		"message":{"id":%q,"client_id":"m1","sender":{"id":%q},"timestamp":%d,"msec_timestamp":%d},
		"user":{"id":%q},"conversation":{"id":%q,"client_id":"c1"},"type":"react","emoji":"😍"}}}`,
		e.srv.AccountAmojoID(), now.Unix(), msgID, chat.User.ID, now.Unix(), now.UnixMilli(), e.srv.ManagerAmojoID(), chat.ID), sink.last(t))
	m, _ := e.srv.FindMessage(msgID)
	assert.Equal(t, []kommotest.Reaction{{UserID: e.srv.ManagerAmojoID(), Emoji: "😍"}}, m.Reactions)

	require.NoError(t, e.srv.DeliverWebhook(t.Context(), sink.url, kommotest.ManagerReaction(chat.ID, msgID, "")))
	assert.Contains(t, sink.last(t), `"type":"unreact"`)
	assert.NotContains(t, sink.last(t), `"emoji"`)
	m, _ = e.srv.FindMessage(msgID)
	assert.Empty(t, m.Reactions)

	// Write first: a new chat without client_id, the phone on the receiver.
	require.NoError(t, e.srv.DeliverWebhook(t.Context(), sink.url, kommotest.WriteFirstMessage("+15557654321", "Your order is ready").WithSource("shop-1")))
	var wf kommotest.Chat
	for _, c := range e.srv.Chats() {
		if c.ConversationID == "" {
			wf = c
		}
	}
	require.NotEmpty(t, wf.ID)
	wfMsgs := e.srv.Messages("", wf.ID)
	require.Len(t, wfMsgs, 1)
	assert.JSONEq(t, fmt.Sprintf(`{"account_id":%q,"time":%d,"message":{
		"receiver":{"id":%q,"phone":"+15557654321","email":""},
		"sender":{"id":%q,"name":"Manager"},
		"conversation":{"id":%q},
		"source":{"external_id":"shop-1"},
		"timestamp":%d,"msec_timestamp":%d,
		"message":{"id":%q,"type":"text","text":"Your order is ready","tag":"","media":"","thumbnail":"","file_name":"","file_size":0}}}`,
		e.srv.AccountAmojoID(), now.Unix(), wf.User.ID, e.srv.ManagerAmojoID(), wf.ID, now.Unix(), now.UnixMilli(), wfMsgs[0].ID), sink.last(t))
}

func TestDeliverWebhookFailures(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	sink := httpHookSink(t)

	// Kommo sends no webhooks for a scope that is not connected.
	err := e.srv.DeliverWebhook(t.Context(), sink.url, kommotest.WriteFirstMessage("+1555", "x"))
	require.ErrorContains(t, err, "not connected")
	e.connect()
	e.send("c1", "m1", "Hello")

	require.ErrorContains(t, e.srv.DeliverWebhook(t.Context(), sink.url, kommotest.ManagerMessage("nope", "x")), `chat "nope" not found`)
	require.ErrorContains(t, e.srv.DeliverWebhook(t.Context(), sink.url, kommotest.ManagerReaction("c1", "nope", "x")), "not found")
	require.ErrorContains(t, e.srv.DeliverWebhook(t.Context(), sink.url, kommotest.Event{}), "invalid event")
	require.ErrorContains(t, e.srv.DeliverWebhook(t.Context(), sink.url, kommotest.ManagerMessage("c1", "x").WithScope("other-scope")), "not found")

	// A receiver that does not answer 200.
	sink.mu.Lock()
	sink.status = http.StatusInternalServerError
	sink.mu.Unlock()
	err = e.srv.DeliverWebhook(t.Context(), sink.url, kommotest.ManagerMessage("c1", "x"))
	var we *kommotest.WebhookError
	require.ErrorAs(t, err, &we)
	assert.Equal(t, http.StatusInternalServerError, we.StatusCode)
	assert.Len(t, e.srv.Messages("", "c1"), 2, "the manager's message is stored even if the hook failed")

	// A receiver with another secret rejects it: the signature is real.
	sink.mu.Lock()
	sink.status, sink.secret = http.StatusOK, "another-secret"
	sink.mu.Unlock()
	err = e.srv.DeliverWebhook(t.Context(), sink.url, kommotest.ManagerTyping("c1"))
	require.ErrorAs(t, err, &we)
	assert.Equal(t, http.StatusUnauthorized, we.StatusCode)

	// A receiver slower than Kommo's 5 s wait fails (the context ends first here).
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client leaving
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = e.srv.DeliverWebhook(ctx, slow.URL, kommotest.ManagerTyping("c1"))
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
}

func TestNewWebhookRequestDrivesAHandlerDirectly(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	e.send("c1", "m1", "Hello")
	req, err := e.srv.NewWebhookRequest(t.Context(), "https://integration.example/hooks/:scope_id", kommotest.ManagerMessage("c1", "Hi"))
	require.NoError(t, err)
	assert.Equal(t, "/hooks/"+e.srv.ScopeID(), req.URL.Path)
	body, err := io.ReadAll(req.Body)
	require.NoError(t, err)
	assert.True(t, kommo.VerifyWebhookSignature(body, req.Header.Get("X-Signature"), e.srv.ChannelSecret()))
	assert.Equal(t, kommo.SignWebhookBody(body, e.srv.ChannelSecret()), req.Header.Get("X-Signature"))

	raw, scope, err := e.srv.WebhookBody(kommotest.ManagerTyping("c1"))
	require.NoError(t, err)
	assert.Equal(t, e.srv.ScopeID(), scope)
	assert.Contains(t, string(raw), `"typing"`)
}

func TestNewWebhookRequestRejectsBadURLWithoutSideEffects(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	e.send("c1", "m1", "Hello")
	_, err := e.srv.NewWebhookRequest(t.Context(), "not a url", kommotest.ManagerMessage("c1", "x"))
	require.ErrorContains(t, err, "not an absolute URL")
	assert.Len(t, e.srv.Messages("", "c1"), 1)
}
