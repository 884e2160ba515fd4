package kommo_test

// End-to-end tests: the SDK against kommotest over real HTTP on loopback.
// kommotest checks every Chat API signature and every bearer token the way
// Kommo does, so a passing call here proves the request was signed and
// authenticated correctly, not only shaped correctly.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/chatsign"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

// e2eRetryPolicy retries quickly and deterministically (no jitter).
func e2eRetryPolicy() kommo.RetryPolicy {
	return kommo.RetryPolicy{
		MaxAttempts:   4,
		BaseBackoff:   10 * time.Millisecond,
		MaxBackoff:    40 * time.Millisecond,
		MaxRetryAfter: 5 * time.Second,
		Jitter:        0,
	}
}

// e2eStart is where the clock of an e2eSetup test starts.
var e2eStart = time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)

// e2eSetup starts a fake Kommo with the main account connected and a
// client with the fast retry policy. Server and client share a clock that
// records every wait the client makes, then really waits.
func e2eSetup(t *testing.T, opts ...kommo.Option) (*kommotest.Server, *kommo.Client, string, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(e2eStart, testkit.RealSleep())
	srv := kommotest.New(t, kommotest.WithClock(clk))
	base := []kommo.Option{kommo.WithRetryPolicy(e2eRetryPolicy()), kommo.WithClock(clk)}
	client, err := srv.Client(append(base, opts...)...)
	require.NoError(t, err)
	scopeID := srv.Connect(srv.AccountAmojoID())
	require.NotEmpty(t, scopeID)
	return srv, client, scopeID, clk
}

// e2eIncoming is a text message from client-1 in conv.
func e2eIncoming(msgID, conv, text string) *kommo.SendMessageRequest {
	return &kommo.SendMessageRequest{
		MsgID:          msgID,
		ConversationID: conv,
		Sender:         &kommo.Participant{ID: "client-1", Name: "Alice"},
		Message:        kommo.TextMessage(text),
	}
}

