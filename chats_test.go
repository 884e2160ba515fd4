package kommo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/chatsign"
	"github.com/kommo-go/kommo/internal/testkit"
)

// Identifiers of the documented signature vectors (spec §8.1).
const (
	chatTestChannel = "344a5002-f8ca-454d-af3d-396180102ac7"
	chatTestSecret  = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"
	chatTestAccount = "52e591f7-c98f-4255-8495-827210138c81"
	chatTestScope   = chatTestChannel + "_" + chatTestAccount
)

// chatRequest is one request the harness received.
type chatRequest struct {
	Method string
	Path   string // escaped path below the Chat API base path, no query
	// EscapedPath is the escaped path as sent, base path included: what
	// X-Signature covers.
	EscapedPath string
	Query       string
	Header      http.Header
	Body        []byte
}

// chatServer is the harness (harness_test.go) serving the Chat API, every
// request answered by reply.
type chatServer struct {
	t     *testing.T
	h     *kommo.ExternalHarness
	mu    sync.Mutex
	n     int
	reply func(n int, r chatRequest) *http.Response
}

func newChatRequest(r kommo.HarnessRequest, basePath string) chatRequest {
	return chatRequest{
		Method: r.Method, Path: strings.TrimPrefix(r.EscapedPath, basePath), EscapedPath: r.EscapedPath,
		Query: r.RawQuery, Header: r.Header, Body: r.Body,
	}
}

func (s *chatServer) requests() []chatRequest {
	var out []chatRequest
	for _, r := range s.h.Requests() {
		out = append(out, newChatRequest(r, s.h.ChatPath))
	}
	return out
}

// only returns the single request that was made.
func (s *chatServer) only() chatRequest {
	s.t.Helper()
	reqs := s.requests()
	require.Len(s.t, reqs, 1)
	return reqs[0]
}

// serve answers a Chat API request with s.reply.
func (s *chatServer) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		s.t.Errorf("read body: %v", err)
	}
	escaped := s.h.ChatPath + req.URL.EscapedPath()
	r := newChatRequest(kommo.HarnessRequest{Method: req.Method, EscapedPath: escaped, RawQuery: req.URL.RawQuery, Header: req.Header.Clone(), Body: body}, s.h.ChatPath)
	s.mu.Lock()
	n := s.n
	s.n++
	s.mu.Unlock()
	resp := s.reply(n, r)
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

type chatClientConfig struct {
	channel, secret string
	now             time.Time
	opts            []kommo.Option
	// underBasePath serves the Chat API under the harness base path; the
	// zero value serves it at the root, where the documented signature
	// vectors (which sign the path) reproduce.
	underBasePath bool
}

// newChatTestClient returns a client signing with the vector secret at the
// given time, talking to a harness that serves the Chat API under its base
// path and answers with reply.
func newChatTestClient(t *testing.T, now time.Time, reply func(n int, r chatRequest) *http.Response, opts ...kommo.Option) (*kommo.Client, *chatServer) {
	return newChatTestClientWith(t, chatClientConfig{channel: chatTestChannel, secret: chatTestSecret, now: now, opts: opts, underBasePath: true}, reply)
}

// newChatVectorClient returns a client that reproduces the documented
// vector v: its secret and Date, the Chat API at the server root.
func newChatVectorClient(t *testing.T, v testkit.RequestVector, reply func(n int, r chatRequest) *http.Response) (*kommo.Client, *chatServer) {
	return newChatTestClientWith(t, chatClientConfig{channel: chatTestChannel, secret: v.Secret, now: chatVectorTime(t, v)}, reply)
}

func newChatTestClientWith(t *testing.T, cfg chatClientConfig, reply func(n int, r chatRequest) *http.Response) (*kommo.Client, *chatServer) {
	t.Helper()
	opts := append([]kommo.Option{
		kommo.WithChannel(cfg.channel, cfg.secret),
		kommo.WithClock(testkit.NewClock(cfg.now)),
	}, cfg.opts...)
	srv := &chatServer{t: t, reply: reply}
	srv.h = kommo.NewExternalHarness(t, !cfg.underBasePath, opts...)
	srv.h.Mux.HandleFunc("/v2/", srv.serve)
	return srv.h.Client, srv
}

// chatReply answers every request with status and body.
func chatReply(status int, body string) func(int, chatRequest) *http.Response {
	return func(int, chatRequest) *http.Response {
		resp := httpmock.NewStringResponse(status, body)
		resp.Header.Set("Content-Type", "application/json")
		return resp
	}
}

// chatHeader reads a header whatever the case of its key in the map.
func chatHeader(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// chatAssertSigned checks the request's Chat API headers by recomputing
// them from its body, Date and path as sent (base path included, never
// the query) with secret.
func chatAssertSigned(t *testing.T, r chatRequest, secret string) {
	t.Helper()
	ct := chatHeader(r.Header, "Content-Type")
	assert.Equal(t, "application/json", ct)
	md5 := chatHeader(r.Header, "Content-MD5")
	assert.Equal(t, chatsign.ContentMD5(r.Body), md5, "Content-MD5")
	date := chatHeader(r.Header, "Date")
	_, err := time.Parse(chatsign.DateFormat, date)
	assert.NoError(t, err, "Date %q", date)
	want := chatsign.NewKey(secret).Signature(r.Method, md5, ct, date, r.EscapedPath)
	assert.Equal(t, want, chatHeader(r.Header, "X-Signature"), "X-Signature")
}

// chatVectorTime parses a vector's Date.
func chatVectorTime(t *testing.T, v testkit.RequestVector) time.Time {
	t.Helper()
	tm, err := time.Parse(chatsign.DateFormat, v.Date)
	require.NoError(t, err)
	return tm
}

// chatAssertVector checks that a request reproduces a documented vector
// exactly: method, path, body bytes, Date, Content-MD5 and X-Signature.
func chatAssertVector(t *testing.T, v testkit.RequestVector, r chatRequest) {
	t.Helper()
	assert.Equal(t, v.Method, r.Method)
	assert.Equal(t, v.Path, r.Path)
	assert.Equal(t, v.Body, string(r.Body))
	assert.Equal(t, v.Date, chatHeader(r.Header, "Date"))
	assert.Equal(t, v.ContentMD5, chatHeader(r.Header, "Content-MD5"))
	assert.Equal(t, v.Signature, chatHeader(r.Header, "X-Signature"))
}

// chatPHPEscape escapes "/" and non-ASCII characters the way PHP's
// json_encode does, so a Go body can be compared byte for byte (key order
// included) with a documented PHP body.
func chatPHPEscape(b []byte) string {
	var sb strings.Builder
	for _, r := range string(b) {
		switch {
		case r == '/':
			sb.WriteString(`\/`)
		case r > 0xffff:
			r -= 0x10000
			fmt.Fprintf(&sb, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		case r > 0x7f:
			fmt.Fprintf(&sb, `\u%04x`, r)
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// chatJSONField returns the JSON of the value at a dotted path of body.
func chatJSONField(t *testing.T, body []byte, path string) string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(body, &v))
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		require.True(t, ok, "%s: not an object at %q", path, k)
		v, ok = m[k]
		require.True(t, ok, "%s: no key %q", path, k)
	}
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return string(out)
}

// chatValidationProblems returns the problems of a *ValidationError.
func chatValidationProblems(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, kommo.ErrInvalidRequest)
	var ve *kommo.ValidationError
	require.ErrorAs(t, err, &ve)
	return ve.Problems
}

var chatNow = time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)

func TestChannelsConnectAllFields(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "connect.json"))))
	_, _, err := c.Channels.Connect(t.Context(), &kommo.ConnectRequest{
		AccountID: "af9945ff-1490-4cad-807d-945c15d88bec", Title: "ChatIntegration",
		HookAPIVersion: "v1", IsTimeWindowDisabled: true,
	})
	require.NoError(t, err)
	r := srv.only()
	assert.Equal(t, "POST", r.Method)
	assert.Equal(t, "/v2/origin/custom/"+chatTestChannel+"/connect", r.Path)
	assert.JSONEq(t, `{"account_id":"af9945ff-1490-4cad-807d-945c15d88bec","title":"ChatIntegration","hook_api_version":"v1","is_time_window_disabled":true}`, string(r.Body))
	chatAssertSigned(t, r, chatTestSecret)
}

// chatCreateVectorRequest is the create-chat vector's request.
func chatCreateVectorRequest() *kommo.CreateChatRequest {
	return &kommo.CreateChatRequest{
		ConversationID: "my_int-8e3e7640-49af-4448-a2c6-d5a421f7f217",
		Source:         &kommo.ChatSource{ExternalID: "78001234567"},
		User: kommo.Participant{
			ID:          "my_int-1376265f-86df-4c49-a0c3-a4816df41af9",
			Avatar:      "https://example.com/users/avatar.png",
			Name:        "Имя клиента",
			Profile:     &kommo.ParticipantProfile{Phone: "+79151112233", Email: "example.client@example.com"},
			ProfileLink: "https://example.com/profile/example.client",
		},
	}
}

