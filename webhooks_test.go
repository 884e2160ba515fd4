package kommo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo/internal/testkit"
)

const (
	webhookTestSecret = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"
	webhookOldSecret  = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
	webhookTestScope  = "344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81"
	webhookAccount    = "52e591f7-c98f-4255-8495-827210138c81"
	webhookManagerID  = "76fc2bea-9a0b-4e5c-8d1f-2b3c4d5e6f70"
	webhookClientID   = "2ed64e26-7c3b-4a52-9d7e-0f4b8f3e4d11"
	webhookConvID     = "8e4d4baa-1c2d-4e3f-9a8b-7c6d5e4f3a21"
)

func webhookParseFixture(t *testing.T, name string) WebhookEvent {
	t.Helper()
	body := testkit.Fixture(t, "webhooks", name+".json")
	ev, err := ParseWebhookBody(body, SignWebhookBody(body, webhookTestSecret), webhookTestSecret)
	require.NoError(t, err)
	require.NotNil(t, ev)
	assert.Equal(t, json.RawMessage(body), ev.Envelope().Raw, "Raw keeps the signed bytes")
	return ev
}

func webhookAsMessage(t *testing.T, ev WebhookEvent) *MessageEvent {
	t.Helper()
	m, ok := ev.(*MessageEvent)
	require.Truef(t, ok, "got %T", ev)
	assert.Equal(t, WebhookKindMessage, m.Kind())
	assert.Equal(t, webhookAccount, m.AccountID)
	return m
}