// e2eRequests returns the recorded requests with the given method and
// escaped path.
func e2eRequests(srv *kommotest.Server, method, path string) []kommotest.RecordedRequest {
	var out []kommotest.RecordedRequest
	for _, r := range srv.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// e2ePayloadMsgID returns payload.msgid of a recorded new_message body.
func e2ePayloadMsgID(t *testing.T, body []byte) string {
	t.Helper()
	var v struct {
		EventType string `json:"event_type"`
		Payload   struct {
			MsgID string `json:"msgid"`
		} `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(body, &v))
	return v.Payload.MsgID
}

// e2eAssertSigned recomputes the signature of every recorded Chat API
// request and returns how many there were.
func e2eAssertSigned(t *testing.T, srv *kommotest.Server) int {
	t.Helper()
	key := chatsign.NewKey(srv.ChannelSecret())
	n := 0
	for _, r := range srv.Requests() {
		if !strings.HasPrefix(r.Path, "/v2/origin/custom/") {
			continue
		}
		n++
		md5 := chatsign.ContentMD5(r.Body)
		assert.Equal(t, md5, r.Header.Get(chatsign.HeaderContentMD5), "%s %s", r.Method, r.Path)
		assert.Equal(t, kommo.ContentTypeJSON, r.Header.Get(chatsign.HeaderContentType), "%s %s", r.Method, r.Path)
		want := key.Signature(r.Method, md5, r.Header.Get(chatsign.HeaderContentType), r.Header.Get(chatsign.HeaderDate), r.Path)
		assert.Equal(t, want, r.Header.Get(chatsign.HeaderSignature), "%s %s", r.Method, r.Path)
	}
	return n
}

type e2eHook struct {
	scopeID string
	event   kommo.WebhookEvent
}

// e2eWebhookServer serves kommo.NewWebhookHandler on loopback at
// /kommo/{scope_id} and returns the URL to register with Kommo (with the
// :scope_id marker) and the events the callback received.
func e2eWebhookServer(t *testing.T, secret string) (string, <-chan e2eHook) {
	t.Helper()
	events := make(chan e2eHook, 16)
	h, err := kommo.NewWebhookHandler(secret, func(ctx context.Context, ev kommo.WebhookEvent) error {
		events <- e2eHook{scopeID: kommo.WebhookScopeID(ctx), event: ev}
		return nil
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("POST /kommo/{scope_id}", h)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL + "/kommo/:scope_id", events
}

func e2eNextHook(t *testing.T, events <-chan e2eHook) e2eHook {
	t.Helper()
	select {
	case h := <-events:
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("no webhook reached the callback")
		return e2eHook{}
	}
}

func e2eMessageEvent(t *testing.T, h e2eHook) *kommo.MessageEvent {
	t.Helper()
	ev, ok := h.event.(*kommo.MessageEvent)
	require.Truef(t, ok, "event is %T, want *kommo.MessageEvent", h.event)
	return ev
}

func TestE2EFullFlow(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := kommotest.New(t)
	client, err := srv.Client(kommo.WithRetryPolicy(e2eRetryPolicy()))
	require.NoError(t, err)

	// Account → amojo id.
	amojoID, resp, err := client.Account.AmojoID(ctx)
	require.NoError(t, err)
	assert.Equal(t, srv.AccountAmojoID(), amojoID)
	assert.Equal(t, 1, resp.Attempts)
	acc := e2eRequests(srv, http.MethodGet, "/api/v4/account")
	require.Len(t, acc, 1)
	assert.Equal(t, "amojo_id", acc[0].Query.Get("with"))
	assert.Equal(t, "Bearer "+srv.AccessToken(), acc[0].Header.Get("Authorization"))

	// Connect.
	conn, _, err := client.Channels.Connect(ctx, &kommo.ConnectRequest{AccountID: amojoID, Title: "E2E shop"})
	require.NoError(t, err)
	scopeID := conn.ScopeID
	assert.Equal(t, srv.ScopeID(), scopeID)
	assert.Equal(t, kommo.ScopeID(srv.ChannelID(), amojoID), scopeID)
	assert.Equal(t, amojoID, conn.AccountID)
	assert.Equal(t, "E2E shop", conn.Title)
	assert.Equal(t, kommo.ChannelHookAPIV2, conn.HookAPIVersion)
	assert.True(t, srv.IsConnected(scopeID))

	// Create the chat, twice: the same chat comes back.
	createReq := &kommo.CreateChatRequest{
		ConversationID: "conv-1",
		User: kommo.Participant{ID: "client-1", Name: "Alice",
			Profile: &kommo.ParticipantProfile{Phone: "+15550001111", Email: "alice@example.com"}},
	}
	chat, _, err := client.Chats.Create(ctx, scopeID, createReq)
	require.NoError(t, err)
	require.NotEmpty(t, chat.ID)
	require.NotNil(t, chat.User)
	assert.Equal(t, "client-1", chat.User.ClientID)
	assert.Equal(t, "Alice", chat.User.Name)
	assert.Equal(t, "+15550001111", chat.User.Phone)
	assert.Equal(t, "alice@example.com", chat.User.Email)
	again, _, err := client.Chats.Create(ctx, scopeID, createReq)
	require.NoError(t, err)
	assert.Equal(t, chat.ID, again.ID)
	assert.Equal(t, chat.User.ID, again.User.ID)
	require.Len(t, srv.Chats(), 1)
	stored, ok := srv.FindChat(scopeID, "conv-1")
	require.True(t, ok)
	assert.Equal(t, chat.ID, stored.ID)
	assert.Equal(t, chat.User.ID, stored.User.ID)

	// An incoming message: stored, and it opens a talk.
	sent, resp, err := client.Messages.Send(ctx, scopeID, e2eIncoming("m-1", "conv-1", "Do you have it in blue?"))
	require.NoError(t, err)
	assert.Equal(t, 1, resp.Attempts)
	assert.Equal(t, "m-1", sent.MsgID)
	assert.Equal(t, chat.ID, sent.ConversationID)
	assert.Equal(t, chat.User.ID, sent.SenderID)
	assert.Empty(t, sent.ReceiverID)
	msgs := srv.Messages(scopeID, "conv-1")
	require.Len(t, msgs, 1)
	assert.Equal(t, sent.ID, msgs[0].ID)
	assert.Equal(t, "m-1", msgs[0].MsgID)
	assert.Equal(t, "Do you have it in blue?", msgs[0].Text)
	assert.Equal(t, kommo.MessageTypeText, msgs[0].Type)
	assert.True(t, msgs[0].Incoming)
	assert.False(t, msgs[0].Silent)
	assert.Nil(t, msgs[0].Receiver)
	st, ok := srv.TalkForChat(chat.ID)
	require.True(t, ok, "an incoming message opens a talk")
	assert.False(t, st.Closed)
	require.Len(t, srv.Talks(), 1)

	// Contacts ↔ chats.
	links, _, err := client.ContactsChats.Link(ctx, []*kommo.ContactChatLink{
		{ContactID: 3102959, ChatID: chat.ID, RequestID: "link-alice"},
	})
	require.NoError(t, err)
	require.Len(t, links, 1)
	assert.Equal(t, 3102959, links[0].ContactID)
	assert.Equal(t, chat.ID, links[0].ChatID)
	assert.Equal(t, "link-alice", links[0].RequestID)
	assert.Positive(t, links[0].ID)
	byChat, _, err := client.ContactsChats.List(ctx, &kommo.ContactChatListOptions{ChatIDs: []string{chat.ID}})
	require.NoError(t, err)
	require.Len(t, byChat, 1)
	assert.Equal(t, kommo.ContactChat{ID: links[0].ID, ChatID: chat.ID, ContactID: 3102959}, *byChat[0])
	byContact, _, err := client.ContactsChats.List(ctx, &kommo.ContactChatListOptions{ContactIDs: []int{3102959}})
	require.NoError(t, err)
	require.Len(t, byContact, 1)
	assert.Equal(t, chat.ID, byContact[0].ChatID)
	contact, ok := srv.ContactForChat(chat.ID)
	require.True(t, ok)
	assert.Equal(t, 3102959, contact)

	// The talk, as the CRM shows it.
	talk, _, err := client.Talks.Get(ctx, st.ID)
	require.NoError(t, err)
	assert.Equal(t, st.ID, talk.ID)
	assert.Equal(t, chat.ID, talk.ChatID)
	assert.Equal(t, st.ContactID, talk.ContactID)
	assert.True(t, talk.IsInWork)
	assert.Equal(t, srv.ChannelCode(), talk.Origin)
	assert.Equal(t, srv.AccountID(), talk.AccountID)
	assert.Equal(t, st.CreatedAt.Unix(), talk.CreatedAt)
	require.NotNil(t, talk.EntityID)
	assert.Equal(t, st.LeadID, *talk.EntityID)
	require.NotNil(t, talk.EntityType)
	assert.Equal(t, kommo.TalkEntityLead, *talk.EntityType)
	assert.Nil(t, talk.MissedAt)
	require.NotNil(t, talk.Embedded)
	require.Len(t, talk.Embedded.Leads, 1)
	assert.Equal(t, st.LeadID, talk.Embedded.Leads[0].ID)

	// A manager answers in Kommo: the webhook reaches the handler.
	hookURL, events := e2eWebhookServer(t, srv.ChannelSecret())
	require.NoError(t, srv.DeliverWebhook(ctx, hookURL, kommotest.ManagerMessage(chat.ID, "Yes, in blue and red")))
	hook := e2eNextHook(t, events)
	assert.Equal(t, scopeID, hook.scopeID)
	ev := e2eMessageEvent(t, hook)
	assert.Equal(t, kommo.WebhookKindMessage, ev.Kind())
	assert.Equal(t, amojoID, ev.AccountID)
	assert.Equal(t, "Yes, in blue and red", ev.Message.Text)
	assert.Equal(t, kommo.MessageTypeText, ev.Message.Type)
	assert.Equal(t, chat.ID, ev.Conversation.ID)
	assert.Equal(t, "conv-1", ev.Conversation.ClientID)
	assert.False(t, ev.IsWriteFirst())
	assert.Equal(t, srv.ManagerAmojoID(), ev.Sender.ID)
	assert.Equal(t, srv.ManagerName(), ev.Sender.Name)
	assert.Equal(t, chat.User.ID, ev.Receiver.ID)
	assert.Equal(t, "client-1", ev.Receiver.ClientID)
	assert.Equal(t, "+15550001111", ev.Receiver.Phone)
	assert.NotEmpty(t, ev.Raw)
	mgr, ok := srv.FindMessage(ev.Message.ID)
	require.True(t, ok, "the hook's message id is the stored message's amojo id")
	assert.True(t, mgr.FromKommo)
	assert.False(t, mgr.Incoming)
	assert.Equal(t, "Yes, in blue and red", mgr.Text)
	assert.Zero(t, mgr.DeliveryStatus)

	// Delivery status: delivered, then read.
	for _, status := range []kommo.DeliveryStatus{kommo.DeliveryStatusDelivered, kommo.DeliveryStatusRead} {
		_, err = client.Messages.UpdateDeliveryStatus(ctx, scopeID, ev.Message.ID, &kommo.DeliveryStatusRequest{Status: status})
		require.NoError(t, err)
		mgr, _ = srv.FindMessage(ev.Message.ID)
		assert.Equal(t, status, mgr.DeliveryStatus)
		assert.Zero(t, mgr.DeliveryErrorCode)
	}
	assert.Len(t, e2eRequests(srv, http.MethodPost, "/v2/origin/custom/"+scopeID+"/"+ev.Message.ID+"/delivery_status"), 2)

	// Typing: 204, documented body.
	resp, err = client.Messages.Typing(ctx, scopeID, &kommo.TypingRequest{ConversationID: "conv-1", SenderID: "client-1", Duration: 3 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	typing := e2eRequests(srv, http.MethodPost, "/v2/origin/custom/"+scopeID+"/typing")
	require.Len(t, typing, 1)
	assert.JSONEq(t, `{"conversation_id":"conv-1","sender":{"id":"client-1"},"duration_ms":3000}`, string(typing[0].Body))

	// The client reacts to the manager's message, then takes it back.
	react := &kommo.ReactionRequest{ConversationID: "conv-1", ID: ev.Message.ID, User: kommo.ReactionUser{ID: "client-1"}, Emoji: "👍"}
	_, err = client.Messages.React(ctx, scopeID, react)
	require.NoError(t, err)
	mgr, _ = srv.FindMessage(ev.Message.ID)
	assert.Equal(t, []kommotest.Reaction{{UserID: chat.User.ID, ClientUserID: "client-1", Emoji: "👍"}}, mgr.Reactions)
	_, err = client.Messages.Unreact(ctx, scopeID, &kommo.ReactionRequest{ConversationID: "conv-1", ID: ev.Message.ID, User: kommo.ReactionUser{ID: "client-1"}})
	require.NoError(t, err)
	mgr, _ = srv.FindMessage(ev.Message.ID)
	assert.Empty(t, mgr.Reactions)

	// Edit the client's message.
	_, err = client.Messages.Edit(ctx, scopeID, &kommo.EditMessageRequest{
		MsgID: "m-1", ConversationID: "conv-1", Message: kommo.TextMessage("Do you have it in navy blue?"),
	})
	require.NoError(t, err)
	edited, ok := srv.FindMessage(sent.ID)
	require.True(t, ok)
	assert.True(t, edited.Edited)
	assert.Equal(t, "Do you have it in navy blue?", edited.Text)
	assert.Len(t, srv.Messages(scopeID, "conv-1"), 2, "an edit stores no new message")

	// History: every message, newest first, one page per message.
	history, err := kommo.Collect(client.History.All(ctx, scopeID, chat.ID, &kommo.HistoryOptions{Limit: 1}))
	require.NoError(t, err)
	require.Len(t, history, 2)
	assert.Equal(t, ev.Message.ID, history[0].Message.ID)
	assert.Equal(t, "Yes, in blue and red", history[0].Message.Text)
	assert.Equal(t, srv.ManagerAmojoID(), history[0].Sender.ID)
	require.NotNil(t, history[0].Receiver)
	assert.Equal(t, chat.User.ID, history[0].Receiver.ID)
	assert.Equal(t, sent.ID, history[1].Message.ID)
	assert.Equal(t, "m-1", history[1].Message.ClientID)
	assert.Equal(t, "Do you have it in navy blue?", history[1].Message.Text)
	assert.Equal(t, "client-1", history[1].Sender.ClientID)
	assert.Nil(t, history[1].Receiver)
	pages := e2eRequests(srv, http.MethodGet, "/v2/origin/custom/"+scopeID+"/chats/"+chat.ID+"/history")
	require.Len(t, pages, 3, "two full pages and the empty one that ends the history")
	for i, p := range pages {
		assert.Equal(t, []string{"1", []string{"0", "1", "2"}[i]}, []string{p.Query.Get("limit"), p.Query.Get("offset")})
	}

	// Close the talk; a second close is ErrTalkClosed and is not retried.
	resp, err = client.Talks.Close(ctx, talk.ID, &kommo.CloseTalkRequest{ForceClose: true})
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	st, _ = srv.TalkForChat(chat.ID)
	assert.True(t, st.Closed)
	assert.True(t, st.ForceClosed)
	_, err = client.Talks.Close(ctx, talk.ID, &kommo.CloseTalkRequest{ForceClose: true})
	require.ErrorIs(t, err, kommo.ErrTalkClosed)
	var apiErr *kommo.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnprocessableEntity, apiErr.StatusCode)
	assert.Len(t, e2eRequests(srv, http.MethodPost, "/api/v4/talks/"+strconv.Itoa(talk.ID)+"/close"), 2)
	got, _, err := client.Talks.Get(ctx, talk.ID)
	require.NoError(t, err)
	assert.False(t, got.IsInWork)

	// Disconnect: the scope is gone, and so is sending to it.
	_, err = client.Channels.Disconnect(ctx, amojoID)
	require.NoError(t, err)
	assert.False(t, srv.IsConnected(scopeID))
	_, _, err = client.Messages.Send(ctx, scopeID, e2eIncoming("m-2", "conv-1", "Hello?"))
	require.ErrorIs(t, err, kommo.ErrNotFound)
	assert.Len(t, srv.Messages(scopeID, "conv-1"), 2)

	// Every Chat API request carried a correct signature, and every call
	// took one attempt.
	assert.Equal(t, 15, e2eAssertSigned(t, srv))
	for _, r := range srv.Requests() {
		assert.Empty(t, r.Fault, "%s %s", r.Method, r.Path)
	}
}

func TestE2EWriteFirstBinding(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, client, scopeID, _ := e2eSetup(t)
	hookURL, events := e2eWebhookServer(t, srv.ChannelSecret())

	// A manager writes first to a phone number through source "line-1".
	require.NoError(t, srv.DeliverWebhook(ctx, hookURL, kommotest.WriteFirstMessage("+15550002222", "Your order is ready").WithSource("line-1")))
	hook := e2eNextHook(t, events)
	assert.Equal(t, scopeID, hook.scopeID)
	ev := e2eMessageEvent(t, hook)
	require.True(t, ev.IsWriteFirst())
	assert.Empty(t, ev.Conversation.ClientID)
	assert.NotEmpty(t, ev.Conversation.ID)
	assert.Equal(t, "+15550002222", ev.Receiver.Phone)
	assert.Empty(t, ev.Receiver.ClientID)
	assert.Equal(t, "line-1", ev.Source.ExternalID)
	assert.Equal(t, "Your order is ready", ev.Message.Text)
	wf, ok := srv.FindChat(scopeID, ev.Conversation.ID)
	require.True(t, ok)
	assert.Empty(t, wf.ConversationID, "not bound yet")

	// The client answers in the messenger: the integration binds its chat
	// id (and its user id) to Kommo's.
	sent, _, err := client.Messages.Send(ctx, scopeID, &kommo.SendMessageRequest{
		MsgID:             "wf-reply-1",
		ConversationID:    "conv-wf",
		ConversationRefID: ev.Conversation.ID,
		Sender:            &kommo.Participant{ID: "client-wf", RefID: ev.Receiver.ID, Name: "Bob"},
		Message:           kommo.TextMessage("Great, thanks!"),
	})
	require.NoError(t, err)
	assert.Equal(t, ev.Conversation.ID, sent.ConversationID)
	assert.Equal(t, ev.Receiver.ID, sent.SenderID)

	bound, ok := srv.FindChat(scopeID, "conv-wf")
	require.True(t, ok, "the chat is now found by the integration's id")
	assert.Equal(t, ev.Conversation.ID, bound.ID)
	assert.Equal(t, "conv-wf", bound.ConversationID)
	assert.Equal(t, "client-wf", bound.User.ClientID)
	assert.Equal(t, "+15550002222", bound.User.Phone)
	require.Len(t, srv.Chats(), 1, "binding creates no second chat")
	// (Compared as a set: both may fall in the same millisecond, see
	// TestE2EMessageOrderWithinOneMillisecond.)
	var texts []string
	for _, m := range srv.Messages(scopeID, "conv-wf") {
		assert.Equal(t, ev.Conversation.ID, m.ChatID)
		assert.Equal(t, m.Text == "Great, thanks!", m.Incoming)
		texts = append(texts, m.Text)
	}
	assert.ElementsMatch(t, []string{"Your order is ready", "Great, thanks!"}, texts)

	// Later hooks of the chat carry the integration's chat id.
	require.NoError(t, srv.DeliverWebhook(ctx, hookURL, kommotest.ManagerMessage("conv-wf", "See you")))
	next := e2eMessageEvent(t, e2eNextHook(t, events))
	assert.False(t, next.IsWriteFirst())
	assert.Equal(t, "conv-wf", next.Conversation.ClientID)
	assert.Equal(t, ev.Conversation.ID, next.Conversation.ID)
	assert.Equal(t, "client-wf", next.Receiver.ClientID)
}

func TestE2ESourcesCRUD(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, client, _, _ := e2eSetup(t)

	// Nothing yet: Kommo's 204 is an empty list.
	none, _, err := client.Sources.List(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, none)

	created, _, err := client.Sources.Create(ctx, []*kommo.Source{
		{Name: "Sales", ExternalID: "sales", Default: kommo.Ptr(true)},
		{Name: "Support", ExternalID: "support", PipelineID: 7000042,
			Services: []*kommo.SourceMessenger{{Type: kommo.SourceMessengerWhatsApp,
				Pages: []*kommo.SourceMessengerPage{{ID: "p1", Name: "Support line", Link: "15550003333"}}}}},
	})
	require.NoError(t, err)
	require.Len(t, created, 2)
	sales, support := created[0], created[1]
	assert.Equal(t, []string{"0", "1"}, []string{sales.RequestID, support.RequestID})
	assert.Equal(t, "Sales", sales.Name)
	assert.Equal(t, "sales", sales.ExternalID)
	assert.Equal(t, srv.MainPipelineID(), sales.PipelineID, "the main pipeline by default")
	require.NotNil(t, sales.Default)
	assert.True(t, *sales.Default)
	assert.Equal(t, 7000042, support.PipelineID)
	require.Len(t, support.Services, 1)
	assert.Equal(t, kommo.SourceMessengerWhatsApp, support.Services[0].Type)
	require.Len(t, support.Services[0].Pages, 1)
	assert.Equal(t, "15550003333", support.Services[0].Pages[0].Link)
	assert.NotEqual(t, sales.ID, support.ID)

	snap := srv.Sources()
	require.Len(t, snap, 2)
	assert.Equal(t, []int{sales.ID, support.ID}, []int{snap[0].ID, snap[1].ID})
	assert.True(t, snap[0].Default)
	assert.False(t, snap[1].Default)
	assert.JSONEq(t, `[{"type":"whatsapp","pages":[{"id":"p1","name":"Support line","link":"15550003333"}]}]`, string(snap[1].Services))

	// The same external id again is refused by the server.
	_, _, err = client.Sources.Create(ctx, []*kommo.Source{{Name: "Sales 2", ExternalID: "sales"}})
	require.ErrorIs(t, err, kommo.ErrBadRequest)
	var apiErr *kommo.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Len(t, apiErr.ValidationErrors, 1)
	require.Len(t, apiErr.ValidationErrors[0].Errors, 1)
	assert.Equal(t, "NotUnique", apiErr.ValidationErrors[0].Errors[0].Code)
	assert.Equal(t, "external_id", apiErr.ValidationErrors[0].Errors[0].Path)

	// Read.
	filtered, _, err := client.Sources.List(ctx, &kommo.SourceListOptions{ExternalIDs: []string{"support"}})
	require.NoError(t, err)
	require.Len(t, filtered, 1)
	assert.Equal(t, support.ID, filtered[0].ID)
	both, _, err := client.Sources.List(ctx, &kommo.SourceListOptions{ExternalIDs: []string{"support", "sales"}})
	require.NoError(t, err)
	assert.Len(t, both, 2)
	one, _, err := client.Sources.Get(ctx, sales.ID)
	require.NoError(t, err)
	assert.Equal(t, "Sales", one.Name)
	assert.Equal(t, "sales", one.ExternalID)

	// Update one, then a batch.
	renamed, _, err := client.Sources.UpdateOne(ctx, &kommo.Source{ID: sales.ID, Name: "Sales EU"})
	require.NoError(t, err)
	assert.Equal(t, "Sales EU", renamed.Name)
	assert.Equal(t, srv.MainPipelineID(), renamed.PipelineID, "fields left zero are unchanged")
	updated, _, err := client.Sources.Update(ctx, []*kommo.Source{{ID: support.ID, Default: kommo.Ptr(true), PipelineID: 7000043}})
	require.NoError(t, err)
	require.Len(t, updated, 1)
	assert.Equal(t, 7000043, updated[0].PipelineID)
	snap = srv.Sources()
	require.Len(t, snap, 2)
	assert.Equal(t, "Sales EU", snap[0].Name)
	assert.False(t, snap[0].Default, "a new default clears the old one")
	assert.True(t, snap[1].Default)
	assert.Equal(t, "sales", snap[0].ExternalID, "external_id never changes")

	all, err := kommo.Collect(client.Sources.All(ctx, nil))
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, []string{"Sales EU", "Support"}, []string{all[0].Name, all[1].Name})

	// Delete one, then the rest; a missing id is reported.
	_, err = client.Sources.DeleteOne(ctx, sales.ID)
	require.NoError(t, err)
	_, _, err = client.Sources.Get(ctx, sales.ID)
	require.ErrorIs(t, err, kommo.ErrNotFound)
	_, err = client.Sources.Delete(ctx, []int{support.ID, 999999})
	require.ErrorIs(t, err, kommo.ErrBadRequest)
	assert.Len(t, srv.Sources(), 1, "a failed batch delete deletes nothing")
	_, err = client.Sources.Delete(ctx, []int{support.ID})
	require.NoError(t, err)
	assert.Empty(t, srv.Sources())
	left, _, err := client.Sources.List(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, left)
	_, err = client.Sources.DeleteOne(ctx, support.ID)
	require.ErrorIs(t, err, kommo.ErrNotFound)
}

// e2eTokenStore is an in-memory kommo.TokenStore that counts saves.
type e2eTokenStore struct {
	mu    sync.Mutex
	tok   *oauth2.Token
	saved []*oauth2.Token
}

func (s *e2eTokenStore) Load(context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		return nil, errors.New("e2e: no token")
	}
	cp := *s.tok
	return &cp, nil
}

func (s *e2eTokenStore) Save(_ context.Context, tok *oauth2.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *tok
	s.tok = &cp
	s.saved = append(s.saved, &cp)
	return nil
}

func (s *e2eTokenStore) snapshot() (*oauth2.Token, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *s.tok
	return &cp, len(s.saved)
}

func TestE2EOAuth(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// One clock for the server and the OAuth config, so that token expiry
	// can be reached without waiting.
	clk := testkit.NewClock(time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC))
	srv := kommotest.New(t, kommotest.WithClock(clk))
	cfg := &kommo.OAuthConfig{
		ClientID:     srv.OAuthClientID(),
		ClientSecret: srv.OAuthClientSecret(),
		RedirectURL:  srv.OAuthRedirectURI(),
		BaseDomain:   srv.AccountDomain(),
		TokenURL:     srv.TokenURL(),
		HTTPClient:   srv.HTTPClient(),
		Clock:        clk,
	}
	const tokenPath = "/oauth2/access_token"

	// Exchange the code the redirect brought.
	code := srv.IssueAuthCode()
	first, err := cfg.Exchange(ctx, code)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(first.AccessToken, "at-"), first.AccessToken)
	assert.True(t, strings.HasPrefix(first.RefreshToken, "rt-"), first.RefreshToken)
	assert.Equal(t, "Bearer", first.TokenType)
	assert.Equal(t, clk.Now().Add(kommotest.DefaultTokenLifetime), first.Expiry)
	ex := e2eRequests(srv, http.MethodPost, tokenPath)
	require.Len(t, ex, 1)
	assert.JSONEq(t, `{"client_id":"`+srv.OAuthClientID()+`","client_secret":"`+srv.OAuthClientSecret()+
		`","grant_type":"authorization_code","code":"`+code+`","redirect_uri":"`+srv.OAuthRedirectURI()+`"}`, string(ex[0].Body))

	// A code is single use.
	_, err = cfg.Exchange(ctx, code)
	require.ErrorIs(t, err, kommo.ErrBadRequest)
	assert.NotErrorIs(t, err, kommo.ErrReauthorizationRequired)
	assert.NotContains(t, err.Error(), code)
	assert.NotContains(t, err.Error(), srv.OAuthClientSecret())

	store := &e2eTokenStore{tok: first}
	ts, err := kommo.NewTokenSource(ctx, cfg, store)
	require.NoError(t, err)
	client, err := srv.Client(kommo.WithTokenSource(ts), kommo.WithRetryPolicy(e2eRetryPolicy()))
	require.NoError(t, err)

	amojoID, _, err := client.Account.AmojoID(ctx)
	require.NoError(t, err)
	assert.Equal(t, srv.AccountAmojoID(), amojoID)
	acc := e2eRequests(srv, http.MethodGet, "/api/v4/account")
	require.Len(t, acc, 1)
	assert.Equal(t, "Bearer "+first.AccessToken, acc[0].Header.Get("Authorization"))
	_, saves := store.snapshot()
	assert.Equal(t, 0, saves, "a valid token is not refreshed")

	// A day later the access token has expired: concurrent calls share
	// exactly one refresh, saved before use.
	clk.Advance(25 * time.Hour)
	const callers = 5
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = client.Account.AmojoID(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	refreshes := e2eRequests(srv, http.MethodPost, tokenPath)
	require.Len(t, refreshes, 3, "two exchanges (one refused) and exactly one refresh")
	var body struct {
		GrantType    string `json:"grant_type"`
		RefreshToken string `json:"refresh_token"`
	}
	require.NoError(t, json.Unmarshal(refreshes[2].Body, &body))
	assert.Equal(t, "refresh_token", body.GrantType)
	assert.Equal(t, first.RefreshToken, body.RefreshToken)
	second, saves := store.snapshot()
	assert.Equal(t, 1, saves)
	assert.NotEqual(t, first.AccessToken, second.AccessToken)
	assert.NotEqual(t, first.RefreshToken, second.RefreshToken)
	assert.Equal(t, clk.Now().Add(kommotest.DefaultTokenLifetime), second.Expiry)
	acc = e2eRequests(srv, http.MethodGet, "/api/v4/account")
	require.Len(t, acc, 1+callers)
	for _, r := range acc[1:] {
		assert.Equal(t, "Bearer "+second.AccessToken, r.Header.Get("Authorization"))
		assert.Equal(t, http.StatusOK, r.Status)
	}

	// The spent refresh token can never be used again.
	_, err = cfg.Refresh(ctx, first.RefreshToken)
	require.ErrorIs(t, err, kommo.ErrReauthorizationRequired)
	var oerr *kommo.OAuthError
	require.ErrorAs(t, err, &oerr)
	assert.Equal(t, http.StatusUnauthorized, oerr.StatusCode)
	assert.Equal(t, "refresh_token", oerr.GrantType)
	assert.NotContains(t, err.Error(), first.RefreshToken)

	// A process still holding the old pair must send the user to authorize
	// again; its CRM calls fail without reaching the API.
	stale, err := kommo.NewTokenSource(ctx, cfg, &e2eTokenStore{tok: first})
	require.NoError(t, err)
	staleClient, err := srv.Client(kommo.WithTokenSource(stale), kommo.WithRetryPolicy(e2eRetryPolicy()))
	require.NoError(t, err)
	_, _, err = staleClient.Account.AmojoID(ctx)
	require.ErrorIs(t, err, kommo.ErrReauthorizationRequired)
	assert.Len(t, e2eRequests(srv, http.MethodGet, "/api/v4/account"), 1+callers)

	// The old access token is dead on the server too.
	oldClient, err := srv.Client(kommo.WithAccessToken(first.AccessToken), kommo.WithRetryPolicy(e2eRetryPolicy()))
	require.NoError(t, err)
	_, _, err = oldClient.Account.AmojoID(ctx)
	require.ErrorIs(t, err, kommo.ErrUnauthorized)
}

func TestE2EAuthFailures(t *testing.T) {
	t.Parallel()

	t.Run("wrong channel secret is 403", func(t *testing.T) {
		t.Parallel()
		srv, client, scopeID, _ := e2eSetup(t, kommo.WithChannel(kommotest.DefaultChannelID, "0000000000000000000000000000000000000000"))
		_, resp, err := client.Messages.Send(t.Context(), scopeID, e2eIncoming("m-1", "conv-1", "Hi"))
		require.ErrorIs(t, err, kommo.ErrForbidden)
		assert.Nil(t, resp)
		var apiErr *kommo.APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, http.StatusForbidden, apiErr.StatusCode)
		assert.Equal(t, 403, apiErr.ErrorCode)
		assert.Equal(t, "signature", apiErr.ErrorType)
		assert.NotContains(t, err.Error(), "0000000000000000000000000000000000000000")
		reqs := srv.Requests()
		require.Len(t, reqs, 1, "a 403 is not retried")
		assert.Equal(t, http.StatusForbidden, reqs[0].Status)
		assert.Empty(t, srv.AllMessages())
		assert.Empty(t, srv.Chats())
	})

	t.Run("wrong token is 401", func(t *testing.T) {
		t.Parallel()
		srv, client, _, _ := e2eSetup(t, kommo.WithAccessToken("not-a-token"))
		_, _, err := client.Account.AmojoID(t.Context())
		require.ErrorIs(t, err, kommo.ErrUnauthorized)
		var apiErr *kommo.APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
		assert.Equal(t, "invalid or revoked access token", apiErr.Detail)
		assert.NotContains(t, err.Error(), "not-a-token")
		require.Len(t, srv.Requests(), 1, "a 401 is not retried")
		assert.Equal(t, "Bearer not-a-token", srv.Requests()[0].Header.Get("Authorization"))
	})

	t.Run("revoked token is 401", func(t *testing.T) {
		t.Parallel()
		srv, client, _, _ := e2eSetup(t)
		_, _, err := client.Account.AmojoID(t.Context())
		require.NoError(t, err)
		srv.RevokeAccessToken(srv.AccessToken())
		_, _, err = client.Account.AmojoID(t.Context())
		require.ErrorIs(t, err, kommo.ErrUnauthorized)
	})
}

func TestE2ERetries(t *testing.T) {
	t.Parallel()
	scopePath := func(srv *kommotest.Server) string { return "/v2/origin/custom/" + srv.ScopeID() }

	t.Run("503 twice then success", func(t *testing.T) {
		t.Parallel()
		srv, client, scopeID, clk := e2eSetup(t)
		srv.FailNext(2, http.StatusServiceUnavailable, "")
		sent, resp, err := client.Messages.Send(t.Context(), scopeID, e2eIncoming("r-1", "conv-1", "retry me"))
		require.NoError(t, err)
		assert.Equal(t, 3, resp.Attempts)
		assert.Equal(t, "r-1", sent.MsgID)
		assert.Equal(t, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}, clk.Waits(), "exponential backoff without jitter")
		reqs := e2eRequests(srv, http.MethodPost, scopePath(srv))
		require.Len(t, reqs, 3)
		for i, want := range []struct {
			status int
			fault  string
		}{{503, "status"}, {503, "status"}, {200, ""}} {
			assert.Equal(t, want.status, reqs[i].Status, "attempt %d", i+1)
			assert.Equal(t, want.fault, reqs[i].Fault, "attempt %d", i+1)
			assert.Equal(t, string(reqs[0].Body), string(reqs[i].Body), "every attempt sends the same bytes")
		}
		assert.Equal(t, 3, e2eAssertSigned(t, srv), "every attempt is signed")
		msgs := srv.Messages(scopeID, "conv-1")
		require.Len(t, msgs, 1)
		assert.Equal(t, sent.ID, msgs[0].ID)
	})

	t.Run("lost response is replayed with the same msgid", func(t *testing.T) {
		t.Parallel()
		srv, client, scopeID, _ := e2eSetup(t)
		srv.DropResponseNext(1)
		req := e2eIncoming("", "conv-1", "only once") // Send generates the msgid
		sent, resp, err := client.Messages.Send(t.Context(), scopeID, req)
		require.NoError(t, err)
		assert.Equal(t, 2, resp.Attempts)
		require.True(t, strings.HasPrefix(sent.MsgID, "kommo-"), sent.MsgID)
		reqs := e2eRequests(srv, http.MethodPost, scopePath(srv))
		require.Len(t, reqs, 2)
		assert.Equal(t, "drop", reqs[0].Fault)
		assert.Equal(t, sent.MsgID, e2ePayloadMsgID(t, reqs[0].Body))
		assert.Equal(t, sent.MsgID, e2ePayloadMsgID(t, reqs[1].Body))
		msgs := srv.Messages(scopeID, "conv-1")
		require.Len(t, msgs, 1, "the replay is not stored twice")
		assert.Equal(t, sent.ID, msgs[0].ID, "the replay answers the first result")
		assert.Equal(t, sent.MsgID, msgs[0].MsgID)
		require.Len(t, srv.Talks(), 1)
	})

	t.Run("truncated body is retried", func(t *testing.T) {
		t.Parallel()
		srv, client, scopeID, clk := e2eSetup(t)
		srv.TruncateNext(1)
		sent, resp, err := client.Messages.Send(t.Context(), scopeID, e2eIncoming("t-1", "conv-1", "cut short"))
		require.NoError(t, err)
		assert.Equal(t, 2, resp.Attempts)
		assert.Equal(t, "t-1", sent.MsgID)
		assert.Equal(t, []time.Duration{10 * time.Millisecond}, clk.Waits())
		reqs := e2eRequests(srv, http.MethodPost, scopePath(srv))
		require.Len(t, reqs, 2)
		assert.Equal(t, "truncate", reqs[0].Fault)
		msgs := srv.Messages(scopeID, "conv-1")
		require.Len(t, msgs, 1)
		assert.Equal(t, sent.ID, msgs[0].ID)
	})

	t.Run("403 is not retried", func(t *testing.T) {
		t.Parallel()
		srv, client, scopeID, clk := e2eSetup(t)
		srv.FailNext(1, http.StatusForbidden, "")
		_, resp, err := client.Messages.Send(t.Context(), scopeID, e2eIncoming("f-1", "conv-1", "forbidden"))
		require.ErrorIs(t, err, kommo.ErrForbidden)
		assert.Nil(t, resp)
		var retryErr *kommo.RetryError
		assert.False(t, errors.As(err, &retryErr), "one attempt is not a RetryError")
		assert.Len(t, e2eRequests(srv, http.MethodPost, scopePath(srv)), 1)
		assert.Empty(t, clk.Waits())
		assert.Empty(t, srv.AllMessages())
		assert.Equal(t, 0, srv.PendingFaults())
	})

	t.Run("429 waits for Retry-After", func(t *testing.T) {
		t.Parallel()
		srv, client, scopeID, clk := e2eSetup(t)
		srv.FailNext(1, http.StatusTooManyRequests, "1")
		start := time.Now()
		sent, resp, err := client.Messages.Send(t.Context(), scopeID, e2eIncoming("l-1", "conv-1", "slow down"))
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(start), time.Second)
		assert.Equal(t, 2, resp.Attempts)
		assert.Equal(t, []time.Duration{time.Second}, clk.Waits(), "Retry-After replaces the backoff")
		reqs := e2eRequests(srv, http.MethodPost, scopePath(srv))
		require.Len(t, reqs, 2)
		assert.Equal(t, http.StatusTooManyRequests, reqs[0].Status)
		assert.Equal(t, http.StatusOK, reqs[1].Status)
		msgs := srv.Messages(scopeID, "conv-1")
		require.Len(t, msgs, 1)
		assert.Equal(t, sent.ID, msgs[0].ID)
	})

	t.Run("CRM 503 exhausts attempts", func(t *testing.T) {
		t.Parallel()
		srv, client, _, clk := e2eSetup(t)
		srv.FailNext(4, http.StatusServiceUnavailable, "")
		_, _, err := client.Account.AmojoID(t.Context())
		require.ErrorIs(t, err, kommo.ErrServer)
		var retryErr *kommo.RetryError
		require.ErrorAs(t, err, &retryErr)
		assert.Equal(t, 4, retryErr.Attempts)
		var apiErr *kommo.APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
		assert.Equal(t, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}, clk.Waits())
		assert.Len(t, e2eRequests(srv, http.MethodGet, "/api/v4/account"), 4)
	})
}