func TestChatsCreateVectorBody(t *testing.T) {
	v := testkit.Vectors(t).Request(t, "create")
	c, srv := newChatTestClient(t, chatVectorTime(t, v), chatReply(200, string(testkit.Fixture(t, "chat", "chat_create_profile.json"))))
	chat, _, err := c.Chats.Create(t.Context(), chatTestScope, chatCreateVectorRequest())
	require.NoError(t, err)

	r := srv.only()
	assert.Equal(t, v.Method, r.Method)
	assert.Equal(t, v.Path, r.Path)
	assert.JSONEq(t, v.Body, string(r.Body))
	// Same keys in the same order: only PHP's escaping differs.
	assert.Equal(t, v.Body, chatPHPEscape(r.Body))
	chatAssertSigned(t, r, chatTestSecret)

	// The step-by-step response nests phone and email under "profile".
	assert.Equal(t, &kommo.Chat{
		ID: "31d43a78-e09d-46ae-8994-7e93560169b8",
		User: &kommo.ChatUser{
			ID: "7c7330cd-c0ee-45a5-bd62-643a3a8225e8", ClientID: "my_int-1376265f-86df-4c49-a0c3-a4816df41af9",
			Name: "Имя клиента", Avatar: "https://example.com/users/avatar.png",
			Phone: "79151112233", Email: "example.client@example.com",
		},
	}, chat)
}

func TestChatsCreateFlatResponseAndMinimalBody(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "chat_create_flat.json"))))
	chat, _, err := c.Chats.Create(t.Context(), chatTestScope, &kommo.CreateChatRequest{
		ConversationID: "skc-8e3e7640", User: kommo.Participant{ID: "sk-1376265f", Name: "Example Client"},
	})
	require.NoError(t, err)
	r := srv.only()
	assert.Equal(t, "POST", r.Method)
	assert.Equal(t, "/v2/origin/custom/"+chatTestScope+"/chats", r.Path)
	assert.JSONEq(t, `{"conversation_id":"skc-8e3e7640","user":{"id":"sk-1376265f","name":"Example Client"}}`, string(r.Body))
	chatAssertSigned(t, r, chatTestSecret)

	assert.Equal(t, &kommo.Chat{
		ID: "6cbab3d5-c4c1-46ff-b710-ad59ad10805f",
		User: &kommo.ChatUser{
			ID: "86a0caef-41ec-49ac-814b-b27da2cea267", ClientID: "sk-1376265f-86df-4c49-a0c3-a4816df41af9",
			Name: "Example Client", Avatar: "https:/example.com/users/avatar.png",
			Phone: "79151112233", Email: "example.client@example.com",
		},
	}, chat)
}

// Kommo's changelog removed user[ref_id] from create chat: a participant
// built for messages, with a RefID, is sent without it.
func TestChatsCreateDoesNotSendRefID(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "chat_create_flat.json"))))
	req := &kommo.CreateChatRequest{
		ConversationID: "skc-8e3e7640", Source: &kommo.ChatSource{ExternalID: "78001234567"},
		User: kommo.Participant{ID: "sk-1376265f", RefID: "2ed64e26-7c3b-4a52-9d7e-0f4b8f3e4d11", Name: "Example Client",
			Avatar: "https://example.com/a.png", Profile: &kommo.ParticipantProfile{Phone: "+79151112233"}, ProfileLink: "https://example.com/p"},
	}
	_, _, err := c.Chats.Create(t.Context(), chatTestScope, req)
	require.NoError(t, err)
	r := srv.only()
	assert.Equal(t, "POST", r.Method)
	assert.Equal(t, "/v2/origin/custom/"+chatTestScope+"/chats", r.Path)
	assert.Equal(t, `{"conversation_id":"skc-8e3e7640","source":{"external_id":"78001234567"},`+
		`"user":{"id":"sk-1376265f","avatar":"https://example.com/a.png","name":"Example Client","profile":{"phone":"+79151112233"},"profile_link":"https://example.com/p"}}`,
		string(r.Body))
	chatAssertSigned(t, r, chatTestSecret)
	assert.Equal(t, "2ed64e26-7c3b-4a52-9d7e-0f4b8f3e4d11", req.User.RefID, "the caller's request is not modified")

	// Messages still send it.
	_, _, err = c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
		MsgID: "m-1", ConversationID: "skc-8e3e7640", Sender: &req.User, Message: kommo.TextMessage("Hi")})
	require.NoError(t, err)
	assert.Contains(t, string(srv.requests()[1].Body), `"sender":{"id":"sk-1376265f","ref_id":"2ed64e26-7c3b-4a52-9d7e-0f4b8f3e4d11",`)
}

// chatVectorSender is the client of the new_message vectors.
func chatVectorSender() *kommo.Participant {
	return &kommo.Participant{
		ID:          "my_int-1376265f-86df-4c49-a0c3-a4816df41af8",
		Avatar:      "https://images.pexels.com/photos/10050979/pexels-photo-10050979.jpeg?auto=compress&cs=tinysrgb&dpr=2&w=500",
		Profile:     &kommo.ParticipantProfile{Phone: "+79151112233", Email: "example.client@example.com"},
		ProfileLink: "https://example.com/profile/example.client",
		Name:        "Вася клиент",
	}
}

func TestMessagesSendVectorBodies(t *testing.T) {
	for _, tc := range []struct {
		vector string
		msec   int64
		source *kommo.ChatSource
	}{
		{"new_message", 1639660529379, nil},
		{"new_message_with_source", 1639738768457, &kommo.ChatSource{ExternalID: "79039876543"}},
	} {
		t.Run(tc.vector, func(t *testing.T) {
			v := testkit.Vectors(t).Request(t, tc.vector)
			c, srv := newChatTestClient(t, chatVectorTime(t, v), chatReply(200, string(testkit.Fixture(t, "chat", "send_response_short.json"))))
			sent, _, err := c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
				Time:           time.UnixMilli(tc.msec),
				MsgID:          "my_int-5f2836a8ca481",
				ConversationID: "my_int-d5a421f7f218",
				Sender:         chatVectorSender(),
				Message:        kommo.TextMessage("Сообщение от клиента"),
				Source:         tc.source,
			})
			require.NoError(t, err)
			r := srv.only()
			assert.Equal(t, v.Method, r.Method)
			assert.Equal(t, v.Path, r.Path)
			assert.JSONEq(t, v.Body, string(r.Body))
			chatAssertSigned(t, r, chatTestSecret)
			assert.Equal(t, `false`, chatJSONField(t, r.Body, "payload.silent"), "silent is sent explicitly")

			// The two-field response of the step-by-step guide.
			assert.Equal(t, &kommo.SentMessage{ID: "8e6afe4e-a08a-4801-b6cb-37963c1a6f3c", MsgID: "my_int-5f2836a8ca481"}, sent)
		})
	}
}