func TestParseWebhookBody_Fixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		check func(t *testing.T, ev WebhookEvent)
	}{
		{"message_text", func(t *testing.T, ev WebhookEvent) {
			m := webhookAsMessage(t, ev)
			assert.Equal(t, int64(1700000005), m.Time)
			assert.Equal(t, time.Unix(1700000005, 0).UTC(), m.SentAt())
			assert.Equal(t, WebhookConversation{ID: webhookConvID, ClientID: "my-chat-1"}, m.Conversation)
			assert.False(t, m.IsWriteFirst())
			assert.False(t, m.IsCommentReply())
			assert.Equal(t, "79001234567", m.Source.ExternalID)
			assert.Equal(t, ChatUser{ID: webhookManagerID, Name: "Manager Anna"}, m.Sender)
			assert.Equal(t, ChatUser{ID: webhookClientID, ClientID: "my-user-1", Phone: "79161234567", Email: "client@example.com"}, m.Receiver)
			assert.Equal(t, int64(1700000004), m.Timestamp)
			assert.Equal(t, int64(1700000004980), m.MsecTimestamp)
			assert.Equal(t, time.UnixMilli(1700000004980).UTC(), m.MessageTime())
			assert.Equal(t, ChatMessage{ID: "0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a", Type: MessageTypeText, Text: "Hello, Вася!"}, m.Message)
			assert.Nil(t, m.Message.Markup, "markup null")
		}},
		{"message_picture", func(t *testing.T, ev WebhookEvent) {
			m := webhookAsMessage(t, ev)
			msg := m.Message
			assert.Equal(t, "5f0c1f3e-2b8a-4c77-9d2e-1a2b3c4d5e6f", msg.ID)
			assert.Equal(t, MessageTypePicture, msg.Type)
			assert.Equal(t, "Our new catalogue", msg.Text)
			assert.Equal(t, "https://amojo.kommo.com/attachments/52e591f7/picture.jpg", msg.Media)
			assert.Equal(t, "https://amojo.kommo.com/attachments/52e591f7/picture_thumb.jpg", msg.Thumbnail)
			assert.Equal(t, "catalogue.jpg", msg.FileName)
			assert.Equal(t, int64(102400), msg.FileSize)
			assert.Equal(t, "b3a9d0f2-6c1e-4f8a-9b7d-3e2f1a0c9d8e", msg.MediaGroupID)
		}},
		{"message_file", func(t *testing.T, ev WebhookEvent) {
			msg := webhookAsMessage(t, ev).Message
			assert.Equal(t, MessageTypeFile, msg.Type)
			assert.Equal(t, "https://amojo.kommo.com/attachments/52e591f7/invoice.pdf", msg.Media)
			assert.Equal(t, "invoice.pdf", msg.FileName)
			assert.Equal(t, int64(48213), msg.FileSize)
			assert.Empty(t, msg.Thumbnail)
			assert.Empty(t, msg.MediaGroupID)
		}},
		{"message_file_size_string", func(t *testing.T, ev WebhookEvent) {
			// file_size as a string (one reference's history table) in the
			// message, the quoted and the forwarded message; "" is 0.
			msg := webhookAsMessage(t, ev).Message
			assert.Equal(t, MessageTypeFile, msg.Type)
			assert.Equal(t, "invoice.pdf", msg.FileName)
			assert.Equal(t, int64(48213), msg.FileSize)
			require.NotNil(t, msg.ReplyTo)
			assert.Equal(t, int64(2048), msg.ReplyTo.Message.FileSize)
			assert.Equal(t, "order.png", msg.ReplyTo.Message.FileName)
			require.NotNil(t, msg.Forwards)
			require.Len(t, msg.Forwards.Messages, 1)
			assert.Equal(t, int64(0), msg.Forwards.Messages[0].FileSize)
			assert.Equal(t, "terms.pdf", msg.Forwards.Messages[0].FileName)
		}},
		{"message_inline_buttons", func(t *testing.T, ev WebhookEvent) {
			mk := webhookAsMessage(t, ev).Message.Markup
			require.NotNil(t, mk)
			assert.True(t, mk.IsInline())
			assert.False(t, mk.IsListMessage())
			assert.Equal(t, MarkupModeInline, mk.Mode)
			assert.Equal(t, [][]InlineButton{
				{{Text: "Yes"}, {Text: "No"}},
				{{Text: "Open shop", URL: "https://example.com/shop"}},
			}, mk.Buttons)
		}},
		{"message_list_message", func(t *testing.T, ev WebhookEvent) {
			mk := webhookAsMessage(t, ev).Message.Markup
			require.NotNil(t, mk)
			assert.True(t, mk.IsListMessage())
			assert.False(t, mk.IsInline())
			assert.Empty(t, mk.Mode)
			assert.Nil(t, mk.Buttons)
			assert.Equal(t, &ListMessage{
				Header: "Our menu", Body: "Choose a dish", Footer: "Delivery in 30 min", Button: "Menu",
				Sections: []ListMessageSection{
					{Title: "Pizza", Rows: []ListMessageRow{
						{CallbackData: "pizza_margherita", Title: "Margherita", Description: "Tomato, mozzarella"},
						{CallbackData: "pizza_pepperoni", Title: "Pepperoni", Description: "Spicy"},
					}},
					{Title: "Drinks", Rows: []ListMessageRow{{CallbackData: "drink_cola", Title: "Cola"}}},
				},
			}, mk.ListMessage)
		}},
		{"message_template", func(t *testing.T, ev WebhookEvent) {
			msg := webhookAsMessage(t, ev).Message
			assert.Equal(t, "Hello", msg.Text)
			assert.Equal(t, &Template{ID: 7103, ExternalID: "tpl-1", Content: "Hello {{lead.name}}",
				Params: []TemplateParam{{Key: "{{lead.name}}", Value: "Bob"}}}, msg.Template)
			require.NotNil(t, msg.Markup)
			assert.Equal(t, [][]InlineButton{{{Text: "Yes"}, {Text: "No"}}}, msg.Markup.Buttons)
		}},
		{"message_reply", func(t *testing.T, ev WebhookEvent) {
			msg := webhookAsMessage(t, ev).Message
			assert.Equal(t, "Yes, we deliver on Sundays", msg.Text)
			require.NotNil(t, msg.ReplyTo)
			assert.Equal(t, WebhookEmbeddedMessage{
				ID: "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9", MsgID: "my-msg-41", Type: MessageTypeText,
				Text: "Do you deliver on Sundays?", Timestamp: 1699999000, MsecTimestamp: 1699999000123,
				Sender:   ChatUser{ID: webhookClientID, ClientID: "my-user-1", Name: "Client Bob"},
				Receiver: ChatUser{ID: webhookManagerID, Name: "Manager Anna"},
			}, msg.ReplyTo.Message)
			assert.Nil(t, msg.Forwards)
		}},
		{"message_reply_flat", func(t *testing.T, ev WebhookEvent) {
			// developers.kommo.com's form: the quoted message's fields
			// directly under reply_to. It decodes like message_reply.
			msg := webhookAsMessage(t, ev).Message
			nested := webhookAsMessage(t, webhookParseFixture(t, "message_reply")).Message
			require.NotNil(t, msg.ReplyTo)
			assert.Equal(t, nested.ReplyTo, msg.ReplyTo)
			assert.Equal(t, "my-msg-41", msg.ReplyTo.Message.MsgID)
			assert.Equal(t, ChatUser{ID: webhookClientID, ClientID: "my-user-1", Name: "Client Bob"}, msg.ReplyTo.Message.Sender)
			out, err := json.Marshal(ev)
			require.NoError(t, err)
			assert.Contains(t, string(out), `"reply_to":{"message":{"id":"f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9","msgid":"my-msg-41",`, "it encodes nested")
		}},
		{"message_forward", func(t *testing.T, ev WebhookEvent) {
			msg := webhookAsMessage(t, ev).Message
			require.NotNil(t, msg.Forwards)
			assert.Equal(t, "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e", msg.Forwards.ConversationRefID)
			require.Len(t, msg.Forwards.Messages, 1)
			f := msg.Forwards.Messages[0]
			assert.Equal(t, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", f.ID)
			assert.Equal(t, "other-chat-msg-7", f.MsgID)
			assert.Equal(t, MessageTypePicture, f.Type)
			assert.Equal(t, "https://amojo.kommo.com/attachments/52e591f7/fwd_thumb.png", f.Thumbnail)
			assert.Equal(t, int64(2048), f.FileSize)
			assert.Equal(t, int64(1699990000500), f.MsecTimestamp)
			assert.Equal(t, ChatUser{ID: "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", ClientID: "other-user-3", Name: "Alice"}, f.Sender)
		}},
		{"message_write_first", func(t *testing.T, ev WebhookEvent) {
			m := webhookAsMessage(t, ev)
			assert.True(t, m.IsWriteFirst())
			assert.Equal(t, WebhookConversation{ID: "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f"}, m.Conversation)
			assert.Equal(t, "79169876543", m.Receiver.Phone)
			assert.Empty(t, m.Receiver.ClientID)
			assert.Equal(t, "79005554433", m.Source.ExternalID)
			require.NotNil(t, m.Message.Template)
			assert.Equal(t, "order_ready", m.Message.Template.ExternalID)
		}},
		{"message_comment_reply", func(t *testing.T, ev WebhookEvent) {
			m := webhookAsMessage(t, ev)
			assert.True(t, m.IsCommentReply())
			assert.Equal(t, &Post{ID: "post-98765"}, m.Message.Post)
			assert.Equal(t, MessageTypeText, m.Message.Type)
			assert.Equal(t, "Client Bob", m.Receiver.Name)
			assert.Equal(t, "Manager Anna", m.Sender.Name)
			require.NotNil(t, m.Message.ReplyTo)
			assert.Equal(t, "comment-555", m.Message.ReplyTo.Message.MsgID)
			assert.Equal(t, "Nice product!", m.Message.ReplyTo.Message.Text)
		}},
		{"typing", func(t *testing.T, ev WebhookEvent) {
			ty, ok := ev.(*TypingEvent)
			require.Truef(t, ok, "got %T", ev)
			assert.Equal(t, WebhookKindTyping, ty.Kind())
			assert.Equal(t, webhookAccount, ty.AccountID)
			assert.Equal(t, int64(1637087558), ty.Time)
			assert.Equal(t, ChatUser{ID: webhookManagerID}, ty.User)
			assert.Equal(t, WebhookConversation{ID: webhookConvID, ClientID: "my-chat-1"}, ty.Conversation)
			assert.Equal(t, int64(1637087563), ty.ExpiredAt)
			assert.Equal(t, time.Unix(1637087563, 0).UTC(), ty.Expiry())
			assert.Empty(t, ty.PostID)
		}},
		{"typing_comment", func(t *testing.T, ev WebhookEvent) {
			ty, ok := ev.(*TypingEvent)
			require.Truef(t, ok, "got %T", ev)
			assert.Equal(t, "post-98765", ty.PostID)
			assert.Empty(t, ty.Conversation.ClientID, "write-first chat")
			assert.Equal(t, int64(1637087605), ty.ExpiredAt)
		}},
		{"typing_action_user", func(t *testing.T, ev WebhookEvent) {
			ty, ok := ev.(*TypingEvent)
			require.Truef(t, ok, "got %T", ev)
			assert.Equal(t, webhookManagerID, ty.User.ID, "user read from action.user")
			assert.Equal(t, "my-chat-1", ty.Conversation.ClientID)
		}},
		{"reaction_react", func(t *testing.T, ev WebhookEvent) {
			re, ok := ev.(*ReactionEvent)
			require.Truef(t, ok, "got %T", ev)
			assert.Equal(t, WebhookKindReaction, re.Kind())
			assert.True(t, re.IsReact())
			assert.False(t, re.IsUnreact())
			assert.Equal(t, "😍", re.Emoji)
			assert.Equal(t, "0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a", re.MsgID)
			assert.Equal(t, "0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a", re.MessageID())
			assert.Equal(t, &WebhookEmbeddedMessage{
				ID: "0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a", ClientID: "my-msg-17",
				Sender: ChatUser{ID: webhookClientID}, Receiver: ChatUser{ID: webhookManagerID},
				Timestamp: 1637087000, MsecTimestamp: 1637087000250,
			}, re.Message)
			assert.Equal(t, ChatUser{ID: webhookManagerID}, re.User)
			assert.Equal(t, WebhookConversation{ID: webhookConvID, ClientID: "my-chat-1"}, re.Conversation)
		}},
		{"reaction_unreact", func(t *testing.T, ev WebhookEvent) {
			re, ok := ev.(*ReactionEvent)
			require.Truef(t, ok, "got %T", ev)
			assert.True(t, re.IsUnreact())
			assert.False(t, re.IsReact())
			assert.Equal(t, "unreact", re.Type)
			assert.Empty(t, re.Emoji)
			assert.Nil(t, re.Message, "documented shape has no message object")
			assert.Equal(t, "0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a", re.MessageID())
			assert.Equal(t, int64(1637087600), re.Time)
		}},
		{"unknown_kind", func(t *testing.T, ev WebhookEvent) {
			u, ok := ev.(*UnknownEvent)
			require.Truef(t, ok, "got %T", ev)
			assert.Equal(t, WebhookKindUnknown, u.Kind())
			assert.Equal(t, webhookAccount, u.AccountID)
			assert.Equal(t, int64(1700000100), u.Time)
			assert.NoError(t, u.Err)
			out, err := json.Marshal(u)
			require.NoError(t, err)
			assert.JSONEq(t, string(testkit.Fixture(t, "webhooks", "unknown_kind.json")), string(out))
		}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, webhookParseFixture(t, tt.name))
		})
	}
	// Every fixture file has a case, so a new fixture cannot go unchecked.
	files := testkit.FixtureGlob(t, "webhooks", "*.json")
	require.NotEmpty(t, files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		assert.Truef(t, seen[name], "fixture %s has no test case", name)
	}
}

