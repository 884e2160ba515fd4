package kommotest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

func TestConnectDisconnect(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t, kommotest.WithExtraAccounts("11111111-2222-4333-8444-555555555555"))
	connectPath := "/v2/origin/custom/" + e.srv.ChannelID() + "/connect"

	// Before connecting, scope endpoints answer 404.
	resp, data := e.chat(http.MethodPost, e.scopePath("/chats"), map[string]any{"conversation_id": "c1", "user": map[string]any{"id": "u", "name": "n"}})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, string(data))

	resp, data = e.chat(http.MethodPost, connectPath, map[string]any{"account_id": e.srv.AccountAmojoID(), "hook_api_version": "v2", "title": "My channel"})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	assert.JSONEq(t, fmt.Sprintf(`{"account_id":%q,"scope_id":%q,"title":"My channel","hook_api_version":"v2","is_time_window_disabled":false}`,
		e.srv.AccountAmojoID(), e.srv.ChannelID()+"_"+e.srv.AccountAmojoID()), string(data))
	assert.Equal(t, e.srv.ChannelID()+"_"+e.srv.AccountAmojoID(), e.srv.ScopeID())

	// A second account of the same channel.
	resp, data = e.chat(http.MethodPost, connectPath, map[string]any{"account_id": "11111111-2222-4333-8444-555555555555", "hook_api_version": "v2"})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	assert.True(t, e.srv.IsConnected(e.srv.ChannelID()+"_11111111-2222-4333-8444-555555555555"))

	// Unknown channel, unknown account, bad data.
	resp, _ = e.chat(http.MethodPost, "/v2/origin/custom/00000000-0000-4000-8000-000000000000/connect", map[string]any{"account_id": e.srv.AccountAmojoID()})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, data = e.chat(http.MethodPost, connectPath, map[string]any{"account_id": "not-an-account", "hook_api_version": "v2"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, decode(t, data)["error_description"], "account not found")
	resp, data = e.chat(http.MethodPost, connectPath, map[string]any{"hook_api_version": "v3"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	desc := decode(t, data)["error_description"]
	assert.Contains(t, desc, "account_id is required")
	assert.Contains(t, desc, "hook_api_version must be v1 or v2")

	// Disconnect: 200 without a body; the scope stops working.
	resp, data = e.chat(http.MethodDelete, "/v2/origin/custom/"+e.srv.ChannelID()+"/disconnect", map[string]any{"account_id": e.srv.AccountAmojoID()})
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, data)
	assert.False(t, e.srv.IsConnected(e.srv.ScopeID()))
	resp, _ = e.chat(http.MethodPost, e.scopePath("/typing"), map[string]any{"conversation_id": "c1", "sender": map[string]any{"id": "u"}})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Connect (the helper) reconnects without a request.
	assert.Equal(t, e.srv.ScopeID(), e.srv.Connect(e.srv.AccountAmojoID()))
	assert.PanicsWithValue(t, `kommotest: Connect: the server knows no account "unknown" (add it with WithAccount or WithExtraAccounts)`,
		func() { e.srv.Connect("unknown") }, "an unknown account fails visibly, not with an empty scope id")
	assert.True(t, e.srv.IsConnected(e.srv.ScopeID()))
}

func TestCreateChatIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	body := map[string]any{
		"conversation_id": "my-chat-1",
		"source":          map[string]any{"external_id": "79001234567"},
		"user": map[string]any{"id": "my-user-1", "name": "Client", "avatar": "https://example.com/a.png",
			"profile": map[string]any{"phone": "79151112233", "email": "c@example.com"}},
	}
	resp, data := e.chat(http.MethodPost, e.scopePath("/chats"), body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	first := decode(t, data)
	chatID, _ := first["id"].(string)
	require.Len(t, chatID, 36)
	user := first["user"].(map[string]any)
	assert.Equal(t, map[string]any{"id": user["id"], "client_id": "my-user-1", "name": "Client",
		"avatar": "https://example.com/a.png", "phone": "79151112233", "email": "c@example.com"}, user)

	resp, data = e.chat(http.MethodPost, e.scopePath("/chats"), body)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, mustJSON(t, first), string(data), "same conversation id, same chat")

	chats := e.srv.Chats()
	require.Len(t, chats, 1)
	assert.Equal(t, kommotest.Chat{ID: chatID, ScopeID: e.srv.ScopeID(), ConversationID: "my-chat-1", SourceExternalID: "79001234567",
		User: kommotest.Participant{ID: user["id"].(string), ClientID: "my-user-1", Name: "Client", Avatar: "https://example.com/a.png",
			Phone: "79151112233", Email: "c@example.com"}, CreatedAt: e.clock.Now()}, chats[0])

	// Every problem at once.
	resp, data = e.chat(http.MethodPost, e.scopePath("/chats"), map[string]any{"user": map[string]any{}, "source": map[string]any{"external_id": string(make([]byte, 41))}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	got := decode(t, data)
	assert.EqualValues(t, 400, got["error_code"])
	for _, want := range []string{"conversation_id is required", "user.id is required", "user.name is required", "source.external_id"} {
		assert.Contains(t, got["error_description"], want)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestSendMessageIsIdempotentOnMsgID(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()

	resp, out := e.send("my-chat-1", "my-msg-1", "Hi")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	nm := newMessage(t, out)
	assert.Len(t, nm, 5, "the five-field answer")
	chat, ok := e.srv.FindChat("", "my-chat-1")
	require.True(t, ok, "the first message creates the chat")
	assert.Equal(t, chat.ID, nm["conversation_id"])
	assert.Equal(t, chat.User.ID, nm["sender_id"])
	assert.Nil(t, nm["receiver_id"])
	assert.Equal(t, "my-msg-1", nm["ref_id"])
	amojoID := nm["msgid"].(string)
	require.Len(t, amojoID, 36)

	// A retry with the same msgid answers the same ids and stores nothing.
	resp, again := e.send("my-chat-1", "my-msg-1", "Hi")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, nm, newMessage(t, again))
	msgs := e.srv.Messages(e.srv.ScopeID(), "my-chat-1")
	require.Len(t, msgs, 1)
	m := msgs[0]
	assert.Equal(t, amojoID, m.ID)
	assert.Equal(t, "my-msg-1", m.MsgID)
	assert.True(t, m.Incoming)
	assert.False(t, m.FromKommo)
	assert.Equal(t, kommo.MessageTypeText, m.Type)
	assert.Equal(t, "Hi", m.Text)
	assert.Equal(t, e.clock.Now(), m.Timestamp.UTC())
	assert.Equal(t, "+15550001111", m.Sender.Phone)
	assert.Nil(t, m.Receiver)
	assert.JSONEq(t, `"my-msg-1"`, mustJSON(t, decodeRaw(t, m.Payload)["msgid"]))

	// Same chat from messages by the same conversation id.
	_, out = e.send("my-chat-1", "my-msg-2", "Again")
	assert.Equal(t, chat.ID, newMessage(t, out)["conversation_id"])
	assert.Equal(t, chat.User.ID, newMessage(t, out)["sender_id"], "the same client user")
	assert.Len(t, e.srv.AllMessages(), 2)
	found, ok := e.srv.FindMessage(amojoID)
	require.True(t, ok)
	assert.Equal(t, "Hi", found.Text)
}

func TestReusedMsgIDWithAnotherPayloadConflicts(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	resp, out := e.send("c1", "m1", "Hi")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	first := newMessage(t, out)
	chat, ok := e.srv.FindChat("", "c1")
	require.True(t, ok)

	// A semantically identical resend (other key order, a later time,
	// explicit empty values, the chat's amojo id) still answers the first
	// answer.
	e.clock.Advance(time.Minute)
	resp, data := e.chat(http.MethodPost, e.scopePath(""), fmt.Sprintf(`{"payload":{
		"message":{"text":"Hi","type":"text","media":"","file_size":0,"location":null},
		"sender":{"profile":{"email":"","phone":"+15550001111"},"name":"Client","avatar":"","id":"user-1"},
		"receiver":null,"silent":true,"timestamp":%d,"conversation_ref_id":%q,"conversation_id":"c1","msgid":"m1"},
		"event_type":"new_message"}`, e.clock.Now().Unix(), chat.ID))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	assert.Equal(t, first, newMessage(t, decode(t, data)))

	payload := func(edit func(p map[string]any)) map[string]any {
		p := map[string]any{"msgid": "m1", "conversation_id": "c1",
			"sender":  map[string]any{"id": "user-1", "name": "Client", "profile": map[string]any{"phone": "+15550001111"}},
			"message": map[string]any{"type": "text", "text": "Hi"}}
		edit(p)
		return map[string]any{"event_type": "new_message", "payload": p}
	}
	for name, tc := range map[string]struct {
		edit  func(p map[string]any)
		diffs string
	}{
		"other text":       {func(p map[string]any) { p["message"] = map[string]any{"type": "text", "text": "Bye"} }, "payload.message"},
		"other chat":       {func(p map[string]any) { p["conversation_id"] = "c2" }, "payload.conversation_id"},
		"other amojo chat": {func(p map[string]any) { p["conversation_ref_id"] = "not-" + chat.ID }, "payload.conversation_ref_id"},
		"other sender": {func(p map[string]any) {
			p["sender"] = map[string]any{"id": "user-1", "name": "Client", "profile": map[string]any{"phone": "+15550002222"}}
		}, "payload.sender"},
		"outgoing with other text": {func(p map[string]any) {
			p["sender"] = map[string]any{"id": "bot", "ref_id": e.srv.BotID(), "name": "Bot"}
			p["receiver"] = map[string]any{"id": "user-1", "name": "Client"}
			p["message"] = map[string]any{"type": "picture", "media": "https://example.com/a.png", "file_name": "a.png", "file_size": 1}
		}, "payload.message, payload.sender, payload.receiver"},
	} {
		resp, data := e.chat(http.MethodPost, e.scopePath(""), payload(tc.edit))
		assert.Equal(t, http.StatusConflict, resp.StatusCode, name)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), name)
		assert.JSONEq(t, fmt.Sprintf(`{"error_code":409,"error_type":"msgid_conflict","error_description":`+
			`"payload.msgid \"m1\" is already used in this scope by message %s; this payload differs in %s"}`,
			first["msgid"], tc.diffs), string(data), name)
	}

	// Nothing was stored or created by the refused sends.
	all := e.srv.AllMessages()
	require.Len(t, all, 1)
	assert.Equal(t, "Hi", all[0].Text)
	_, ok = e.srv.FindChat("", "c2")
	assert.False(t, ok, "no chat for the refused message")
}

func decodeRaw(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	return decode(t, raw)
}

func TestSendMessageValidation(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	resp, data := e.chat(http.MethodPost, e.scopePath(""), map[string]any{"event_type": "new_message", "payload": map[string]any{"message": map[string]any{"type": "picture"}}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	desc := decode(t, data)["error_description"].(string)
	for _, want := range []string{"payload.conversation_id is required", "payload.msgid is required", "payload.sender is required",
		"payload.message.media is required"} {
		assert.Contains(t, desc, want)
	}
	assert.NotContains(t, desc, "file_name", "file_name and file_size are optional")
	assert.NotContains(t, desc, "file_size")
	cases := map[string]any{
		"event_type must be new_message or edit_message":              map[string]any{"event_type": "delete_message", "payload": map[string]any{}},
		"payload is required":                                         map[string]any{"event_type": "new_message"},
		"payload.message.text is required":                            msgBody("text", map[string]any{"type": "text"}),
		"payload.message.location is required":                        msgBody("location", map[string]any{"type": "location"}),
		"payload.message.contact":                                     msgBody("contact", map[string]any{"type": "contact"}),
		`type "gif" is not supported`:                                 msgBody("gif", map[string]any{"type": "gif"}),
		"payload.message.media must be an absolute http or https URL": msgBody("file", map[string]any{"type": "file", "media": "/files/a.pdf"}),
		"payload.message.file_size must not be negative":              msgBody("file", map[string]any{"type": "file", "media": "https://example.com/a.pdf", "file_size": -1}),
		"malformed JSON":                                              "{",
	}
	for want, body := range cases {
		resp, data := e.chat(http.MethodPost, e.scopePath(""), body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, want)
		assert.Contains(t, decode(t, data)["error_description"], want)
	}
	assert.Empty(t, e.srv.AllMessages())

	// Valid non-text types.
	for i, msg := range []map[string]any{
		{"type": "picture", "media": "https://example.com/p.png", "file_name": "p.png", "file_size": 100},
		{"type": "file", "media": "https://example.com/terms.pdf"},
		{"type": "video", "media": "http://example.com/v.mp4", "file_size": 2048},
		{"type": "voice", "media": "https://example.com/v.ogg"},
		{"type": "sticker", "sticker_id": "st-1"},
		{"type": "location", "location": map[string]any{"lon": 37.6, "lat": 55.7}},
		{"type": "contact", "contact": map[string]any{"name": "Bob", "phone": "+1555"}},
	} {
		body := msgBody("", msg)
		body["payload"].(map[string]any)["msgid"] = fmt.Sprintf("ok-%d", i)
		resp, data := e.chat(http.MethodPost, e.scopePath(""), body)
		assert.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	}
}

func msgBody(_ string, message map[string]any) map[string]any {
	return map[string]any{"event_type": "new_message", "payload": map[string]any{
		"msgid": "m", "conversation_id": "c", "sender": map[string]any{"id": "u", "name": "U"}, "message": message}}
}

func TestOutgoingMessagesAndWriteFirstBinding(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	_, _ = e.send("chat-a", "in-1", "hello")

	// Outgoing by the bot: receiver present, sender.ref_id = bot id.
	resp, data := e.chat(http.MethodPost, e.scopePath(""), map[string]any{"event_type": "new_message", "payload": map[string]any{
		"msgid": "out-1", "conversation_id": "chat-a", "silent": true,
		"sender":   map[string]any{"id": "bot", "ref_id": e.srv.BotID(), "name": "Bot"},
		"receiver": map[string]any{"id": "user-1", "name": "Client"},
		"message":  map[string]any{"type": "text", "text": "auto-reply"},
	}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	nm := newMessage(t, decode(t, data))
	chat, _ := e.srv.FindChat("", "chat-a")
	assert.Equal(t, e.srv.BotID(), nm["sender_id"])
	assert.Equal(t, chat.User.ID, nm["receiver_id"])
	msgs := e.srv.Messages("", "chat-a")
	require.Len(t, msgs, 2)
	assert.False(t, msgs[1].Incoming)
	require.NotNil(t, msgs[1].Receiver)
	assert.Equal(t, chat.User.ID, msgs[1].Receiver.ID)

	// A write-first chat (no conversation id) is bound by conversation_ref_id.
	hook := httpHookSink(t)
	require.NoError(t, e.srv.DeliverWebhook(t.Context(), hook.url, kommotest.WriteFirstMessage("+15557654321", "Hi from the shop")))
	var wf kommotest.Chat
	for _, c := range e.srv.Chats() {
		if c.ConversationID == "" {
			wf = c
		}
	}
	require.NotEmpty(t, wf.ID)
	assert.Equal(t, "+15557654321", wf.User.Phone)

	resp, data = e.chat(http.MethodPost, e.scopePath(""), map[string]any{"event_type": "new_message", "payload": map[string]any{
		"msgid": "wf-1", "conversation_id": "wa-15557654321", "conversation_ref_id": wf.ID,
		"sender":  map[string]any{"id": "wa-user-7", "ref_id": wf.User.ID, "name": "Shop client"},
		"message": map[string]any{"type": "text", "text": "Thanks"},
	}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	bound, ok := e.srv.FindChat(e.srv.ScopeID(), "wa-15557654321")
	require.True(t, ok)
	assert.Equal(t, wf.ID, bound.ID)
	assert.Equal(t, "wa-user-7", bound.User.ClientID, "the amojo user is bound to the integration's id")
	assert.Equal(t, wf.ID, newMessage(t, decode(t, data))["conversation_id"])

	// A ref id that belongs to another conversation, or none at all.
	resp, data = e.chat(http.MethodPost, e.scopePath(""), map[string]any{"event_type": "new_message", "payload": map[string]any{
		"msgid": "wf-2", "conversation_id": "other", "conversation_ref_id": wf.ID,
		"sender": map[string]any{"id": "x"}, "message": map[string]any{"type": "text", "text": "x"}}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, decode(t, data)["error_description"], "another conversation_id")
	resp, _ = e.chat(http.MethodPost, e.scopePath(""), map[string]any{"event_type": "new_message", "payload": map[string]any{
		"msgid": "wf-3", "conversation_id": "other", "conversation_ref_id": "nope",
		"sender": map[string]any{"id": "x"}, "message": map[string]any{"type": "text", "text": "x"}}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestEditMessage(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	_, out := e.send("c1", "m1", "Hi")
	amojoID := newMessage(t, out)["msgid"].(string)

	edit := func(payload map[string]any) (*http.Response, []byte) {
		return e.chat(http.MethodPost, e.scopePath(""), map[string]any{"event_type": "edit_message", "payload": payload})
	}
	resp, data := edit(map[string]any{"msgid": "m1", "conversation_id": "c1", "message": map[string]any{"type": "text", "text": "Hi (edited)"}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	assert.Equal(t, amojoID, newMessage(t, decode(t, data))["msgid"])
	m, _ := e.srv.FindMessage(amojoID)
	assert.Equal(t, "Hi (edited)", m.Text)
	assert.True(t, m.Edited)

	// By amojo id, re-assigning the integration's msgid and setting a status.
	resp, data = edit(map[string]any{"id": amojoID, "msgid": "m1-new", "conversation_id": "c1",
		"message": map[string]any{"delivery_status": map[string]any{"status_code": -1, "error_code": 905, "error": "blocked"}}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	assert.Equal(t, "m1-new", newMessage(t, decode(t, data))["ref_id"])
	m, _ = e.srv.FindMessage(amojoID)
	assert.Equal(t, "m1-new", m.MsgID)
	assert.Equal(t, "Hi (edited)", m.Text, "an edit without a type keeps the content")
	assert.Equal(t, []any{kommo.DeliveryStatusError, kommo.DeliveryErrorOther, "blocked"}, []any{m.DeliveryStatus, m.DeliveryErrorCode, m.DeliveryError})

	resp, _ = edit(map[string]any{"msgid": "unknown", "message": map[string]any{"type": "text", "text": "x"}})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, data = edit(map[string]any{"conversation_id": "c1"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, decode(t, data)["error_description"], "payload.id or payload.msgid is required")
	assert.Len(t, e.srv.AllMessages(), 1)
}

func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	for i := 1; i <= 5; i++ {
		e.send("c1", fmt.Sprintf("m%d", i), fmt.Sprintf("text %d", i))
		e.clock.Advance(time.Second)
	}
	chat, _ := e.srv.FindChat("", "c1")
	history := func(query string) (*http.Response, []byte) {
		return e.chat(http.MethodGet, e.scopePath("/chats/"+chat.ID+"/history")+query, nil)
	}
	texts := func(data []byte) []string {
		var out struct {
			Messages []struct {
				Message struct{ Text string } `json:"message"`
			} `json:"messages"`
		}
		require.NoError(t, json.Unmarshal(data, &out))
		var s []string
		for _, m := range out.Messages {
			s = append(s, m.Message.Text)
		}
		return s
	}

	resp, data := history("?offset=0&limit=2")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	assert.Equal(t, []string{"text 5", "text 4"}, texts(data), "newest first")
	_, data = history("?offset=2&limit=2")
	assert.Equal(t, []string{"text 3", "text 2"}, texts(data))
	_, data = history("?offset=4&limit=2")
	assert.Equal(t, []string{"text 1"}, texts(data))
	_, data = history("")
	assert.Len(t, texts(data), 5, "default limit 50")

	resp, data = history("?offset=5&limit=2")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Empty(t, data)
	resp, _ = e.chat(http.MethodGet, e.scopePath("/chats/00000000-0000-4000-8000-000000000000/history"), nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode, "unknown chat")
	// The integration's conversation_id instead of the amojo id: 404 with
	// a body that says so (Kommo would answer 204).
	resp, data = e.chat(http.MethodGet, e.scopePath("/chats/c1/history"), nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, map[string]any{"error_code": float64(404), "error_type": "not_found",
		"error_description": `chat "c1" is the integration's conversation_id; history takes the amojo chat id, here "` + chat.ID +
			`" (create chat's id, new_message.conversation_id, a webhook's conversation.id)`}, decode(t, data))

	for _, q := range []string{"?limit=51", "?limit=0", "?limit=x", "?offset=-1"} {
		resp, _ = history(q)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, q)
	}

	// The item shape of spec §2.6.
	_, data = history("?offset=4&limit=1")
	msgs := e.srv.Messages("", chat.ID)
	first := msgs[0]
	assert.JSONEq(t, fmt.Sprintf(`{"messages":[{"timestamp":%d,"msec_timestamp":%d,
		"sender":{"id":%q,"name":"Client","client_id":"user-1","phone":"+15550001111"},
		"message":{"id":%q,"client_id":"m1","type":"text","text":"text 1"}}]}`,
		first.Timestamp.Unix(), first.Timestamp.UnixMilli(), chat.User.ID, first.ID), string(data))
}

func TestDeliveryStatusTypingAndReactions(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	_, out := e.send("c1", "m1", "Hi")
	id := newMessage(t, out)["msgid"].(string)
	chat, _ := e.srv.FindChat("", "c1")
	status := func(body any) (*http.Response, []byte) {
		return e.chat(http.MethodPost, e.scopePath("/"+id+"/delivery_status"), body)
	}

	// The current body shape.
	resp, data := status(map[string]any{"status_code": 1})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	m, _ := e.srv.FindMessage(id)
	assert.Equal(t, kommo.DeliveryStatusDelivered, m.DeliveryStatus)
	// The older shape with msgid + delivery_status.
	resp, data = status(map[string]any{"msgid": id, "delivery_status": -1, "error_code": 905, "error": "User blocked"})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	m, _ = e.srv.FindMessage(id)
	assert.Equal(t, []any{kommo.DeliveryStatusError, kommo.DeliveryErrorOther, "User blocked"}, []any{m.DeliveryStatus, m.DeliveryErrorCode, m.DeliveryError})

	for _, tc := range []struct {
		want string
		body any
	}{
		{"status_code (or delivery_status) is required", map[string]any{}},
		{"error_code from 901 to 905", map[string]any{"status_code": -1, "error": "x"}},
		{"error is required with status -1", map[string]any{"status_code": -1, "error_code": 905}},
		{"error is required with status -1", map[string]any{"status_code": -1, "error_code": 901, "error": " "}},
		{"status must be", map[string]any{"status_code": 7}},
		{"msgid must match", map[string]any{"msgid": "other", "delivery_status": 2}},
		{"disagree", map[string]any{"status_code": 1, "delivery_status": 2}},
	} {
		resp, data := status(tc.body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, tc.want)
		assert.Contains(t, decode(t, data)["error_description"], tc.want)
	}
	resp, _ = e.chat(http.MethodPost, e.scopePath("/00000000-0000-4000-8000-000000000000/delivery_status"), map[string]any{"status_code": 2})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Typing: 204, 404 for an unknown chat, 400 without a sender.
	resp, data = e.chat(http.MethodPost, e.scopePath("/typing"), map[string]any{"conversation_id": "c1", "sender": map[string]any{"id": "user-1"}, "duration_ms": 5000})
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Empty(t, data)
	resp, _ = e.chat(http.MethodPost, e.scopePath("/typing"), map[string]any{"conversation_id": "nope", "sender": map[string]any{"id": "user-1"}})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = e.chat(http.MethodPost, e.scopePath("/typing"), map[string]any{"conversation_id": "c1"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// Reactions by msgid and by amojo id (also in the path), then unreact.
	resp, data = e.chat(http.MethodPost, e.scopePath("/react"), map[string]any{"conversation_id": "c1", "msgid": "m1",
		"user": map[string]any{"id": "user-1"}, "type": "react", "emoji": "👍"})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	resp, _ = e.chat(http.MethodPost, e.scopePath("/"+id+"/react"), map[string]any{"conversation_ref_id": chat.ID,
		"user": map[string]any{"id": "mgr", "ref_id": e.srv.ManagerAmojoID()}, "type": "react", "emoji": "😍"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	m, _ = e.srv.FindMessage(id)
	assert.Equal(t, []kommotest.Reaction{
		{UserID: chat.User.ID, ClientUserID: "user-1", Emoji: "👍"},
		{UserID: e.srv.ManagerAmojoID(), ClientUserID: "mgr", Emoji: "😍"},
	}, m.Reactions)
	resp, _ = e.chat(http.MethodPost, e.scopePath("/react"), map[string]any{"conversation_id": "c1", "id": id,
		"user": map[string]any{"id": "user-1"}, "type": "unreact"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	m, _ = e.srv.FindMessage(id)
	assert.Equal(t, []kommotest.Reaction{{UserID: e.srv.ManagerAmojoID(), ClientUserID: "mgr", Emoji: "😍"}}, m.Reactions)

	resp, _ = e.chat(http.MethodPost, e.scopePath("/react"), map[string]any{"conversation_id": "c1", "msgid": "nope",
		"user": map[string]any{"id": "user-1"}, "type": "react", "emoji": "👍"})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, data = e.chat(http.MethodPost, e.scopePath("/react"), map[string]any{"type": "react"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	desc := decode(t, data)["error_description"]
	for _, want := range []string{"conversation_id or conversation_ref_id", "id or msgid", "user is required", "emoji is required"} {
		assert.Contains(t, desc, want)
	}
}

func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				// Every goroutine also replays the shared msgid "dup".
				msgid := fmt.Sprintf("g%d-%d", g, i)
				if i == 0 {
					msgid = "dup"
				}
				resp, _ := e.send(fmt.Sprintf("chat-%d", i%3), msgid, "x")
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				_ = e.srv.Requests()
				_ = e.srv.Talks()
			}
		}()
	}
	wg.Wait()
	assert.Len(t, e.srv.AllMessages(), 8*9+1)
	assert.Len(t, e.srv.Chats(), 3)
	assert.Len(t, e.srv.Talks(), 3, "one open talk per chat")
}

func TestImportedHistoryIsOrderedByTimestamp(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	e.send("c1", "live", "live message")
	// Import an older message afterwards.
	old := e.clock.Now().Add(-time.Hour)
	resp, data := e.chat(http.MethodPost, e.scopePath(""), map[string]any{"event_type": "new_message", "payload": map[string]any{
		"msgid": "old", "conversation_id": "c1", "silent": true, "timestamp": old.Unix(), "msec_timestamp": old.UnixMilli(),
		"sender": map[string]any{"id": "user-1", "name": "Client"}, "message": map[string]any{"type": "text", "text": "old message"}}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	msgs := e.srv.Messages("", "c1")
	require.Len(t, msgs, 2)
	assert.Equal(t, []string{"old", "live"}, []string{msgs[0].MsgID, msgs[1].MsgID})
	assert.Equal(t, old, msgs[0].Timestamp.UTC())
	all := e.srv.AllMessages()
	assert.Equal(t, []string{"live", "old"}, []string{all[0].MsgID, all[1].MsgID}, "AllMessages is in storing order")
}

// The SDK's delivery statuses against the fake: the default (current) body,
// the legacy one, and a -1 without a text, which the SDK fills with the
// code's description (the fake, like the reference, wants a text with
// every -1).
func TestDeliveryStatusFromTheSDK(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	scope := e.connect()
	client := e.srv.MustClient()
	_, out := e.send("c1", "m1", "Hi")
	chatID := newMessage(t, out)["conversation_id"].(string)
	body, _, err := e.srv.WebhookBody(kommotest.ManagerMessage(chatID, "Hello from Kommo"))
	require.NoError(t, err)
	var hook struct {
		Message struct {
			Message struct{ ID string } `json:"message"`
		} `json:"message"`
	}
	require.NoError(t, json.Unmarshal(body, &hook))
	id := hook.Message.Message.ID
	path := e.scopePath("/" + id + "/delivery_status")

	lastBody := func() string {
		reqs := e.srv.Requests()
		last := reqs[len(reqs)-1]
		require.Equal(t, path, last.Path)
		return string(last.Body)
	}
	_, err = client.Messages.UpdateDeliveryStatus(t.Context(), scope, id, &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusRead})
	require.NoError(t, err)
	assert.Equal(t, `{"status_code":2}`, lastBody())
	m, _ := e.srv.FindMessage(id)
	assert.Equal(t, kommo.DeliveryStatusRead, m.DeliveryStatus)

	_, err = client.Messages.UpdateDeliveryStatus(t.Context(), scope, id, &kommo.DeliveryStatusRequest{
		Status: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorCannotCreateConversation})
	require.NoError(t, err)
	assert.Equal(t, `{"status_code":-1,"error_code":904,"error":"The conversation cannot be created on the channel side"}`, lastBody())
	m, _ = e.srv.FindMessage(id)
	assert.Equal(t, kommo.DeliveryStatusError, m.DeliveryStatus)
	assert.Equal(t, kommo.DeliveryErrorCannotCreateConversation, m.DeliveryErrorCode)
	assert.Equal(t, kommo.DeliveryErrorCannotCreateConversation.Description(), m.DeliveryError)

	_, err = client.Messages.UpdateDeliveryStatus(t.Context(), scope, id, &kommo.DeliveryStatusRequest{
		Status: kommo.DeliveryStatusDelivered, Shape: kommo.DeliveryStatusShapeMsgID})
	require.NoError(t, err)
	assert.Equal(t, `{"msgid":"`+id+`","delivery_status":1}`, lastBody())
	m, _ = e.srv.FindMessage(id)
	assert.Equal(t, kommo.DeliveryStatusDelivered, m.DeliveryStatus)
	assert.Zero(t, m.DeliveryErrorCode)
	assert.Empty(t, m.DeliveryError)

	// Edit's delivery_status is checked the same way.
	resp, data := e.chat(http.MethodPost, e.scopePath(""), map[string]any{"event_type": "edit_message", "payload": map[string]any{
		"msgid": "m1", "conversation_id": "c1", "message": map[string]any{"delivery_status": map[string]any{"status_code": -1, "error_code": 903}}}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, decode(t, data)["error_description"], "payload.message.delivery_status.error is required with status -1")
}

// An imported message keeps the delivery status it was sent with; a bad
// one is refused like an edit's.
func TestImportWithDeliveryStatus(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	scope := e.connect()
	client := e.srv.MustClient()
	msg := kommo.TextMessage("Your order has shipped")
	msg.DeliveryStatus = &kommo.MessageDeliveryStatus{StatusCode: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorCannotCreateConversation}
	sent, _, err := client.Messages.Send(t.Context(), scope, &kommo.SendMessageRequest{
		MsgID: "imp-1", ConversationID: "c1", Silent: true,
		Sender:   &kommo.Participant{ID: "bot", RefID: e.srv.BotID(), Name: "Bot"},
		Receiver: &kommo.Participant{ID: "user-1", Name: "Client"},
		Message:  msg,
	})
	require.NoError(t, err)
	m, ok := e.srv.FindMessage(sent.ID)
	require.True(t, ok)
	assert.Equal(t, kommo.DeliveryStatusError, m.DeliveryStatus)
	assert.Equal(t, kommo.DeliveryErrorCannotCreateConversation, m.DeliveryErrorCode)
	assert.Equal(t, kommo.DeliveryErrorCannotCreateConversation.Description(), m.DeliveryError)

	body := msgBody("", map[string]any{"type": "text", "text": "x", "delivery_status": map[string]any{"status_code": 3}})
	resp, data := e.chat(http.MethodPost, e.scopePath(""), body)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, decode(t, data)["error_description"], "payload.message.delivery_status.status_code must be 1 (delivered), 2 (read) or -1 (error)")
	assert.Len(t, e.srv.AllMessages(), 1)
}

// A file without a name or size goes through the SDK and the fake alike.
func TestFileWithoutNameOrSize(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	scope := e.connect()
	client := e.srv.MustClient()
	sent, _, err := client.Messages.Send(t.Context(), scope, &kommo.SendMessageRequest{
		ConversationID: "c1", Sender: &kommo.Participant{ID: "user-1", Name: "Client"},
		Message: kommo.FileMessage("https://example.com/terms.pdf", "", 0),
	})
	require.NoError(t, err)
	m, ok := e.srv.FindMessage(sent.ID)
	require.True(t, ok)
	assert.Equal(t, kommo.MessageTypeFile, m.Type)
	assert.Equal(t, "https://example.com/terms.pdf", m.Media)
	assert.Empty(t, m.FileName)
	assert.Zero(t, m.FileSize)
	assert.JSONEq(t, `{"type":"file","media":"https://example.com/terms.pdf"}`, mustJSON(t, decodeRaw(t, m.Payload)["message"]))
}

// A message sent with reply_to (the SDK sends the nested form) comes back
// from history with the quoted message, which the SDK decodes.
func TestReplyToInHistory(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	scope := e.connect()
	client := e.srv.MustClient()
	first, _, err := client.Messages.Send(t.Context(), scope, &kommo.SendMessageRequest{
		MsgID: "q-1", ConversationID: "c1", Sender: &kommo.Participant{ID: "user-1", Name: "Client"},
		Message: kommo.TextMessage("Do you deliver on Sundays?"),
	})
	require.NoError(t, err)
	e.clock.Advance(time.Second)
	_, _, err = client.Messages.Send(t.Context(), scope, &kommo.SendMessageRequest{
		MsgID: "r-1", ConversationID: "c1", Sender: &kommo.Participant{ID: "user-1", Name: "Client"},
		Message: kommo.TextMessage("I mean this one"),
		ReplyTo: &kommo.ReplyTo{Message: kommo.EmbeddedMessage{MsgID: "q-1"}},
	})
	require.NoError(t, err)
	e.clock.Advance(time.Second)
	_, _, err = client.Messages.Send(t.Context(), scope, &kommo.SendMessageRequest{
		MsgID: "r-2", ConversationID: "c1", Sender: &kommo.Participant{ID: "user-1", Name: "Client"},
		Message: kommo.TextMessage("and that"),
		ReplyTo: &kommo.ReplyTo{Message: kommo.EmbeddedMessage{Type: kommo.MessageTypeText, Text: "an old one",
			Time: time.UnixMilli(1690000000456), Sender: &kommo.EmbeddedUser{Name: "Someone"}}},
	})
	require.NoError(t, err)

	msgs, _, err := client.History.List(t.Context(), scope, first.ConversationID, nil)
	require.NoError(t, err)
	require.Len(t, msgs, 3)
	chat, _ := e.srv.FindChat("", "c1")
	q := e.srv.Messages("", "c1")[0]
	assert.Equal(t, &kommo.WebhookReplyTo{Message: kommo.WebhookEmbeddedMessage{
		ID: first.ID, MsgID: "q-1", Type: kommo.MessageTypeText, Text: "Do you deliver on Sundays?",
		Timestamp: q.Timestamp.Unix(), MsecTimestamp: q.Timestamp.UnixMilli(),
		Sender: kommo.ChatUser{ID: chat.User.ID, ClientID: "user-1", Name: "Client"},
	}}, msgs[1].Message.ReplyTo, "newest first: the reply by msgid is second")
	assert.Equal(t, &kommo.WebhookReplyTo{Message: kommo.WebhookEmbeddedMessage{
		Type: kommo.MessageTypeText, Text: "an old one", Timestamp: 1690000000, MsecTimestamp: 1690000000456,
		Sender: kommo.ChatUser{Name: "Someone"},
	}}, msgs[0].Message.ReplyTo)
	assert.Nil(t, msgs[2].Message.ReplyTo)

	// The history body carries the nested form.
	resp, data := e.chat(http.MethodGet, e.scopePath("/chats/"+chat.ID+"/history?offset=1&limit=1"), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(data), `"reply_to":{"message":{"id":"`+first.ID+`","msgid":"q-1","type":"text"`)
}

// Create chat without user.ref_id: the SDK leaves it out; the fake refuses
// a raw request that still sends it.
func TestCreateChatWithoutRefID(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	scope := e.connect()
	client := e.srv.MustClient()
	chat, _, err := client.Chats.Create(t.Context(), scope, &kommo.CreateChatRequest{ConversationID: "c1",
		User: kommo.Participant{ID: "user-1", RefID: e.srv.ManagerAmojoID(), Name: "Client"}})
	require.NoError(t, err)
	reqs := e.srv.Requests()
	assert.Equal(t, `{"conversation_id":"c1","user":{"id":"user-1","name":"Client"}}`, string(reqs[len(reqs)-1].Body))
	stored, ok := e.srv.FindChat(scope, "c1")
	require.True(t, ok)
	assert.Equal(t, chat.ID, stored.ID)
	assert.Equal(t, "user-1", stored.User.ClientID)
	assert.NotEqual(t, e.srv.ManagerAmojoID(), stored.User.ID)

	resp, data := e.chat(http.MethodPost, e.scopePath("/chats"), map[string]any{"conversation_id": "c2",
		"user": map[string]any{"id": "user-2", "ref_id": e.srv.ManagerAmojoID(), "name": "Client"}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, decode(t, data)["error_description"], "user.ref_id is not a parameter of create chat")
	_, ok = e.srv.FindChat(scope, "c2")
	assert.False(t, ok)
}

// History with the ids an integration has: the amojo chat id from create
// chat, from a send's answer and from a webhook all read the chat; its own
// conversation_id is a 404 APIError naming the amojo id.
func TestHistoryTakesTheAmojoChatID(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	scope := e.connect()
	client := e.srv.MustClient()
	chat, _, err := client.Chats.Create(t.Context(), scope, &kommo.CreateChatRequest{ConversationID: "my-chat-1",
		User: kommo.Participant{ID: "user-1", Name: "Client"}})
	require.NoError(t, err)
	sent, _, err := client.Messages.Send(t.Context(), scope, &kommo.SendMessageRequest{ConversationID: "my-chat-1",
		Sender: &kommo.Participant{ID: "user-1", Name: "Client"}, Message: kommo.TextMessage("first")})
	require.NoError(t, err)
	e.clock.Advance(time.Second)
	body, _, err := e.srv.WebhookBody(kommotest.ManagerMessage("my-chat-1", "second"))
	require.NoError(t, err)
	ev, err := kommo.ParseWebhookBody(body, kommo.SignWebhookBody(body, e.srv.ChannelSecret()), e.srv.ChannelSecret())
	require.NoError(t, err)
	hookChat := ev.(*kommo.MessageEvent).Conversation.ID

	assert.Equal(t, chat.ID, sent.ConversationID)
	assert.Equal(t, chat.ID, hookChat)
	for _, id := range []string{chat.ID, sent.ConversationID, hookChat} {
		msgs, _, err := client.History.List(t.Context(), scope, id, nil)
		require.NoError(t, err)
		require.Len(t, msgs, 2)
		assert.Equal(t, []string{"second", "first"}, []string{msgs[0].Message.Text, msgs[1].Message.Text}, "newest first")
	}

	_, _, err = client.History.List(t.Context(), scope, "my-chat-1", nil)
	require.ErrorIs(t, err, kommo.ErrNotFound)
	var apiErr *kommo.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "not_found", apiErr.ErrorType)
	assert.Contains(t, apiErr.ErrorDescription, `chat "my-chat-1" is the integration's conversation_id; history takes the amojo chat id, here "`+chat.ID+`"`)
	var errs []error
	for _, err := range client.History.All(t.Context(), scope, "my-chat-1", nil) {
		errs = append(errs, err)
	}
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], kommo.ErrNotFound)
}

// A captioned picture: the caption is the message's text, stored and read
// back from history.
func TestCaptionedPicture(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	scope := e.connect()
	client := e.srv.MustClient()
	sent, _, err := client.Messages.Send(t.Context(), scope, &kommo.SendMessageRequest{
		ConversationID: "c1", Sender: &kommo.Participant{ID: "user-1", Name: "Client"},
		Message: kommo.PictureMessage("https://example.com/p.png", "p.png", 1024).WithCaption("Is this one in stock?"),
	})
	require.NoError(t, err)
	m, _ := e.srv.FindMessage(sent.ID)
	assert.Equal(t, kommo.MessageTypePicture, m.Type)
	assert.Equal(t, "Is this one in stock?", m.Text)
	msgs, _, err := client.History.List(t.Context(), scope, sent.ConversationID, nil)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Equal(t, kommo.ChatMessage{ID: sent.ID, ClientID: sent.MsgID, Type: kommo.MessageTypePicture, Text: "Is this one in stock?",
		Media: "https://example.com/p.png", FileName: "p.png", FileSize: 1024}, msgs[0].Message)
}