func TestMessagesSendDirections(t *testing.T) {
	client := &kommo.Participant{
		ID: "my_int-1376265f-86df-4c49-a0c3-a4816df41af8", Avatar: "https://example.com/users/avatar.png", Name: "Вася клиент",
		Profile:     &kommo.ParticipantProfile{Phone: "+79151112233", Email: "example.client@example.com"},
		ProfileLink: "https://example.com/profile/example.client",
	}
	for _, tc := range []struct {
		name string
		req  *kommo.SendMessageRequest
		want string // the reference's example bodies
	}{
		{
			name: "incoming from the client",
			req: &kommo.SendMessageRequest{
				Time: time.UnixMilli(1639604761694), MsgID: "my_int-5f2836a8ca475", ConversationID: "my_int-d5a421f7f217",
				Sender: client, Message: kommo.TextMessage("Сообщение от клиента"),
			},
			want: `{"event_type":"new_message","payload":{"timestamp":1639604761,"msec_timestamp":1639604761694,"msgid":"my_int-5f2836a8ca475","conversation_id":"my_int-d5a421f7f217",
				"sender":{"id":"my_int-1376265f-86df-4c49-a0c3-a4816df41af8","avatar":"https://example.com/users/avatar.png","profile":{"phone":"+79151112233","email":"example.client@example.com"},"profile_link":"https://example.com/profile/example.client","name":"Вася клиент"},
				"message":{"type":"text","text":"Сообщение от клиента"},"silent":false}}`,
		},
		{
			name: "outgoing by a CRM user",
			req: &kommo.SendMessageRequest{
				Time: time.UnixMilli(1639604903161), MsgID: "my_int-5f2836a8ca476", ConversationID: "my_int-d5a421f7f217",
				Sender:   &kommo.Participant{ID: "my_int-manager1_user_id", Name: "Имя менеджера", RefID: "76fc2bea-902f-425c-9a3d-dcdac4766090"},
				Receiver: client,
				Message:  kommo.TextMessage("Сообщение от менеджера 76fc2bea-902f-425c-9a3d-dcdac4766090"),
				Silent:   true,
			},
			want: `{"event_type":"new_message","payload":{"timestamp":1639604903,"msec_timestamp":1639604903161,"msgid":"my_int-5f2836a8ca476","conversation_id":"my_int-d5a421f7f217",
				"sender":{"id":"my_int-manager1_user_id","name":"Имя менеджера","ref_id":"76fc2bea-902f-425c-9a3d-dcdac4766090"},
				"receiver":{"id":"my_int-1376265f-86df-4c49-a0c3-a4816df41af8","avatar":"https://example.com/users/avatar.png","name":"Вася клиент","profile":{"phone":"+79151112233","email":"example.client@example.com"},"profile_link":"https://example.com/profile/example.client"},
				"message":{"type":"text","text":"Сообщение от менеджера 76fc2bea-902f-425c-9a3d-dcdac4766090"},"silent":true}}`,
		},
		{
			name: "outgoing by the channel bot (history import)",
			req: &kommo.SendMessageRequest{
				Time: time.UnixMilli(1639605194102), MsgID: "my_int-5f2836a8ca477", ConversationID: "my_int-d5a421f7f217",
				Sender:   &kommo.Participant{ID: "my_int-bot_user_id", Name: "Bot", RefID: "f1910c7f-b1e0-4184-bd09-c7def2a9109a"},
				Receiver: client,
				Message:  kommo.TextMessage("Сообщение от бота канала f1910c7f-b1e0-4184-bd09-c7def2a9109a"),
				Silent:   true,
			},
			want: `{"event_type":"new_message","payload":{"timestamp":1639605194,"msec_timestamp":1639605194102,"msgid":"my_int-5f2836a8ca477","conversation_id":"my_int-d5a421f7f217",
				"sender":{"id":"my_int-bot_user_id","name":"Bot","ref_id":"f1910c7f-b1e0-4184-bd09-c7def2a9109a"},
				"receiver":{"id":"my_int-1376265f-86df-4c49-a0c3-a4816df41af8","avatar":"https://example.com/users/avatar.png","name":"Вася клиент","profile":{"phone":"+79151112233","email":"example.client@example.com"},"profile_link":"https://example.com/profile/example.client"},
				"message":{"type":"text","text":"Сообщение от бота канала f1910c7f-b1e0-4184-bd09-c7def2a9109a"},"silent":true}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "send_response.json"))))
			sent, _, err := c.Messages.Send(t.Context(), chatTestScope, tc.req)
			require.NoError(t, err)
			r := srv.only()
			assert.Equal(t, "POST", r.Method)
			assert.Equal(t, "/v2/origin/custom/"+chatTestScope, r.Path)
			assert.Empty(t, r.Query)
			assert.JSONEq(t, tc.want, string(r.Body))
			chatAssertSigned(t, r, chatTestSecret)
			assert.Equal(t, &kommo.SentMessage{
				ConversationID: "my_int-d5a421f7f217",
				SenderID:       "my_int-1376265f-86df-4c49-a0c3-a4816df41af8",
				ReceiverID:     "123e4567-e89b-12d3-a456-426614174000",
				ID:             "8f1176d7-c357-42b0-b944-a15d537a27d3",
				MsgID:          "my_int-5f2836a8ca468",
			}, sent)
		})
	}
}

func TestMessagesSendNullReceiver(t *testing.T) {
	c, _ := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "send_response_null_receiver.json"))))
	sent, _, err := c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
		ConversationID: "my_int-d5a421f7f218", MsgID: "my_int-5f2836a8ca481",
		Sender: &kommo.Participant{ID: "u", Name: "n"}, Message: kommo.TextMessage("hi"),
	})
	require.NoError(t, err)
	assert.Equal(t, &kommo.SentMessage{
		ConversationID: "my_int-d5a421f7f218",
		SenderID:       "my_int-1376265f-86df-4c49-a0c3-a4816df41af8",
		ID:             "7779c89e-bb5b-4da0-b802-5de2ab7d4114",
		MsgID:          "my_int-5f2836a8ca481",
	}, sent)
}

func TestMessagesSendEveryType(t *testing.T) {
	voice := kommo.VoiceMessage("https://example.com/v.ogg")
	voice.MediaDuration = 12
	video := kommo.VideoMessage("https://example.com/v.mp4", "v.mp4", 2048)
	video.MediaDuration = 30
	video.Text = "caption"
	sticker := &kommo.MessageContent{Type: kommo.MessageTypeSticker, StickerID: "sticker-42"}
	list := kommo.TextMessage("Option 2")
	list.CallbackData = "row-2"
	shared := kommo.TextMessage("look")
	shared.SharedPost = &kommo.SharedPost{URL: "https://example.com/p/1", PreviewLink: "https://example.com/tmp.png", PreviewPermalink: "https://example.com/perm.png", SiteName: "Example"}
	comment := kommo.TextMessage("Сообщение от клиента")
	comment.Post = &kommo.Post{
		ID: "my-int-376265", URL: "https://www.example.com/@example/video/7490", PreviewURL: "https://example/1/preview.png",
		PreviewPermalink: "https://example/2/preview.png", Username: "post creator", Caption: "описание поста",
	}
	for _, tc := range []struct {
		name string
		msg  *kommo.MessageContent
		want string
	}{
		{"text", kommo.TextMessage("Hi"), `{"type":"text","text":"Hi"}`},
		{"picture", kommo.PictureMessage("https://example.com/p.png", "p.png", 1024), `{"type":"picture","media":"https://example.com/p.png","file_name":"p.png","file_size":1024}`},
		{"video", video, `{"type":"video","text":"caption","media":"https://example.com/v.mp4","file_name":"v.mp4","file_size":2048,"media_duration":30}`},
		{"file", kommo.FileMessage("https://example.com/f.pdf", "f.pdf", 77), `{"type":"file","media":"https://example.com/f.pdf","file_name":"f.pdf","file_size":77}`},
		{"voice", voice, `{"type":"voice","media":"https://example.com/v.ogg","media_duration":12}`},
		{"audio", kommo.AudioMessage("https://example.com/a.mp3"), `{"type":"audio","media":"https://example.com/a.mp3"}`},
		{"sticker by url", kommo.StickerMessage("https://example.com/s.webp"), `{"type":"sticker","media":"https://example.com/s.webp"}`},
		{"sticker by id", sticker, `{"type":"sticker","sticker_id":"sticker-42"}`},
		{"location", kommo.LocationMessage(kommo.Location{Lon: 37.6176, Lat: 55.7558}), `{"type":"location","location":{"lon":37.6176,"lat":55.7558}}`},
		{"contact", kommo.ContactMessage("Иван", "+79161234567"), `{"type":"contact","contact":{"name":"Иван","phone":"+79161234567"}}`},
		{"list message answer", list, `{"type":"text","text":"Option 2","callback_data":"row-2"}`},
		{"shared post (type defaults to post)", shared, `{"type":"text","text":"look","shared_post":{"url":"https://example.com/p/1","preview_link":"https://example.com/tmp.png","preview_permalink":"https://example.com/perm.png","type":"post","site_name":"Example"}}`},
		{"comment on a post", comment, `{"type":"text","text":"Сообщение от клиента","post":{"id":"my-int-376265","url":"https://www.example.com/@example/video/7490","preview_url":"https://example/1/preview.png","preview_permalink":"https://example/2/preview.png","username":"post creator","caption":"описание поста"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "send_response.json"))))
			_, _, err := c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
				ConversationID: "chat-1", MsgID: "m-1", Sender: &kommo.Participant{ID: "u-1", Name: "Client"}, Message: tc.msg,
			})
			require.NoError(t, err)
			r := srv.only()
			assert.JSONEq(t, tc.want, chatJSONField(t, r.Body, "payload.message"))
			chatAssertSigned(t, r, chatTestSecret)
		})
	}
	assert.Empty(t, shared.SharedPost.Type, "the caller's shared post is not modified")
}