// The typed events marshal back to Kommo's shape, so a queued event decodes
// to the same value.
func TestWebhookEvents_JSONRoundTrip(t *testing.T) {
	t.Parallel()
	files := testkit.FixtureGlob(t, "webhooks", "*.json")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			ev := webhookParseFixture(t, name)
			out, err := json.Marshal(ev)
			require.NoError(t, err)
			again, err := hookDecode(out)
			require.NoError(t, err)
			require.IsType(t, ev, again)
			switch e := ev.(type) {
			case *MessageEvent:
				e.Raw = nil
				a := again.(*MessageEvent)
				a.Raw = nil
				assert.Equal(t, e, a)
			case *TypingEvent:
				e.Raw = nil
				a := again.(*TypingEvent)
				a.Raw = nil
				assert.Equal(t, e, a)
			case *ReactionEvent:
				e.Raw = nil
				a := again.(*ReactionEvent)
				a.Raw = nil
				assert.Equal(t, e, a)
			case *UnknownEvent:
				assert.JSONEq(t, string(e.Raw), string(out))
			}
		})
	}
	// The wire shape, not the Go field layout, is what json.Marshal emits.
	out, err := json.Marshal(webhookParseFixture(t, "message_text"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"account_id":"52e591f7-c98f-4255-8495-827210138c81","time":1700000005,"message":{
		"receiver":{"id":"2ed64e26-7c3b-4a52-9d7e-0f4b8f3e4d11","client_id":"my-user-1","phone":"79161234567","email":"client@example.com"},
		"sender":{"id":"76fc2bea-9a0b-4e5c-8d1f-2b3c4d5e6f70","name":"Manager Anna"},
		"conversation":{"id":"8e4d4baa-1c2d-4e3f-9a8b-7c6d5e4f3a21","client_id":"my-chat-1"},
		"source":{"external_id":"79001234567"},"timestamp":1700000004,"msec_timestamp":1700000004980,
		"message":{"id":"0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a","type":"text","text":"Hello, Вася!"}}}`, string(out))
}

func TestParseWebhookBody_KnownAnswerVector(t *testing.T) {
	t.Parallel()
	// Vector D3 (testdata/signatures.json): the signature matches, but
	// "test-body" is not JSON, so the error is about the body, not the
	// signature.
	hooks := testkit.Vectors(t).Webhooks
	require.NotEmpty(t, hooks)
	for _, v := range hooks {
		_, err := ParseWebhookBody([]byte(v.Body), v.Signature, v.Secret)
		require.Error(t, err, v.Name)
		if v.Valid {
			assert.ErrorIs(t, err, ErrWebhookMalformed, v.Name)
			assert.NotErrorIs(t, err, ErrInvalidSignature, v.Name)
		} else {
			assert.ErrorIs(t, err, ErrInvalidSignature, v.Name)
		}
	}
}

func TestParseWebhookBody_Signature(t *testing.T) {
	t.Parallel()
	body := testkit.Fixture(t, "webhooks", "message_text.json")
	good := SignWebhookBody(body, webhookTestSecret)
	flipped := []byte(good)
	if flipped[0] == '0' {
		flipped[0] = '1'
	} else {
		flipped[0] = '0'
	}

	tests := []struct {
		name      string
		body      []byte
		signature string
		secret    string
		opts      []WebhookOption
		wantErr   error
	}{
		{name: "valid", body: body, signature: good, secret: webhookTestSecret},
		{name: "uppercase hex", body: body, signature: strings.ToUpper(good), secret: webhookTestSecret},
		{name: "surrounding spaces", body: body, signature: " " + good + " ", secret: webhookTestSecret},
		{name: "missing", body: body, signature: "", secret: webhookTestSecret, wantErr: ErrInvalidSignature},
		{name: "wrong", body: body, signature: string(flipped), secret: webhookTestSecret, wantErr: ErrInvalidSignature},
		{name: "not hex", body: body, signature: strings.Repeat("z", 40), secret: webhookTestSecret, wantErr: ErrInvalidSignature},
		{name: "truncated", body: body, signature: good[:39], secret: webhookTestSecret, wantErr: ErrInvalidSignature},
		{name: "other secret", body: body, signature: good, secret: webhookOldSecret, wantErr: ErrInvalidSignature},
		{name: "empty secret", body: body, signature: good, secret: "", wantErr: ErrEmptySecret},
		{name: "body changed", body: append(bytes.Clone(body), ' '), signature: good, secret: webhookTestSecret, wantErr: ErrInvalidSignature},
		{name: "trailing LF trimmed", body: append(bytes.Clone(body), '\n'), signature: good, secret: webhookTestSecret},
		{name: "trailing CRLF trimmed", body: append(bytes.Clone(body), '\r', '\n'), signature: good, secret: webhookTestSecret},
		{name: "two LFs not trimmed", body: append(bytes.Clone(body), '\n', '\n'), signature: good, secret: webhookTestSecret, wantErr: ErrInvalidSignature},
		{name: "strict rejects trailing LF", body: append(bytes.Clone(body), '\n'), signature: good, secret: webhookTestSecret,
			opts: []WebhookOption{WithWebhookStrictSignature()}, wantErr: ErrInvalidSignature},
		{name: "signed with LF, raw first", body: append(bytes.Clone(body), '\n'),
			signature: SignWebhookBody(append(bytes.Clone(body), '\n'), webhookTestSecret), secret: webhookTestSecret,
			opts: []WebhookOption{WithWebhookStrictSignature()}},
		{name: "old secret rejected without rotation", body: body, signature: SignWebhookBody(body, webhookOldSecret),
			secret: webhookTestSecret, wantErr: ErrInvalidSignature},
		{name: "old secret accepted in rotation", body: body, signature: SignWebhookBody(body, webhookOldSecret),
			secret: webhookTestSecret, opts: []WebhookOption{WithWebhookSecrets("", webhookOldSecret)}},
		{name: "too large", body: body, signature: good, secret: webhookTestSecret,
			opts: []WebhookOption{WithWebhookMaxBodySize(int64(len(body) - 1))}, wantErr: ErrWebhookTooLarge},
		{name: "exactly at the cap", body: body, signature: good, secret: webhookTestSecret,
			opts: []WebhookOption{WithWebhookMaxBodySize(int64(len(body)))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := ParseWebhookBody(tt.body, tt.signature, tt.secret, tt.opts...)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, ev)
				if errors.Is(tt.wantErr, ErrEmptySecret) {
					assert.ErrorIs(t, err, ErrInvalidSignature, "a missing secret fails closed")
				}
				assert.NotContains(t, err.Error(), good, "signature must not leak")
				assert.NotContains(t, err.Error(), webhookTestSecret)
				assert.NotContains(t, err.Error(), "Manager Anna", "body must not leak")
				return
			}
			require.NoError(t, err)
			m := webhookAsMessage(t, ev)
			assert.Equal(t, "0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a", m.Message.ID)
		})
	}
}

func TestParseWebhookBody_Malformed(t *testing.T) {
	t.Parallel()
	for _, body := range []string{``, `not json`, `{"account_id":`, `[1,2]`, `null`, `"text"`, `42`, `{"a":1}x`} {
		t.Run(body, func(t *testing.T) {
			t.Parallel()
			ev, err := ParseWebhookBody([]byte(body), SignWebhookBody([]byte(body), webhookTestSecret), webhookTestSecret)
			require.ErrorIs(t, err, ErrWebhookMalformed)
			assert.NotErrorIs(t, err, ErrInvalidSignature)
			assert.Nil(t, ev)
		})
	}
	t.Run("json error wrapped", func(t *testing.T) {
		t.Parallel()
		_, err := ParseWebhookBody([]byte(`{"a":`), SignWebhookBody([]byte(`{"a":`), webhookTestSecret), webhookTestSecret)
		var se *json.SyntaxError
		assert.ErrorAs(t, err, &se)
	})
}

// A known shape with an unexpected field type must not lose the message: it
// arrives as an UnknownEvent with the raw body and the decode error.
func TestParseWebhookBody_KnownShapeWrongTypes(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"message":      `{"account_id":"acc","time":"1700000000","message":{"conversation":{"id":"c"},"message":{"id":"m1","type":"file","file_size":"12 KB"}}}`,
		"message size": `{"account_id":"acc","time":1700000000,"message":{"conversation":{"id":"c"},"message":{"id":"m1","type":"file","file_size":true}}}`,
		"typing":       `{"account_id":"acc","time":1700000000,"action":{"typing":{"expired_at":"soon"}}}`,
		"reaction":     `{"account_id":"acc","time":1700000000.0,"action":{"reaction":{"msgid":5,"type":"react"}}}`,
	}
	for kind, body := range tests {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ev, err := ParseWebhookBody([]byte(body), SignWebhookBody([]byte(body), webhookTestSecret), webhookTestSecret)
			require.NoError(t, err)
			u, ok := ev.(*UnknownEvent)
			require.Truef(t, ok, "got %T", ev)
			assert.Equal(t, "acc", u.AccountID)
			assert.Equal(t, int64(1700000000), u.Time)
			assert.Equal(t, json.RawMessage(body), u.Raw)
			require.Error(t, u.Err)
			assert.ErrorIs(t, u.Err, ErrWebhookMalformed)
			var te *json.UnmarshalTypeError
			assert.ErrorAs(t, u.Err, &te)
			assert.Contains(t, u.Err.Error(), strings.Fields(kind)[0])
		})
	}
	t.Run("dispatch needs message.message", func(t *testing.T) {
		t.Parallel()
		body := []byte(`{"account_id":"acc","time":1,"message":{"status":"read"},"action":null}`)
		ev, err := ParseWebhookBody(body, SignWebhookBody(body, webhookTestSecret), webhookTestSecret)
		require.NoError(t, err)
		u, ok := ev.(*UnknownEvent)
		require.Truef(t, ok, "got %T", ev)
		assert.NoError(t, u.Err)
	})
}

func TestParseWebhook_Request(t *testing.T) {
	t.Parallel()
	body := testkit.Fixture(t, "webhooks", "typing.json")
	sig := SignWebhookBody(body, webhookTestSecret)
	newReq := func(method string, b []byte, sig string) *http.Request {
		r := httptest.NewRequest(method, "/kommo/"+webhookTestScope, bytes.NewReader(b))
		if sig != "" {
			r.Header.Set("X-Signature", sig)
		}
		return r
	}

	ev, err := ParseWebhook(newReq(http.MethodPost, body, sig), webhookTestSecret)
	require.NoError(t, err)
	ty, ok := ev.(*TypingEvent)
	require.True(t, ok)
	assert.Equal(t, int64(1637087563), ty.ExpiredAt)

	_, err = ParseWebhook(newReq(http.MethodGet, nil, sig), webhookTestSecret)
	assert.ErrorIs(t, err, ErrWebhookMethodNotAllowed)

	_, err = ParseWebhook(newReq(http.MethodPost, body, ""), webhookTestSecret)
	assert.ErrorIs(t, err, ErrInvalidSignature)

	// Over the cap, announced by Content-Length.
	_, err = ParseWebhook(newReq(http.MethodPost, body, sig), webhookTestSecret, WithWebhookMaxBodySize(10))
	assert.ErrorIs(t, err, ErrWebhookTooLarge)

	// Over the cap, unannounced (chunked): the body is read at most cap+1.
	r := newReq(http.MethodPost, nil, sig)
	src := &webhookCountingReader{r: bytes.NewReader(bytes.Repeat([]byte("x"), 1<<16))}
	r.Body, r.ContentLength = io.NopCloser(src), -1
	_, err = ParseWebhook(r, webhookTestSecret, WithWebhookMaxBodySize(100))
	assert.ErrorIs(t, err, ErrWebhookTooLarge)
	assert.LessOrEqual(t, src.n, 101+512, "reads stop right after the cap")

	// A failing body read.
	r = newReq(http.MethodPost, nil, sig)
	r.Body, r.ContentLength = io.NopCloser(webhookErrReader{}), -1
	_, err = ParseWebhook(r, webhookTestSecret)
	assert.ErrorIs(t, err, ErrWebhookBodyRead)

	// Invalid options are reported, not ignored.
	_, err = ParseWebhook(newReq(http.MethodPost, body, sig), webhookTestSecret, WithWebhookMaxBodySize(0))
	assert.ErrorContains(t, err, "WithWebhookMaxBodySize")
}

type webhookCountingReader struct {
	r io.Reader
	n int
}

func (c *webhookCountingReader) Read(p []byte) (int, error) {
	if len(p) > 512 {
		p = p[:512]
	}
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type webhookErrReader struct{}

func (webhookErrReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// --- handler ---

type webhookRecorder struct {
	mu     sync.Mutex
	events []WebhookEvent
	scopes []string
	errs   []error
}

func (rec *webhookRecorder) onError(_ *http.Request, err error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.errs = append(rec.errs, err)
}

func (rec *webhookRecorder) callback(fail error) WebhookFunc {
	return func(ctx context.Context, ev WebhookEvent) error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.events = append(rec.events, ev)
		rec.scopes = append(rec.scopes, WebhookScopeID(ctx))
		return fail
	}
}

func (rec *webhookRecorder) calls() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.events)
}

func (rec *webhookRecorder) errors() []error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]error(nil), rec.errs...)
}

func webhookRequest(t testing.TB, method string, body []byte, secret string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, "https://integration.test/kommo/"+webhookTestScope, bytes.NewReader(body))
	if secret != "" {
		r.Header.Set("X-Signature", SignWebhookBody(body, secret))
	}
	return r
}

func webhookServe(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestNewWebhookHandler_Construction(t *testing.T) {
	t.Parallel()
	ok := func(context.Context, WebhookEvent) error { return nil }

	_, err := NewWebhookHandler("", ok)
	assert.ErrorIs(t, err, ErrEmptySecret)

	_, err = NewWebhookHandler(webhookTestSecret, nil)
	assert.ErrorContains(t, err, "nil callback")

	_, err = NewWebhookHandler(webhookTestSecret, ok,
		WithWebhookTimeout(0), WithWebhookMaxBodySize(-1), WithWebhookLogger(nil))
	require.Error(t, err)
	for _, want := range []string{"WithWebhookTimeout", "WithWebhookMaxBodySize", "WithWebhookLogger"} {
		assert.ErrorContains(t, err, want, "every problem is reported")
	}

	_, err = NewWebhookHandler("", ok)
	assert.EqualError(t, err, "kommo: NewWebhookHandler: secret: empty channel secret", "no stutter")
	var oe *OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "secret", oe.Option)
	assert.ErrorIs(t, err, ErrInvalidOption)

	// Kommo waits 5 s: a callback bound at or past it is refused.
	for _, d := range []time.Duration{KommoWebhookWait, 10 * time.Second} {
		_, err = NewWebhookHandler(webhookTestSecret, ok, WithWebhookTimeout(d))
		require.ErrorAs(t, err, &oe, d)
		assert.Equal(t, "WithWebhookTimeout", oe.Option)
	}
	_, err = NewWebhookHandler(webhookTestSecret, ok, WithWebhookTimeout(KommoWebhookWait-time.Millisecond))
	assert.NoError(t, err)

	// The parse functions report their option errors too, and a nil option.
	_, err = ParseWebhookBody([]byte(`{}`), "", webhookTestSecret, WithWebhookMaxBodySize(0), nil)
	assert.ErrorIs(t, err, ErrInvalidOption)
	assert.ErrorContains(t, err, "kommo: ParseWebhookBody: WithWebhookMaxBodySize: size must be positive")
	assert.ErrorContains(t, err, "nil option")

	h, err := NewWebhookHandler(webhookTestSecret, ok)
	require.NoError(t, err)
	assert.Equal(t, WebhookDefaultTimeout, h.cfg.timeout)
	assert.Equal(t, WebhookDefaultMaxBodySize, h.cfg.maxBody)
	assert.IsType(t, &MemoryDedupe{}, h.cfg.dedupe, "dedupe is on by default")
	assert.Less(t, WebhookDefaultTimeout, 5*time.Second, "below Kommo's 5 s")

	h, err = NewWebhookHandler(webhookTestSecret, ok, WithWebhookDedupe(nil))
	require.NoError(t, err)
	assert.Nil(t, h.cfg.dedupe)
}

func TestWebhookHandler_StatusCodes(t *testing.T) {
	t.Parallel()
	body := testkit.Fixture(t, "webhooks", "message_text.json")
	tests := []struct {
		name       string
		req        func(t *testing.T) *http.Request
		opts       []WebhookHandlerOption
		fail       error
		wantStatus int
		wantCalls  int
		wantErr    error
	}{
		{name: "ok", req: func(t *testing.T) *http.Request { return webhookRequest(t, http.MethodPost, body, webhookTestSecret) },
			wantStatus: 200, wantCalls: 1},
		{name: "GET", req: func(t *testing.T) *http.Request { return webhookRequest(t, http.MethodGet, nil, webhookTestSecret) },
			wantStatus: 405, wantErr: ErrWebhookMethodNotAllowed},
		{name: "PUT", req: func(t *testing.T) *http.Request { return webhookRequest(t, http.MethodPut, body, webhookTestSecret) },
			wantStatus: 405, wantErr: ErrWebhookMethodNotAllowed},
		{name: "too large", req: func(t *testing.T) *http.Request { return webhookRequest(t, http.MethodPost, body, webhookTestSecret) },
			opts: []WebhookHandlerOption{WithWebhookMaxBodySize(64)}, wantStatus: 413, wantErr: ErrWebhookTooLarge},
		{name: "too large chunked", req: func(t *testing.T) *http.Request {
			r := webhookRequest(t, http.MethodPost, body, webhookTestSecret)
			r.ContentLength = -1
			return r
		}, opts: []WebhookHandlerOption{WithWebhookMaxBodySize(64)}, wantStatus: 413, wantErr: ErrWebhookTooLarge},
		{name: "missing signature", req: func(t *testing.T) *http.Request { return webhookRequest(t, http.MethodPost, body, "") },
			wantStatus: 401, wantErr: ErrInvalidSignature},
		{name: "bad signature", req: func(t *testing.T) *http.Request { return webhookRequest(t, http.MethodPost, body, webhookOldSecret) },
			wantStatus: 401, wantErr: ErrInvalidSignature},
		{name: "malformed JSON", req: func(t *testing.T) *http.Request {
			return webhookRequest(t, http.MethodPost, []byte(`{"account_id":"x",`), webhookTestSecret)
		}, wantStatus: 400, wantErr: ErrWebhookMalformed},
		{name: "unreadable body", req: func(t *testing.T) *http.Request {
			r := webhookRequest(t, http.MethodPost, nil, webhookTestSecret)
			r.Body, r.ContentLength = io.NopCloser(webhookErrReader{}), -1
			return r
		}, wantStatus: 400, wantErr: ErrWebhookBodyRead},
		{name: "callback error", req: func(t *testing.T) *http.Request { return webhookRequest(t, http.MethodPost, body, webhookTestSecret) },
			fail: errWebhookQueueFull, wantStatus: 500, wantCalls: 1, wantErr: errWebhookQueueFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &webhookRecorder{}
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			opts := append([]WebhookHandlerOption{WithWebhookErrorHandler(rec.onError), WithWebhookLogger(logger)}, tt.opts...)
			h, err := NewWebhookHandler(webhookTestSecret, rec.callback(tt.fail), opts...)
			require.NoError(t, err)

			w := webhookServe(h, tt.req(t))
			assert.Equal(t, tt.wantStatus, w.Code)
			assert.Equal(t, tt.wantCalls, rec.calls(), "callback runs")
			errs := rec.errors()
			if tt.wantErr == nil {
				assert.Empty(t, errs)
				assert.Contains(t, logs.String(), "webhook handled")
			} else {
				require.Len(t, errs, 1, "error hook called once")
				assert.ErrorIs(t, errs[0], tt.wantErr)
				assert.Contains(t, logs.String(), "webhook failed")
				assert.Contains(t, logs.String(), fmt.Sprintf("status=%d", tt.wantStatus))
			}
			if tt.wantStatus == 405 {
				assert.Equal(t, http.MethodPost, w.Header().Get("Allow"))
			}
			// Never log bodies or signatures.
			assert.NotContains(t, logs.String(), "Manager Anna")
			assert.NotContains(t, logs.String(), SignWebhookBody(body, webhookTestSecret))
			assert.NotContains(t, w.Body.String(), "Manager Anna")
		})
	}
}

var errWebhookQueueFull = errors.New("queue full")

func TestWebhookHandler_CallbackReceivesEventAndScope(t *testing.T) {
	t.Parallel()
	body := testkit.Fixture(t, "webhooks", "message_write_first.json")

	t.Run("last path segment", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		h, err := NewWebhookHandler(webhookTestSecret, rec.callback(nil))
		require.NoError(t, err)
		w := webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret))
		require.Equal(t, 200, w.Code)
		require.Equal(t, 1, rec.calls())
		assert.Equal(t, []string{webhookTestScope}, rec.scopes)
		m := rec.events[0].(*MessageEvent)
		assert.True(t, m.IsWriteFirst())
		assert.Equal(t, json.RawMessage(body), m.Raw)
	})
	t.Run("mux wildcard", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		h, err := NewWebhookHandler(webhookTestSecret, rec.callback(nil))
		require.NoError(t, err)
		mux := http.NewServeMux()
		mux.Handle("POST /kommo/{scope_id}/hook", h)
		r := httptest.NewRequest(http.MethodPost, "/kommo/"+webhookTestScope+"/hook", bytes.NewReader(body))
		r.Header.Set("X-Signature", SignWebhookBody(body, webhookTestSecret))
		w := webhookServe(mux, r)
		require.Equal(t, 200, w.Code)
		assert.Equal(t, []string{webhookTestScope}, rec.scopes)
	})
	t.Run("callback deadline", func(t *testing.T) {
		t.Parallel()
		var deadline time.Duration
		var hasDeadline bool
		h, err := NewWebhookHandler(webhookTestSecret, func(ctx context.Context, ev WebhookEvent) error {
			d, ok := ctx.Deadline()
			hasDeadline, deadline = ok, time.Until(d)
			return nil
		}, WithWebhookTimeout(3*time.Second))
		require.NoError(t, err)
		require.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret)).Code)
		assert.True(t, hasDeadline)
		assert.Greater(t, deadline, time.Duration(0))
		assert.LessOrEqual(t, deadline, 3*time.Second)
	})
	assert.Empty(t, WebhookScopeID(context.Background()))
}

func TestWebhookHandler_Timeout(t *testing.T) {
	t.Parallel()
	body := testkit.Fixture(t, "webhooks", "message_text.json")

	t.Run("callback honours ctx", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		cancelled := make(chan error, 1)
		h, err := NewWebhookHandler(webhookTestSecret, func(ctx context.Context, ev WebhookEvent) error {
			<-ctx.Done()
			cancelled <- ctx.Err()
			return ctx.Err()
		}, WithWebhookTimeout(20*time.Millisecond), WithWebhookErrorHandler(rec.onError))
		require.NoError(t, err)
		w := webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret))
		assert.Equal(t, 500, w.Code)
		assert.ErrorIs(t, <-cancelled, context.DeadlineExceeded, "callback ctx is cancelled")
		errs := rec.errors()
		require.Len(t, errs, 1)
		assert.ErrorIs(t, errs[0], ErrWebhookTimeout)
		assert.ErrorIs(t, errs[0], context.DeadlineExceeded)
	})

	t.Run("callback ignores ctx: answer leaves anyway", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		release := make(chan struct{})
		finished := make(chan struct{})
		var logs webhookSyncBuffer
		store := NewMemoryDedupe(10)
		h, err := NewWebhookHandler(webhookTestSecret, func(ctx context.Context, ev WebhookEvent) error {
			defer close(finished)
			<-release // blocks past the deadline, ignoring ctx
			return nil
		}, WithWebhookTimeout(20*time.Millisecond), WithWebhookErrorHandler(rec.onError),
			WithWebhookDedupe(store), WithWebhookLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		require.NoError(t, err)
		w := webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret))
		assert.Equal(t, 500, w.Code, "answered while the callback is still blocked")
		select {
		case <-finished:
			t.Fatal("callback finished before it was released")
		default:
		}
		require.Len(t, rec.errors(), 1)
		assert.ErrorIs(t, rec.errors()[0], ErrWebhookTimeout)
		close(release)
		<-finished
		// The late success is reported, but not recorded as handled: the
		// answer was 500, so a replay runs the callback again.
		require.Eventually(t, func() bool { return strings.Contains(logs.String(), "after the deadline") }, 5*time.Second, time.Millisecond)
		require.Eventually(t, func() bool { return len(rec.errors()) == 2 }, 5*time.Second, time.Millisecond)
		var le *WebhookLateError
		require.ErrorAs(t, rec.errors()[1], &le)
		assert.NoError(t, le.Err, "late success")
		ev, err := ParseWebhookBody(body, SignWebhookBody(body, webhookTestSecret), webhookTestSecret)
		require.NoError(t, err)
		for _, key := range webhookTestKeys(ev, body) {
			ok, err := store.Reserve(context.Background(), key)
			require.NoError(t, err)
			assert.True(t, ok, "late success not marked done: %s", key)
		}
	})

	t.Run("panic", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		h, err := NewWebhookHandler(webhookTestSecret, func(ctx context.Context, ev WebhookEvent) error {
			panic("boom")
		}, WithWebhookErrorHandler(rec.onError))
		require.NoError(t, err)
		w := webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret))
		assert.Equal(t, 500, w.Code)
		require.Len(t, rec.errors(), 1)
		assert.ErrorIs(t, rec.errors()[0], ErrWebhookCallback)
		assert.ErrorContains(t, rec.errors()[0], "boom")
	})

	t.Run("request cancelled", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		started := make(chan struct{})
		h, err := NewWebhookHandler(webhookTestSecret, func(ctx context.Context, ev WebhookEvent) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		}, WithWebhookErrorHandler(rec.onError))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		r := webhookRequest(t, http.MethodPost, body, webhookTestSecret).WithContext(ctx)
		go func() { <-started; cancel() }()
		w := webhookServe(h, r)
		assert.Equal(t, 500, w.Code)
		require.Len(t, rec.errors(), 1)
		assert.ErrorIs(t, rec.errors()[0], context.Canceled)
		assert.NotErrorIs(t, rec.errors()[0], ErrWebhookTimeout)
	})
}

type webhookSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *webhookSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *webhookSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWebhookHandler_Dedupe(t *testing.T) {
	t.Parallel()
	body := testkit.Fixture(t, "webhooks", "message_text.json")

	t.Run("replay after success is acknowledged without running", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		h, err := NewWebhookHandler(webhookTestSecret, rec.callback(nil), WithWebhookErrorHandler(rec.onError))
		require.NoError(t, err)
		for i := 0; i < 3; i++ {
			assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret)).Code)
		}
		assert.Equal(t, 1, rec.calls())
		assert.Empty(t, rec.errors())
	})

	t.Run("same message id, different body", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		h, err := NewWebhookHandler(webhookTestSecret, rec.callback(nil))
		require.NoError(t, err)
		other := bytes.Replace(body, []byte(`"time":1700000005`), []byte(`"time":1700000099`), 1)
		require.NotEqual(t, body, other)
		assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret)).Code)
		assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, other, webhookTestSecret)).Code)
		assert.Equal(t, 2, rec.calls(), "keyed by message id and body: another body runs")
		assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, other, webhookTestSecret)).Code)
		assert.Equal(t, 2, rec.calls(), "an exact replay does not")
		// A different message runs.
		assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, testkit.Fixture(t, "webhooks", "message_file.json"), webhookTestSecret)).Code)
		assert.Equal(t, 3, rec.calls())
	})

	t.Run("reactions keyed by body", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		h, err := NewWebhookHandler(webhookTestSecret, rec.callback(nil))
		require.NoError(t, err)
		react, unreact := testkit.Fixture(t, "webhooks", "reaction_react.json"), testkit.Fixture(t, "webhooks", "reaction_unreact.json")
		for _, b := range [][]byte{react, react, unreact, unreact} {
			assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, b, webhookTestSecret)).Code)
		}
		assert.Equal(t, 2, rec.calls())
	})

	t.Run("trailing newline replay keyed like the original", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		h, err := NewWebhookHandler(webhookTestSecret, rec.callback(nil))
		require.NoError(t, err)
		typing := testkit.Fixture(t, "webhooks", "typing.json")
		assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, typing, webhookTestSecret)).Code)
		r := httptest.NewRequest(http.MethodPost, "/kommo/"+webhookTestScope, bytes.NewReader(append(bytes.Clone(typing), '\n')))
		r.Header.Set("X-Signature", SignWebhookBody(typing, webhookTestSecret))
		assert.Equal(t, 200, webhookServe(h, r).Code)
		assert.Equal(t, 1, rec.calls())
	})

	t.Run("replay after failure runs again", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int32
		h, err := NewWebhookHandler(webhookTestSecret, func(ctx context.Context, ev WebhookEvent) error {
			if calls.Add(1) == 1 {
				return errWebhookQueueFull
			}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, 500, webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret)).Code)
		assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret)).Code)
		assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret)).Code)
		assert.Equal(t, int32(2), calls.Load())
	})

	t.Run("concurrent duplicates do not both run", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int32
		entered := make(chan struct{})
		release := make(chan struct{})
		h, err := NewWebhookHandler(webhookTestSecret, func(ctx context.Context, ev WebhookEvent) error {
			calls.Add(1)
			close(entered)
			<-release
			return nil
		})
		require.NoError(t, err)
		first := make(chan int)
		go func() { first <- webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret)).Code }()
		<-entered
		// The twin arrives while the first is still in the callback.
		assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret)).Code)
		close(release)
		assert.Equal(t, 200, <-first)
		assert.Equal(t, int32(1), calls.Load())
	})

	t.Run("off", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		h, err := NewWebhookHandler(webhookTestSecret, rec.callback(nil), WithWebhookDedupe(nil))
		require.NoError(t, err)
		for i := 0; i < 2; i++ {
			assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret)).Code)
		}
		assert.Equal(t, 2, rec.calls())
	})

	t.Run("store failure fails open and is reported", func(t *testing.T) {
		t.Parallel()
		rec := &webhookRecorder{}
		store := &webhookBrokenStore{}
		h, err := NewWebhookHandler(webhookTestSecret, rec.callback(nil),
			WithWebhookDedupe(store), WithWebhookErrorHandler(rec.onError))
		require.NoError(t, err)
		assert.Equal(t, 200, webhookServe(h, webhookRequest(t, http.MethodPost, body, webhookTestSecret)).Code)
		assert.Equal(t, 1, rec.calls(), "callback still runs")
		errs := rec.errors()
		require.Len(t, errs, 2, "reserve and complete failures")
		for _, e := range errs {
			assert.ErrorIs(t, e, ErrWebhookDedupe)
			assert.ErrorIs(t, e, errWebhookStoreDown)
		}
		// The exact key only: the store is down, so the id key is not tried.
		key := "message:0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a:" + webhookTestBodyHash(body)
		assert.Equal(t, []string{"reserve " + key, "complete " + key}, store.ops)
	})
}

var errWebhookStoreDown = errors.New("store down")

func webhookTestKeys(ev WebhookEvent, body []byte) []string {
	key, idKey := webhookDedupeKeys(ev, body)
	return []string{key, idKey}
}

// webhookTestBodyHash is the body part of a message hook's dedupe key.
func webhookTestBodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:16])
}

type webhookBrokenStore struct {
	mu  sync.Mutex
	ops []string
}

func (s *webhookBrokenStore) log(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, op)
}

func (s *webhookBrokenStore) Reserve(_ context.Context, key string) (bool, error) {
	s.log("reserve " + key)
	return false, errWebhookStoreDown
}

func (s *webhookBrokenStore) Complete(_ context.Context, key string) error {
	s.log("complete " + key)
	return errWebhookStoreDown
}

func (s *webhookBrokenStore) Release(_ context.Context, key string) error {
	s.log("release " + key)
	return errWebhookStoreDown
}

func TestWebhookHandler_SecretRotation(t *testing.T) {
	t.Parallel()
	body := testkit.Fixture(t, "webhooks", "reaction_react.json")

	rec := &webhookRecorder{}
	strictH, err := NewWebhookHandler(webhookTestSecret, rec.callback(nil))
	require.NoError(t, err)
	assert.Equal(t, 401, webhookServe(strictH, webhookRequest(t, http.MethodPost, body, webhookOldSecret)).Code,
		"old secret rejected when not configured")
	assert.Equal(t, 0, rec.calls())

	rotating, err := NewWebhookHandler(webhookTestSecret, rec.callback(nil), WithWebhookSecrets(webhookOldSecret), WithWebhookDedupe(nil))
	require.NoError(t, err)
	assert.Equal(t, 200, webhookServe(rotating, webhookRequest(t, http.MethodPost, body, webhookOldSecret)).Code, "old secret")
	assert.Equal(t, 200, webhookServe(rotating, webhookRequest(t, http.MethodPost, body, webhookTestSecret)).Code, "new secret")
	assert.Equal(t, 401, webhookServe(rotating, webhookRequest(t, http.MethodPost, body, "0123456789abcdef0123456789abcdef01234567")).Code, "third secret")
	assert.Equal(t, 2, rec.calls())
}

func TestMemoryDedupe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := NewMemoryDedupe(2)

	ok, err := d.Reserve(ctx, "a")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, _ = d.Reserve(ctx, "a")
	assert.False(t, ok, "reserved")
	require.NoError(t, d.Release(ctx, "a"))
	ok, _ = d.Reserve(ctx, "a")
	assert.True(t, ok, "released keys can be reserved again")
	require.NoError(t, d.Complete(ctx, "a"))
	ok, _ = d.Reserve(ctx, "a")
	assert.False(t, ok, "completed")

	// Capacity 2: "a" is evicted first when "c" arrives.
	ok, _ = d.Reserve(ctx, "b")
	assert.True(t, ok)
	ok, _ = d.Reserve(ctx, "c")
	assert.True(t, ok)
	assert.Equal(t, 2, d.Len())
	ok, _ = d.Reserve(ctx, "a")
	assert.True(t, ok, "oldest key evicted")
	ok, _ = d.Reserve(ctx, "c")
	assert.False(t, ok)

	// Complete of an evicted key records it.
	require.NoError(t, d.Complete(ctx, "z"))
	ok, _ = d.Reserve(ctx, "z")
	assert.False(t, ok)
	assert.Equal(t, 2, d.Len())
	require.NoError(t, d.Release(ctx, "missing"))

	assert.Equal(t, WebhookDefaultDedupeCapacity, NewMemoryDedupe(0).cap)
}

func TestMemoryDedupe_Concurrent(t *testing.T) {
	t.Parallel()
	d := NewMemoryDedupe(100)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := d.Reserve(context.Background(), "k"); ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), wins.Load())
}

func BenchmarkParseWebhookBody(b *testing.B) {
	body := testkit.Fixture(b, "webhooks", "message_template.json")
	sig := SignWebhookBody(body, webhookTestSecret)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseWebhookBody(body, sig, webhookTestSecret); err != nil {
			b.Fatal(err)
		}
	}
}

// file_size arrives as a number or a string (spec §10.1); both decode
// wherever a message is decoded, and nothing else does.
func TestJSONSizeNumberOrString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		`48213`: 48213, `"48213"`: 48213, `" 48213 "`: 48213, `""`: 0, `0`: 0, `"0"`: 0,
		`1024.0`: 1024, `1.024e3`: 1024, `"1.5e3"`: 1500, `-1`: -1, `9223372036854775807`: 9223372036854775807,
	} {
		var n jsonSize
		require.NoError(t, json.Unmarshal([]byte(in), &n), in)
		assert.Equal(t, want, int64(n), in)
	}
	n := jsonSize(7)
	require.NoError(t, json.Unmarshal([]byte(`null`), &n))
	assert.Equal(t, jsonSize(7), n, "null leaves the value")
	for _, in := range []string{`"12 KB"`, `1.5`, `"1.5"`, `true`, `{}`, `[1]`, `1e30`, `"0x10"`} {
		var n jsonSize
		err := json.Unmarshal([]byte(in), &n)
		var te *json.UnmarshalTypeError
		assert.ErrorAs(t, err, &te, in)
	}

	// Every public type that carries a size, decoded directly.
	var cm ChatMessage
	require.NoError(t, json.Unmarshal([]byte(`{"id":"m","type":"file","file_name":"a.pdf","file_size":"77"}`), &cm))
	assert.Equal(t, ChatMessage{ID: "m", Type: MessageTypeFile, FileName: "a.pdf", FileSize: 77}, cm)
	var em WebhookEmbeddedMessage
	require.NoError(t, json.Unmarshal([]byte(`{"id":"q","file_size":"78","sender":{"id":"u"}}`), &em))
	assert.Equal(t, WebhookEmbeddedMessage{ID: "q", FileSize: 78, Sender: ChatUser{ID: "u"}}, em)
	var hm HistoryMessage
	require.NoError(t, json.Unmarshal([]byte(`{"timestamp":1,"message":{"id":"h","file_size":"79"}}`), &hm))
	assert.Equal(t, int64(79), hm.Message.FileSize)
	var me MessageEvent
	require.NoError(t, json.Unmarshal([]byte(`{"account_id":"a","time":1,"message":{"conversation":{"id":"c"},"message":{"id":"w","file_size":"80"}}}`), &me))
	assert.Equal(t, int64(80), me.Message.FileSize)
	out, err := json.Marshal(&me)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"file_size":80`, "sizes encode as numbers")
}

// reply_to decodes in both forms also when a ChatMessage or
// WebhookReplyTo is decoded directly; the nested form wins when both are
// there.
func TestReplyToNestedOrFlat(t *testing.T) {
	t.Parallel()
	want := &WebhookReplyTo{Message: WebhookEmbeddedMessage{ID: "q1", MsgID: "my-1", Type: MessageTypeText, Text: "Hi", FileSize: 5, Sender: ChatUser{ID: "u"}}}
	for name, body := range map[string]string{
		"nested": `{"id":"m","reply_to":{"message":{"id":"q1","msgid":"my-1","type":"text","text":"Hi","file_size":5,"sender":{"id":"u"}}}}`,
		"flat":   `{"id":"m","reply_to":{"id":"q1","msgid":"my-1","type":"text","text":"Hi","file_size":"5","sender":{"id":"u"}}}`,
		"both":   `{"id":"m","reply_to":{"id":"other","message":{"id":"q1","msgid":"my-1","type":"text","text":"Hi","file_size":5,"sender":{"id":"u"}}}}`,
	} {
		var m ChatMessage
		require.NoError(t, json.Unmarshal([]byte(body), &m), name)
		assert.Equal(t, want, m.ReplyTo, name)
		var r WebhookReplyTo
		var top map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(body), &top))
		require.NoError(t, json.Unmarshal(top["reply_to"], &r), name)
		assert.Equal(t, *want, r, name)
	}
	var m ChatMessage
	require.NoError(t, json.Unmarshal([]byte(`{"id":"m","reply_to":null}`), &m))
	assert.Nil(t, m.ReplyTo)
	out, err := json.Marshal(&ChatMessage{ID: "m", ReplyTo: want})
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"m","type":"","text":"","reply_to":{"message":{"id":"q1","msgid":"my-1","type":"text","text":"Hi","file_size":5,"sender":{"id":"u"}}}}`, string(out))
}