// TestE2EMessageOrderWithinOneMillisecond: messages that arrive in the same
// millisecond keep their arrival order, in srv.Messages (documented "oldest
// first by message timestamp, arrival order for equal timestamps") and in
// History (newest first). Kommo's timestamps have millisecond precision.
func TestE2EMessageOrderWithinOneMillisecond(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 12, 0, 0, 500_000, time.UTC) // half a millisecond past
	srv := kommotest.New(t, kommotest.WithClock(testkit.NewClock(now)))
	client, err := srv.Client(kommo.WithRetryPolicy(e2eRetryPolicy()))
	require.NoError(t, err)
	scopeID := srv.Connect(srv.AccountAmojoID())
	ctx := t.Context()

	_, _, err = client.Messages.Send(ctx, scopeID, e2eIncoming("o-1", "conv-1", "first"))
	require.NoError(t, err)
	_, _, err = srv.WebhookBody(kommotest.ManagerMessage("conv-1", "second"))
	require.NoError(t, err)
	sent, _, err := client.Messages.Send(ctx, scopeID, e2eIncoming("o-3", "conv-1", "third"))
	require.NoError(t, err)

	var stored []string
	for _, m := range srv.Messages(scopeID, "conv-1") {
		stored = append(stored, m.Text)
	}
	assert.Equal(t, []string{"first", "second", "third"}, stored, "srv.Messages: oldest first")

	history, err := kommo.Collect(client.History.All(ctx, scopeID, sent.ConversationID, nil))
	require.NoError(t, err)
	var listed []string
	for _, m := range history {
		assert.Equal(t, now.UnixMilli(), m.MsecTimestamp)
		listed = append(listed, m.Message.Text)
	}
	assert.Equal(t, []string{"third", "second", "first"}, listed, "History: newest first")
}