// TestMessagesSendMediaBodies: file, picture and video messages need no
// file name or size ([K-REF] marks them optional); their media must be an
// absolute http(s) URL. Media constructors take a caption through
// WithCaption; on the wire it is message.text.
func TestMessagesSendMediaBodies(t *testing.T) {
	picture := kommo.PictureMessage("https://example.com/p.png", "p.png", 1024)
	for _, tc := range []struct {
		name string
		msg  *kommo.MessageContent
		want string
	}{
		{"without name or size/file", kommo.FileMessage("https://example.com/terms.pdf", "", 0), `{"type":"file","media":"https://example.com/terms.pdf"}`},
		{"without name or size/picture", kommo.PictureMessage("https://example.com/p.png", "p.png", 0), `{"type":"picture","media":"https://example.com/p.png","file_name":"p.png"}`},
		{"without name or size/video", kommo.VideoMessage("HTTP://example.com/v.mp4", "", 2048), `{"type":"video","media":"HTTP://example.com/v.mp4","file_size":2048}`},

		{"with caption/picture", picture.WithCaption("Our new catalogue"), `{"type":"picture","text":"Our new catalogue","media":"https://example.com/p.png","file_name":"p.png","file_size":1024}`},
		{"with caption/video", kommo.VideoMessage("https://example.com/v.mp4", "", 0).WithCaption("Unboxing"), `{"type":"video","text":"Unboxing","media":"https://example.com/v.mp4"}`},
		{"with caption/file", kommo.FileMessage("https://example.com/f.pdf", "f.pdf", 77).WithCaption("Invoice №1"), `{"type":"file","text":"Invoice №1","media":"https://example.com/f.pdf","file_name":"f.pdf","file_size":77}`},
		{"with caption/voice", kommo.VoiceMessage("https://example.com/v.ogg").WithCaption("voice"), `{"type":"voice","text":"voice","media":"https://example.com/v.ogg"}`},
		{"with caption/audio", kommo.AudioMessage("https://example.com/a.mp3").WithCaption("song"), `{"type":"audio","text":"song","media":"https://example.com/a.mp3"}`},
		{"with caption/sticker", kommo.StickerMessage("https://example.com/s.webp").WithCaption("<3 & co"), `{"type":"sticker","text":"<3 & co","media":"https://example.com/s.webp"}`},
		{"with caption/picture, empty caption", picture.WithCaption(""), `{"type":"picture","media":"https://example.com/p.png","file_name":"p.png","file_size":1024}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "send_response.json"))))
			_, _, err := c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
				Time: time.UnixMilli(1700000000123), MsgID: "m-1", ConversationID: "chat-1",
				Sender: &kommo.Participant{ID: "u-1", Name: "Client"}, Message: tc.msg,
			})
			require.NoError(t, err)
			r := srv.only()
			assert.Equal(t, "POST", r.Method)
			assert.Equal(t, "/v2/origin/custom/"+chatTestScope, r.Path)
			assert.Equal(t, `{"event_type":"new_message","payload":{"timestamp":1700000000,"msec_timestamp":1700000000123,"msgid":"m-1","conversation_id":"chat-1",`+
				`"sender":{"id":"u-1","name":"Client"},"message":`+tc.want+`,"silent":false}}`, string(r.Body))
			chatAssertSigned(t, r, chatTestSecret)
		})
	}
	assert.Empty(t, picture.Text, "WithCaption returns a copy")
	assert.Nil(t, (*kommo.MessageContent)(nil).WithCaption("x"))
	assert.Equal(t, "new", kommo.TextMessage("old").WithCaption("new").Text)
}

func TestMessagesMediaMustBeAnAbsoluteHTTPURL(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, "{}"))
	const problem = "payload.message.media: must be an absolute http or https URL that Kommo can download"
	for _, media := range []string{"invoice.pdf", "/files/invoice.pdf", "//example.com/a.png", "ftp://example.com/a.pdf",
		"file:///tmp/a.pdf", "https://", "https//example.com/a.png", "http://exa mple.com/a.png", "data:image/png;base64,AAAA"} {
		for _, msg := range []*kommo.MessageContent{
			kommo.FileMessage(media, "a.pdf", 1), kommo.PictureMessage(media, "", 0), kommo.VideoMessage(media, "", 0),
			kommo.VoiceMessage(media), kommo.AudioMessage(media), kommo.StickerMessage(media),
		} {
			_, _, err := c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
				ConversationID: "c", Sender: &kommo.Participant{ID: "u", Name: "n"}, Message: msg,
			})
			assert.Equal(t, []string{problem}, chatValidationProblems(t, err), "%s %q", msg.Type, media)
		}
	}
	// Edit keeps its rules: an unchanged file may leave media out, but a
	// media given must be a URL too.
	_, err := c.Messages.Edit(t.Context(), chatTestScope, &kommo.EditMessageRequest{MsgID: "m", ConversationID: "c",
		Message: &kommo.MessageContent{Type: kommo.MessageTypeFile}})
	require.NoError(t, err)
	_, err = c.Messages.Edit(t.Context(), chatTestScope, &kommo.EditMessageRequest{MsgID: "m", ConversationID: "c",
		Message: &kommo.MessageContent{Type: kommo.MessageTypeFile, Media: "new.pdf"}})
	assert.Equal(t, []string{problem}, chatValidationProblems(t, err))
	assert.Len(t, srv.requests(), 1)
}

func TestMessagesSendReplyForwardsWriteFirst(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "send_response.json"))))
	_, _, err := c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
		Time:              time.UnixMilli(1700000000123),
		MsgID:             "m-2",
		ConversationID:    "chat-new",
		ConversationRefID: "8e4d4baa-9e6c-4a88-838a-5f62be227bdc",
		Sender:            &kommo.Participant{ID: "client-1", RefID: "2ed64e26-70a1-4857-8382-bb066a076219", Name: "Client"},
		Message:           kommo.TextMessage("answer"),
		ReplyTo:           &kommo.ReplyTo{Message: kommo.EmbeddedMessage{MsgID: "m-1"}},
		Forwards: &kommo.Forwards{
			ConversationID: "chat-old",
			Messages: []kommo.EmbeddedMessage{{
				Type: kommo.MessageTypeText, Text: "forwarded", Time: time.UnixMilli(1690000000456),
				Sender: &kommo.EmbeddedUser{Name: "Someone"},
			}},
		},
		Source: &kommo.ChatSource{ExternalID: "79001234567"},
	})
	require.NoError(t, err)
	r := srv.only()
	assert.JSONEq(t, `{"event_type":"new_message","payload":{
		"timestamp":1700000000,"msec_timestamp":1700000000123,"msgid":"m-2",
		"conversation_id":"chat-new","conversation_ref_id":"8e4d4baa-9e6c-4a88-838a-5f62be227bdc",
		"sender":{"id":"client-1","ref_id":"2ed64e26-70a1-4857-8382-bb066a076219","name":"Client"},
		"message":{"type":"text","text":"answer"},
		"reply_to":{"message":{"msgid":"m-1"}},
		"forwards":{"messages":[{"type":"text","text":"forwarded","timestamp":1690000000,"msec_timestamp":1690000000456,"sender":{"name":"Someone"}}],"conversation_id":"chat-old"},
		"source":{"external_id":"79001234567"},
		"silent":false}}`, string(r.Body))
	chatAssertSigned(t, r, chatTestSecret)
}

// An imported message may carry its delivery status (Kommo's changelog
// added it); it is checked and a -1 gets its text as on edit.
func TestMessagesSendImportWithDeliveryStatus(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, string(testkit.Fixture(t, "chat", "send_response.json"))))
	msg := kommo.TextMessage("Sent from the phone")
	msg.DeliveryStatus = &kommo.MessageDeliveryStatus{StatusCode: kommo.DeliveryStatusRead}
	_, _, err := c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
		Time: time.UnixMilli(1700000000123), MsgID: "imp-1", ConversationID: "chat-1", Silent: true,
		Sender:   &kommo.Participant{ID: "manager-1", RefID: "76fc2bea-902f-425c-9a3d-dcdac4766090", Name: "Anna"},
		Receiver: &kommo.Participant{ID: "client-1", Name: "Client"},
		Message:  msg,
	})
	require.NoError(t, err)
	r := srv.only()
	assert.Equal(t, `{"event_type":"new_message","payload":{"timestamp":1700000000,"msec_timestamp":1700000000123,"msgid":"imp-1","conversation_id":"chat-1",`+
		`"sender":{"id":"manager-1","ref_id":"76fc2bea-902f-425c-9a3d-dcdac4766090","name":"Anna"},"receiver":{"id":"client-1","name":"Client"},`+
		`"message":{"type":"text","text":"Sent from the phone","delivery_status":{"status_code":2}},"silent":true}}`, string(r.Body))
	chatAssertSigned(t, r, chatTestSecret)

	failed := kommo.TextMessage("never arrived")
	failed.DeliveryStatus = &kommo.MessageDeliveryStatus{StatusCode: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorConversationDeleted}
	_, _, err = c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
		MsgID: "imp-2", ConversationID: "chat-1", Sender: &kommo.Participant{ID: "client-1", Name: "Client"}, Message: failed,
	})
	require.NoError(t, err)
	assert.Contains(t, string(srv.requests()[1].Body),
		`"message":{"type":"text","text":"never arrived","delivery_status":{"status_code":-1,"error_code":901,"error":"The user deleted the conversation or the message"}}`)
	assert.Empty(t, failed.DeliveryStatus.Error, "the caller's message is not modified")

	bad := kommo.TextMessage("x")
	bad.DeliveryStatus = &kommo.MessageDeliveryStatus{StatusCode: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorOther}
	_, _, err = c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
		ConversationID: "chat-1", Sender: &kommo.Participant{ID: "client-1", Name: "Client"}, Message: bad,
	})
	assert.Equal(t, []string{"payload.message.delivery_status.error: required"}, chatValidationProblems(t, err))
	bad.DeliveryStatus = &kommo.MessageDeliveryStatus{}
	_, _, err = c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
		ConversationID: "chat-1", Sender: &kommo.Participant{ID: "client-1", Name: "Client"}, Message: bad,
	})
	assert.Equal(t, []string{"payload.message.delivery_status.status_code: required"}, chatValidationProblems(t, err))
	assert.Len(t, srv.requests(), 2)
}

func TestMessagesSendFillsTimeAndMsgID(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, `{"new_message":{"msgid":"amojo-1"}}`))
	req := &kommo.SendMessageRequest{ConversationID: "chat-1", Sender: &kommo.Participant{ID: "u-1", Name: "Client"}, Message: kommo.TextMessage("Hi")}
	sent, _, err := c.Messages.Send(t.Context(), chatTestScope, req)
	require.NoError(t, err)
	r := srv.only()

	assert.Equal(t, fmt.Sprint(chatNow.Unix()), chatJSONField(t, r.Body, "payload.timestamp"))
	assert.Equal(t, fmt.Sprint(chatNow.UnixMilli()), chatJSONField(t, r.Body, "payload.msec_timestamp"))
	var msgID string
	require.NoError(t, json.Unmarshal([]byte(chatJSONField(t, r.Body, "payload.msgid")), &msgID))
	assert.Regexp(t, regexp.MustCompile(`^kommo-[0-9a-f]{32}$`), msgID)
	assert.Equal(t, &kommo.SentMessage{ID: "amojo-1", MsgID: msgID}, sent, "the generated id is returned")
	assert.Empty(t, req.MsgID, "the caller's request is not modified")
	assert.True(t, req.Time.IsZero())

	_, _, err = c.Messages.Send(t.Context(), chatTestScope, req)
	require.NoError(t, err)
	second := srv.requests()[1]
	assert.NotEqual(t, chatJSONField(t, r.Body, "payload.msgid"), chatJSONField(t, second.Body, "payload.msgid"), "each call gets a new id")
}

func TestMessagesSendRetryKeepsMsgID(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, func(n int, _ chatRequest) *http.Response {
		if n == 0 {
			return httpmock.NewStringResponse(503, "unavailable")
		}
		return httpmock.NewStringResponse(200, `{"new_message":{"msgid":"amojo-1"}}`)
	}, kommo.WithRetryPolicy(kommo.RetryPolicy{MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	sent, resp, err := c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
		ConversationID: "chat-1", Sender: &kommo.Participant{ID: "u-1", Name: "Client"}, Message: kommo.TextMessage("Hi"),
	})
	require.NoError(t, err)
	assert.Equal(t, 2, resp.Attempts)
	reqs := srv.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, string(reqs[0].Body), string(reqs[1].Body), "the retry sends the same bytes")
	assert.Contains(t, string(reqs[1].Body), `"msgid":"`+sent.MsgID+`"`)
	chatAssertSigned(t, reqs[0], chatTestSecret)
	chatAssertSigned(t, reqs[1], chatTestSecret)
}

func TestMessagesSendValidationPerType(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, "{}"))
	for _, tc := range []struct {
		msg  *kommo.MessageContent
		want []string
	}{
		{&kommo.MessageContent{}, []string{"payload.message.type: required"}},
		{&kommo.MessageContent{Type: "gif"}, []string{`payload.message.type: unknown message type "gif"`}},
		{&kommo.MessageContent{Type: kommo.MessageTypePicture}, []string{"payload.message.media: required for picture messages"}},
		{&kommo.MessageContent{Type: kommo.MessageTypeVideo, FileName: "v.mp4", FileSize: 1}, []string{"payload.message.media: required for video messages"}},
		{&kommo.MessageContent{Type: kommo.MessageTypeFile, Media: "u", FileSize: 1}, []string{"payload.message.media: must be an absolute http or https URL that Kommo can download"}},
		{&kommo.MessageContent{Type: kommo.MessageTypeVoice}, []string{"payload.message.media: required for voice messages"}},
		{&kommo.MessageContent{Type: kommo.MessageTypeAudio}, []string{"payload.message.media: required for audio messages"}},
		{&kommo.MessageContent{Type: kommo.MessageTypeSticker}, []string{"payload.message.media or payload.message.sticker_id: required for sticker messages"}},
		{&kommo.MessageContent{Type: kommo.MessageTypeLocation}, []string{"payload.message.location: required for location messages"}},
		{&kommo.MessageContent{Type: kommo.MessageTypeContact}, []string{"payload.message.contact: required for contact messages"}},
		{&kommo.MessageContent{Type: kommo.MessageTypeContact, Contact: &kommo.ContactCard{}}, []string{"payload.message.contact.name: required", "payload.message.contact.phone: required"}},
	} {
		t.Run(string(tc.msg.Type), func(t *testing.T) {
			_, _, err := c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
				ConversationID: "c", Sender: &kommo.Participant{ID: "u", Name: "n"}, Message: tc.msg,
			})
			assert.Equal(t, tc.want, chatValidationProblems(t, err))
		})
	}
	t.Run("embedded message without id", func(t *testing.T) {
		_, _, err := c.Messages.Send(t.Context(), chatTestScope, &kommo.SendMessageRequest{
			ConversationID: "c", Sender: &kommo.Participant{ID: "u", Name: "n"}, Message: kommo.TextMessage("x"),
			ReplyTo:  &kommo.ReplyTo{Message: kommo.EmbeddedMessage{Type: kommo.MessageTypeLocation, Time: chatNow, Sender: &kommo.EmbeddedUser{RefID: "r"}}},
			Forwards: &kommo.Forwards{},
		})
		assert.Equal(t, []string{
			"payload.reply_to.message.location: required for location messages",
			"payload.forwards.messages: required",
		}, chatValidationProblems(t, err))
	})
	assert.Empty(t, srv.requests())
}

func TestMessagesEdit(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, "{}"))
	resp, err := c.Messages.Edit(t.Context(), chatTestScope, &kommo.EditMessageRequest{
		Time: time.UnixMilli(1639605194102), MsgID: "my_int-5f2836a8ca477", ConversationID: "my_int-d5a421f7f217",
		Message: kommo.TextMessage("Отредактированная версия сообщения"),
	})
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	r := srv.only()
	assert.Equal(t, "POST", r.Method)
	assert.Equal(t, "/v2/origin/custom/"+chatTestScope, r.Path)
	// The reference's edit example.
	assert.JSONEq(t, `{"event_type":"edit_message","payload":{"timestamp":1639605194,"msec_timestamp":1639605194102,"msgid":"my_int-5f2836a8ca477","conversation_id":"my_int-d5a421f7f217","message":{"type":"text","text":"Отредактированная версия сообщения"}}}`, string(r.Body))
	chatAssertSigned(t, r, chatTestSecret)
}

func TestMessagesEditByAmojoIDWithDeliveryStatusAndUnchangedFile(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, ""))
	_, err := c.Messages.Edit(t.Context(), chatTestScope, &kommo.EditMessageRequest{
		ID: "0371a0ff-b78a-4c7b-8538-a7d547e10692", MsgID: "my-1", ConversationID: "chat-1",
		Message: &kommo.MessageContent{
			Type: kommo.MessageTypePicture, Text: "new caption",
			DeliveryStatus: &kommo.MessageDeliveryStatus{StatusCode: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorOther, Error: "blocked"},
		},
	})
	require.NoError(t, err)
	r := srv.only()
	assert.JSONEq(t, fmt.Sprintf(`{"event_type":"edit_message","payload":{"timestamp":%d,"msec_timestamp":%d,
		"id":"0371a0ff-b78a-4c7b-8538-a7d547e10692","msgid":"my-1","conversation_id":"chat-1",
		"message":{"type":"picture","text":"new caption","delivery_status":{"status_code":-1,"error_code":905,"error":"blocked"}}}}`,
		chatNow.Unix(), chatNow.UnixMilli()), string(r.Body))
	chatAssertSigned(t, r, chatTestSecret)
}

// A -1 status of an edited message always carries a text too.
func TestMessagesEditDeliveryStatusFillsErrorText(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, ""))
	msg := &kommo.MessageContent{Type: kommo.MessageTypeText, Text: "Hi",
		DeliveryStatus: &kommo.MessageDeliveryStatus{StatusCode: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorIntegrationDisabled}}
	_, err := c.Messages.Edit(t.Context(), chatTestScope, &kommo.EditMessageRequest{MsgID: "my-1", ConversationID: "chat-1", Message: msg})
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf(`{"event_type":"edit_message","payload":{"timestamp":%d,"msec_timestamp":%d,"msgid":"my-1","conversation_id":"chat-1",`+
		`"message":{"type":"text","text":"Hi","delivery_status":{"status_code":-1,"error_code":902,"error":"The integration is disabled on the channel side"}}}}`,
		chatNow.Unix(), chatNow.UnixMilli()), string(srv.only().Body))
	assert.Empty(t, msg.DeliveryStatus.Error, "the caller's message is not modified")
}

// Both documented bodies, byte for byte: the reference's current example
// (the default) and the legacy one of its PHP sample.
func TestMessagesUpdateDeliveryStatusDocumentedBodies(t *testing.T) {
	const msgID = "079e44fb-fc22-476b-9e8a-421b688ec53b"
	for _, tc := range []struct {
		fixture string
		shape   kommo.DeliveryStatusShape
	}{
		{"delivery_status_status_code.json", kommo.DeliveryStatusShapeStatusCode},
		{"delivery_status_msgid.json", kommo.DeliveryStatusShapeMsgID},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			c, srv := newChatTestClient(t, chatNow, chatReply(200, ""))
			_, err := c.Messages.UpdateDeliveryStatus(t.Context(), chatTestScope, msgID, &kommo.DeliveryStatusRequest{
				Status: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorOther, Error: "Error text", Shape: tc.shape,
			})
			require.NoError(t, err)
			r := srv.only()
			assert.Equal(t, "POST", r.Method)
			assert.Equal(t, "/v2/origin/custom/"+chatTestScope+"/"+msgID+"/delivery_status", r.Path)
			assert.Equal(t, strings.TrimSpace(string(testkit.Fixture(t, "chat", tc.fixture))), string(r.Body))
			chatAssertSigned(t, r, chatTestSecret)
		})
	}
	assert.Equal(t, kommo.DeliveryStatusShapeStatusCode, kommo.DeliveryStatusRequest{}.Shape, "the zero shape is the current one")
}

func TestMessagesUpdateDeliveryStatusShapes(t *testing.T) {
	const msgID = "079e44fb-fc22-476b-9e8a-421b688ec53b"
	legacy := kommo.DeliveryStatusShapeMsgID
	for _, tc := range []struct {
		name string
		req  *kommo.DeliveryStatusRequest
		want string
	}{
		{"delivered", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusDelivered}, `{"status_code":1}`},
		{"read", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusRead}, `{"status_code":2}`},
		{"error with a text", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorCannotCreateConversation, Error: "Not on WhatsApp"},
			`{"status_code":-1,"error_code":904,"error":"Not on WhatsApp"}`},
		{"error without a text gets the code's description", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorCannotCreateConversation},
			`{"status_code":-1,"error_code":904,"error":"The conversation cannot be created on the channel side"}`},
		{"blank text counts as none", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorConversationDeleted, Error: "  "},
			`{"status_code":-1,"error_code":901,"error":"The user deleted the conversation or the message"}`},
		{"legacy delivered", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusDelivered, Shape: legacy}, `{"msgid":"` + msgID + `","delivery_status":1}`},
		{"legacy error without a text", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorInternal, Shape: legacy},
			`{"msgid":"` + msgID + `","delivery_status":-1,"error_code":903,"error":"Internal server error of the channel"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := newChatTestClient(t, chatNow, chatReply(200, "{}"))
			_, err := c.Messages.UpdateDeliveryStatus(t.Context(), chatTestScope, msgID, tc.req)
			require.NoError(t, err)
			r := srv.only()
			assert.Equal(t, "POST", r.Method)
			assert.Equal(t, "/v2/origin/custom/"+chatTestScope+"/"+msgID+"/delivery_status", r.Path)
			assert.Equal(t, tc.want, string(r.Body))
			chatAssertSigned(t, r, chatTestSecret)
		})
	}
	assert.Equal(t, []int{901, 902, 903, 904, 905}, []int{
		int(kommo.DeliveryErrorConversationDeleted), int(kommo.DeliveryErrorIntegrationDisabled), int(kommo.DeliveryErrorInternal),
		int(kommo.DeliveryErrorCannotCreateConversation), int(kommo.DeliveryErrorOther),
	})
	for _, code := range []kommo.DeliveryErrorCode{kommo.DeliveryErrorConversationDeleted, kommo.DeliveryErrorIntegrationDisabled,
		kommo.DeliveryErrorInternal, kommo.DeliveryErrorCannotCreateConversation} {
		assert.NotEmpty(t, code.Description(), "%d", code)
	}
	assert.Empty(t, kommo.DeliveryErrorOther.Description(), "only the caller can describe 905")
	assert.Empty(t, kommo.DeliveryErrorCode(906).Description())
}

func TestMessagesTypingDurationAndValidation(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(http.StatusNoContent, ""))
	_, err := c.Messages.Typing(t.Context(), chatTestScope, &kommo.TypingRequest{ConversationID: "chat-1", SenderID: "u-1", Duration: 3 * time.Second})
	require.NoError(t, err)
	r := srv.only()
	assert.Equal(t, "/v2/origin/custom/"+chatTestScope+"/typing", r.Path)
	assert.JSONEq(t, `{"conversation_id":"chat-1","sender":{"id":"u-1"},"duration_ms":3000}`, string(r.Body))
	chatAssertSigned(t, r, chatTestSecret)

	_, err = c.Messages.Typing(t.Context(), "", &kommo.TypingRequest{Duration: -time.Second})
	assert.Equal(t, []string{"scope_id: required", "conversation_id: required", "sender.id: required", "duration_ms: must not be negative"}, chatValidationProblems(t, err))
	assert.Len(t, srv.requests(), 1)
}

func TestMessagesReactAndUnreact(t *testing.T) {
	c, srv := newChatTestClient(t, chatNow, chatReply(200, ""))
	_, err := c.Messages.React(t.Context(), chatTestScope, &kommo.ReactionRequest{
		ConversationID: "my_integration-8e3e7640-49af-4448-a2c6-d5a421f7f217", MsgID: "fbd27636-0c4b-11ea-8d71-362b9e155667",
		User: kommo.ReactionUser{ID: "my_int-1376265f-86df-4c49-a0c3-a4816df41af8"}, Emoji: "😍",
	})
	require.NoError(t, err)
	_, err = c.Messages.Unreact(t.Context(), chatTestScope, &kommo.ReactionRequest{
		ConversationRefID: "8e4d4baa-9e6c-4a88-838a-5f62be227bdc", ID: "0371a0ff-b78a-4c7b-8538-a7d547e10692",
		User: kommo.ReactionUser{ID: "manager-1", RefID: "76fc2bea-902f-425c-9a3d-dcdac4766090"},
	})
	require.NoError(t, err)

	reqs := srv.requests()
	require.Len(t, reqs, 2)
	for _, r := range reqs {
		assert.Equal(t, "POST", r.Method)
		assert.Equal(t, "/v2/origin/custom/"+chatTestScope+"/react", r.Path)
		chatAssertSigned(t, r, chatTestSecret)
	}
	// The reference's example.
	assert.JSONEq(t, `{"conversation_id":"my_integration-8e3e7640-49af-4448-a2c6-d5a421f7f217","msgid":"fbd27636-0c4b-11ea-8d71-362b9e155667","user":{"id":"my_int-1376265f-86df-4c49-a0c3-a4816df41af8"},"type":"react","emoji":"😍"}`, string(reqs[0].Body))
	assert.JSONEq(t, `{"conversation_ref_id":"8e4d4baa-9e6c-4a88-838a-5f62be227bdc","id":"0371a0ff-b78a-4c7b-8538-a7d547e10692","user":{"id":"manager-1","ref_id":"76fc2bea-902f-425c-9a3d-dcdac4766090"},"type":"unreact"}`, string(reqs[1].Body))
}

// TestChatAPIReproducesVectors: each call rebuilds its documented signed
// request (spec §8.1) exactly: method, path, body bytes, Date,
// Content-MD5 and X-Signature.
func TestChatAPIReproducesVectors(t *testing.T) {
	for _, tc := range []struct {
		vector  string
		status  int
		fixture string // the reply body under testdata/chat, "" for none
		call    func(t *testing.T, c *kommo.Client) (*kommo.Response, error)
	}{
		{"connect", 200, "connect.json", func(t *testing.T, c *kommo.Client) (*kommo.Response, error) {
			// hook_api_version defaults to v2.
			req := &kommo.ConnectRequest{AccountID: chatTestAccount, Title: "ChatsIntegration"}
			conn, resp, err := c.Channels.Connect(t.Context(), req)
			assert.Empty(t, req.HookAPIVersion, "the caller's request is not modified")
			assert.Equal(t, &kommo.ChannelConnection{
				AccountID:            "af9945ff-1490-4cad-807d-945c15d88bec",
				ScopeID:              "f90ba33d-c9d9-44da-b76c-c349b0ecbe41_af9945ff-1490-4cad-807d-945c15d88bec",
				Title:                "ChatIntegration",
				HookAPIVersion:       "v2",
				IsTimeWindowDisabled: true,
			}, conn)
			return resp, err
		}},
		{"disconnect", 200, "", func(t *testing.T, c *kommo.Client) (*kommo.Response, error) {
			return c.Channels.Disconnect(t.Context(), chatTestAccount)
		}},
		// The signed step-by-step vector is in the legacy shape.
		{"delivery_status", 200, "", func(t *testing.T, c *kommo.Client) (*kommo.Response, error) {
			return c.Messages.UpdateDeliveryStatus(t.Context(), chatTestScope, "079e44fb-fc22-476b-9e8a-421b688ec53b", &kommo.DeliveryStatusRequest{
				Status: kommo.DeliveryStatusRead, ErrorCode: kommo.DeliveryErrorOther, Error: "Error text", Shape: kommo.DeliveryStatusShapeMsgID,
			})
		}},
		{"typing", http.StatusNoContent, "", func(t *testing.T, c *kommo.Client) (*kommo.Response, error) {
			return c.Messages.Typing(t.Context(), chatTestScope, &kommo.TypingRequest{
				ConversationID: "my_int-d5a421f7f218", SenderID: "my_int-1376265f-86df-4c49-a0c3-a4816df41af8",
			})
		}},
	} {
		t.Run(tc.vector, func(t *testing.T) {
			v := testkit.Vectors(t).Request(t, tc.vector)
			var body string
			if tc.fixture != "" {
				body = string(testkit.Fixture(t, "chat", tc.fixture))
			}
			c, srv := newChatVectorClient(t, v, chatReply(tc.status, body))
			resp, err := tc.call(t, c)
			require.NoError(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, tc.status, resp.StatusCode)
			r := srv.only()
			chatAssertVector(t, v, r)
			chatAssertSigned(t, r, chatTestSecret)
		})
	}
}

// TestChatAPIValidation: an invalid request is refused with all its
// problems, in order, and nothing is sent.
func TestChatAPIValidation(t *testing.T) {
	type tcase struct {
		name string
		call func(ctx context.Context, c *kommo.Client) error
		want []string
	}
	cases := []tcase{
		{"Channels.Connect/empty", func(ctx context.Context, c *kommo.Client) error {
			_, _, err := c.Channels.Connect(ctx, &kommo.ConnectRequest{})
			return err
		}, []string{"account_id: required"}},
		{"Channels.Connect/nil", func(ctx context.Context, c *kommo.Client) error {
			_, _, err := c.Channels.Connect(ctx, nil)
			return err
		}, []string{"request: required"}},
		{"Channels.Disconnect/blank account", func(ctx context.Context, c *kommo.Client) error {
			_, err := c.Channels.Disconnect(ctx, " ")
			return err
		}, []string{"account_id: required"}},

		{"Chats.Create/everything missing, external id too long", func(ctx context.Context, c *kommo.Client) error {
			_, _, err := c.Chats.Create(ctx, "", &kommo.CreateChatRequest{Source: &kommo.ChatSource{ExternalID: strings.Repeat("x", 41)}})
			return err
		}, []string{
			"scope_id: required",
			"conversation_id: required",
			"user.id: required",
			"user.name: required",
			"source.external_id: 41 characters, at most 36 allowed",
		}},
		{"Chats.Create/tab in external id", func(ctx context.Context, c *kommo.Client) error {
			_, _, err := c.Chats.Create(ctx, chatTestScope, &kommo.CreateChatRequest{
				ConversationID: "c", User: kommo.Participant{ID: "u", Name: "n"}, Source: &kommo.ChatSource{ExternalID: "tab\there"},
			})
			return err
		}, []string{"source.external_id: only printable ASCII characters and space are allowed"}},
		{"Chats.Create/empty source", func(ctx context.Context, c *kommo.Client) error {
			_, _, err := c.Chats.Create(ctx, chatTestScope, &kommo.CreateChatRequest{
				ConversationID: "c", User: kommo.Participant{ID: "u", Name: "n"}, Source: &kommo.ChatSource{},
			})
			return err
		}, []string{"source.external_id: required when source is set"}},

		{"Messages.Send/empty", func(ctx context.Context, c *kommo.Client) error {
			_, _, err := c.Messages.Send(ctx, "", &kommo.SendMessageRequest{})
			return err
		}, []string{
			"scope_id: required",
			"payload.conversation_id: required",
			"payload.sender: required",
			"payload.message: required",
		}},
		{"Messages.Send/nil", func(ctx context.Context, c *kommo.Client) error {
			_, _, err := c.Messages.Send(ctx, chatTestScope, nil)
			return err
		}, []string{"request: required"}},
		{"Messages.Send/everything wrong", func(ctx context.Context, c *kommo.Client) error {
			_, _, err := c.Messages.Send(ctx, chatTestScope, &kommo.SendMessageRequest{
				ConversationID: "c",
				Sender:         &kommo.Participant{},
				Receiver:       &kommo.Participant{ID: "client"},
				Source:         &kommo.ChatSource{ExternalID: "ünicode"},
				Message: &kommo.MessageContent{
					Type: kommo.MessageTypeText, FileSize: -1, MediaDuration: -2,
					SharedPost:     &kommo.SharedPost{Type: "reel"},
					Post:           &kommo.Post{},
					DeliveryStatus: &kommo.MessageDeliveryStatus{StatusCode: kommo.DeliveryStatusRead},
				},
				ReplyTo:  &kommo.ReplyTo{},
				Forwards: &kommo.Forwards{Messages: []kommo.EmbeddedMessage{{MsgID: "a"}, {MsgID: "b"}}},
			})
			return err
		}, []string{
			"payload.sender.id: required",
			"payload.sender.name: required",
			"payload.receiver.name: required",
			"payload.sender.ref_id: required for outgoing messages (the CRM user's amojo id or the channel bot id)",
			"payload.source.external_id: only printable ASCII characters and space are allowed",
			"payload.message.text: required for text messages",
			"payload.message.file_size: must not be negative",
			"payload.message.media_duration: must not be negative",
			"payload.message.shared_post.url: required",
			`payload.message.shared_post.type: only "post" is supported, got "reel"`,
			"payload.message.post.id: required",
			"payload.message.post.url: required",
			"payload.reply_to.message.type: required unless id or msgid is given",
			"payload.reply_to.message.timestamp: required unless id or msgid is given",
			"payload.reply_to.message.sender: id, ref_id or name required unless the message's id or msgid is given",
			"payload.forwards.messages: at most 1 message can be forwarded, got 2",
		}},

		{"Messages.Edit/empty", func(ctx context.Context, c *kommo.Client) error {
			_, err := c.Messages.Edit(ctx, "", &kommo.EditMessageRequest{})
			return err
		}, []string{
			"scope_id: required",
			"payload.conversation_id: required",
			"payload.id or payload.msgid: required",
			"payload.message: required",
		}},
		{"Messages.Edit/no text, error status without its text", func(ctx context.Context, c *kommo.Client) error {
			_, err := c.Messages.Edit(ctx, chatTestScope, &kommo.EditMessageRequest{
				MsgID: "m", ConversationID: "c",
				Message: &kommo.MessageContent{Type: kommo.MessageTypeText, DeliveryStatus: &kommo.MessageDeliveryStatus{StatusCode: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorOther}},
			})
			return err
		}, []string{
			"payload.message.text: required for text messages",
			"payload.message.delivery_status.error: required",
		}},
		{"Messages.Edit/nil", func(ctx context.Context, c *kommo.Client) error {
			_, err := c.Messages.Edit(ctx, chatTestScope, nil)
			return err
		}, []string{"request: required"}},

		{"Messages.UpdateDeliveryStatus/everything missing", func(ctx context.Context, c *kommo.Client) error {
			_, err := c.Messages.UpdateDeliveryStatus(ctx, "", "", nil)
			return err
		}, []string{"scope_id: required", "msgid: required", "request: required"}},

		{"Messages.React/empty", func(ctx context.Context, c *kommo.Client) error {
			_, err := c.Messages.React(ctx, "", &kommo.ReactionRequest{})
			return err
		}, []string{
			"scope_id: required",
			"conversation_id or conversation_ref_id: required",
			"id or msgid: required",
			"user.id or user.ref_id: required",
			"emoji: required",
		}},
		{"Messages.Unreact/no user", func(ctx context.Context, c *kommo.Client) error {
			_, err := c.Messages.Unreact(ctx, chatTestScope, &kommo.ReactionRequest{ConversationID: "c", MsgID: "m"})
			return err
		}, []string{"user.id or user.ref_id: required"}},
		{"Messages.Unreact/nil", func(ctx context.Context, c *kommo.Client) error {
			_, err := c.Messages.Unreact(ctx, chatTestScope, nil)
			return err
		}, []string{"request: required"}},
	}
	for _, ds := range []struct {
		name string
		req  *kommo.DeliveryStatusRequest
		want []string
	}{
		{"empty", &kommo.DeliveryStatusRequest{}, []string{"status_code: required"}},
		{"legacy empty", &kommo.DeliveryStatusRequest{Shape: kommo.DeliveryStatusShapeMsgID}, []string{"delivery_status: required"}},
		{"unknown status", &kommo.DeliveryStatusRequest{Status: 3}, []string{"status_code: unknown status 3 (want 1 delivered, 2 read or -1 error)"}},
		{"error without a code", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusError}, []string{"error_code: required with status -1 (901-905)"}},
		{"unknown error code", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusError, ErrorCode: 906}, []string{"error_code: unknown error code 906 (want 901-905)"}},
		{"905 without a text", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorOther}, []string{"error: required"}},
		{"905 with a blank text", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorOther, Error: " "}, []string{"error: required"}},
		{"unknown shape", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusRead, Shape: 7}, []string{"shape: unknown shape 7"}},
	} {
		cases = append(cases, tcase{"Messages.UpdateDeliveryStatus/" + ds.name, func(ctx context.Context, c *kommo.Client) error {
			_, err := c.Messages.UpdateDeliveryStatus(ctx, chatTestScope, "m", ds.req)
			return err
		}, ds.want})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := newChatTestClient(t, chatNow, chatReply(200, "{}"))
			assert.Equal(t, tc.want, chatValidationProblems(t, tc.call(t.Context(), c)))
			assert.Empty(t, srv.requests(), "nothing is sent for an invalid request")
		})
	}
}

func TestChannelsNoChannel(t *testing.T) {
	noChannel, err := kommo.NewClient(kommo.WithAccessToken("tok"), kommo.WithCRMBaseURL("https://acc.test/"))
	require.NoError(t, err)
	_, _, err = noChannel.Channels.Connect(t.Context(), &kommo.ConnectRequest{AccountID: "a"})
	assert.ErrorIs(t, err, kommo.ErrNoChannel)
	_, err = noChannel.Channels.Disconnect(t.Context(), "a")
	assert.ErrorIs(t, err, kommo.ErrNoChannel)
}

// 36 printable characters including spaces are accepted.
func TestChatsCreateAcceptsPrintableExternalID(t *testing.T) {
	c, _ := newChatTestClient(t, chatNow, chatReply(200, "{}"))
	_, _, err := c.Chats.Create(t.Context(), chatTestScope, &kommo.CreateChatRequest{
		ConversationID: "c", User: kommo.Participant{ID: "u", Name: "n"}, Source: &kommo.ChatSource{ExternalID: strings.Repeat("a ", 18)},
	})
	require.NoError(t, err)
}

// chatCalls calls every Chat API method with a valid request.
var chatCalls = []struct {
	name string
	call func(ctx context.Context, c *kommo.Client) error
}{
	{"Channels.Connect", func(ctx context.Context, c *kommo.Client) error {
		conn, _, err := c.Channels.Connect(ctx, &kommo.ConnectRequest{AccountID: "a"})
		if conn != nil {
			return errors.New("result on error")
		}
		return err
	}},
	{"Channels.Disconnect", func(ctx context.Context, c *kommo.Client) error {
		_, err := c.Channels.Disconnect(ctx, "a")
		return err
	}},
	{"Chats.Create", func(ctx context.Context, c *kommo.Client) error {
		chat, _, err := c.Chats.Create(ctx, chatTestScope, &kommo.CreateChatRequest{ConversationID: "c", User: kommo.Participant{ID: "u", Name: "n"}})
		if chat != nil {
			return errors.New("result on error")
		}
		return err
	}},
	{"Messages.Send", func(ctx context.Context, c *kommo.Client) error {
		sent, _, err := c.Messages.Send(ctx, chatTestScope, &kommo.SendMessageRequest{ConversationID: "c", Sender: &kommo.Participant{ID: "u", Name: "n"}, Message: kommo.TextMessage("x")})
		if sent != nil {
			return errors.New("result on error")
		}
		return err
	}},
	{"Messages.Edit", func(ctx context.Context, c *kommo.Client) error {
		_, err := c.Messages.Edit(ctx, chatTestScope, &kommo.EditMessageRequest{MsgID: "m", ConversationID: "c", Message: kommo.TextMessage("x")})
		return err
	}},
	{"Messages.UpdateDeliveryStatus", func(ctx context.Context, c *kommo.Client) error {
		_, err := c.Messages.UpdateDeliveryStatus(ctx, chatTestScope, "m", &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusRead})
		return err
	}},
	{"Messages.Typing", func(ctx context.Context, c *kommo.Client) error {
		_, err := c.Messages.Typing(ctx, chatTestScope, &kommo.TypingRequest{ConversationID: "c", SenderID: "u"})
		return err
	}},
	{"Messages.React", func(ctx context.Context, c *kommo.Client) error {
		_, err := c.Messages.React(ctx, chatTestScope, &kommo.ReactionRequest{ConversationID: "c", MsgID: "m", User: kommo.ReactionUser{ID: "u"}, Emoji: "👍"})
		return err
	}},
	{"Messages.Unreact", func(ctx context.Context, c *kommo.Client) error {
		_, err := c.Messages.Unreact(ctx, chatTestScope, &kommo.ReactionRequest{ConversationID: "c", MsgID: "m", User: kommo.ReactionUser{ID: "u"}})
		return err
	}},
	{"History.List", func(ctx context.Context, c *kommo.Client) error {
		msgs, _, err := c.History.List(ctx, chatTestScope, "chat", &kommo.HistoryOptions{Limit: 10})
		if msgs != nil {
			return errors.New("result on error")
		}
		return err
	}},
	{"History.All", func(ctx context.Context, c *kommo.Client) error {
		var errs []error
		for m, err := range c.History.All(ctx, chatTestScope, "chat", nil) {
			if m != nil {
				return errors.New("item on error")
			}
			errs = append(errs, err)
		}
		if len(errs) != 1 {
			return fmt.Errorf("%d errors yielded", len(errs))
		}
		return errs[0]
	}},
}

func TestChatAPIErrors(t *testing.T) {
	for _, status := range []struct {
		code     int
		sentinel error
		body     string
	}{
		{400, kommo.ErrBadRequest, `{"error_code":400,"error_type":"ValidationError","error_description":"payload.message.type: invalid value"}`},
		{403, kommo.ErrForbidden, `{"error_code":403,"error_type":"Forbidden","error_description":"invalid signature"}`},
		{404, kommo.ErrNotFound, `{"error_code":404,"error_type":"NotFound","error_description":"not found"}`},
	} {
		for _, tc := range chatCalls {
			t.Run(fmt.Sprintf("%s/%d", tc.name, status.code), func(t *testing.T) {
				c, srv := newChatTestClient(t, chatNow, chatReply(status.code, status.body))
				err := tc.call(t.Context(), c)
				require.Error(t, err)
				assert.ErrorIs(t, err, status.sentinel)
				var apiErr *kommo.APIError
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, status.code, apiErr.StatusCode)
				assert.Equal(t, status.code, apiErr.ErrorCode)
				assert.NotEmpty(t, apiErr.ErrorType)
				assert.NotEmpty(t, apiErr.ErrorDescription)
				assert.Equal(t, status.body, apiErr.Body)
				assert.NotContains(t, err.Error(), chatTestSecret)
				assert.Len(t, srv.requests(), 1, "4xx is not retried")
			})
		}
	}
}
