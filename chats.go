package kommo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// chatPathPrefix starts every Chat API path (relative to the Chat API host).
const chatPathPrefix = "v2/origin/custom/"

// chatScopePath returns "v2/origin/custom/{scopeID}" followed by the given
// segments, each escaped.
func chatScopePath(scopeID string, segments ...string) string {
	p := chatPathPrefix + url.PathEscape(scopeID)
	for _, s := range segments {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// ChannelHookAPIV2 is the webhook format version Connect asks for unless
// ConnectRequest.HookAPIVersion says otherwise ("v1" is deprecated).
const ChannelHookAPIV2 = "v2"

// ConnectRequest is the body of POST /v2/origin/custom/{channel_id}/connect.
type ConnectRequest struct {
	// AccountID is the account's amojo id (not the CRM account id); see
	// Account.AmojoID. Required.
	AccountID string `json:"account_id"`
	// Title is the channel's display name in the account (default: the
	// channel's name).
	Title string `json:"title,omitempty"`
	// HookAPIVersion selects the webhook format; empty means
	// ChannelHookAPIV2.
	HookAPIVersion string `json:"hook_api_version"`
	// IsTimeWindowDisabled turns the channel's reply time window off for
	// this account.
	IsTimeWindowDisabled bool `json:"is_time_window_disabled,omitempty"`
}

// ChannelConnection is the channel's connection to one account, as returned
// by Connect. ScopeID addresses every later Chat API call for the account.
type ChannelConnection struct {
	AccountID            string `json:"account_id"`
	ScopeID              string `json:"scope_id"`
	Title                string `json:"title"`
	HookAPIVersion       string `json:"hook_api_version"`
	IsTimeWindowDisabled bool   `json:"is_time_window_disabled"`
}

// Connect connects the client's channel (WithChannel) to an account and
// returns the connection with its scope id. It must be called again after
// every (re)installation of the integration, because uninstalling it
// disconnects the channel.
//
// Endpoint: POST /v2/origin/custom/{channel_id}/connect
//
//	conn, _, err := client.Channels.Connect(ctx, &kommo.ConnectRequest{AccountID: amojoID})
//	scopeID := conn.ScopeID
func (s *ChannelsService) Connect(ctx context.Context, req *ConnectRequest) (*ChannelConnection, *Response, error) {
	v := validator{op: "Channels.Connect"}
	if req == nil {
		v.addf("request: required")
	} else {
		v.require(req.AccountID, "account_id")
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	body := *req
	if body.HookAPIVersion == "" {
		body.HookAPIVersion = ChannelHookAPIV2
	}
	out := new(ChannelConnection)
	resp, err := s.client.do(ctx, &call{
		api:    chatAPI,
		method: http.MethodPost,
		path:   chatPathPrefix + url.PathEscape(s.client.ChannelID()) + "/connect",
		body:   &body,
		out:    out,
	})
	if err != nil {
		return nil, resp, err
	}
	return out, resp, nil
}

// chatAccountBody is the body of the disconnect request.
type chatAccountBody struct {
	AccountID string `json:"account_id"`
}

// Disconnect disconnects the client's channel from the account with the
// given amojo id. Kommo stops sending webhooks for the account; "Write
// first" disappears from its lead cards once their cache expires.
//
// Endpoint: DELETE /v2/origin/custom/{channel_id}/disconnect (with a JSON
// body)
//
//	_, err := client.Channels.Disconnect(ctx, amojoID)
func (s *ChannelsService) Disconnect(ctx context.Context, accountAmojoID string) (*Response, error) {
	v := validator{op: "Channels.Disconnect"}
	v.require(accountAmojoID, "account_id")
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.client.do(ctx, &call{
		api:    chatAPI,
		method: http.MethodDelete,
		path:   chatPathPrefix + url.PathEscape(s.client.ChannelID()) + "/disconnect",
		body:   &chatAccountBody{AccountID: accountAmojoID},
	})
}

// ChatSource names the lead source (CRM Sources API external_id) a chat or
// message belongs to.
type ChatSource struct {
	// ExternalID is the source's external_id: up to 40 printable ASCII
	// characters (space included).
	ExternalID string `json:"external_id"`
}

// ParticipantProfile is a chat participant's contact data; Kommo copies it
// into the contact when a new incoming lead is created.
type ParticipantProfile struct {
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
}

// Participant is a chat participant as the integration describes it: the
// user of Chats.Create and the sender or receiver of Messages.Send.
type Participant struct {
	// ID is the participant's id on the integration side. Required.
	ID string `json:"id"`
	// RefID is the participant's amojo id: for messages sent by a CRM user,
	// the user's amojo id; for messages from the channel bot, the bot id
	// issued at channel registration.
	RefID string `json:"ref_id,omitempty"`
	// Avatar is a publicly downloadable image URL.
	Avatar string `json:"avatar,omitempty"`
	// Name is the participant's display name. Required.
	Name        string              `json:"name"`
	Profile     *ParticipantProfile `json:"profile,omitempty"`
	ProfileLink string              `json:"profile_link,omitempty"`
}

// ChatCreateRequest is the body of POST /v2/origin/custom/{scope_id}/chats.
type ChatCreateRequest struct {
	// ConversationID is the chat's id on the integration side. Required.
	ConversationID string `json:"conversation_id"`
	// Source, when set, makes the first incoming message create the lead in
	// that source's pipeline.
	Source *ChatSource `json:"source,omitempty"`
	// User is the chat's client. ID and Name are required.
	User Participant `json:"user"`
}

// Chat is a chat created by Chats.Create.
type Chat struct {
	// ID is the chat's amojo id: the conversation ref id used by
	// History.List and in webhooks.
	ID   string    `json:"id"`
	User *ChatUser `json:"user,omitempty"`
}

// ChatUser is a chat participant as Kommo returns it (create-chat responses
// and history items). Empty values may be absent.
type ChatUser struct {
	// ID is the participant's amojo id.
	ID string `json:"id"`
	// ClientID is the participant's id on the integration side; absent for
	// CRM users.
	ClientID string `json:"client_id,omitempty"`
	Name     string `json:"name,omitempty"`
	Avatar   string `json:"avatar,omitempty"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
}

// UnmarshalJSON accepts both documented shapes: phone and email at the top
// level and nested under "profile".
func (u *ChatUser) UnmarshalJSON(b []byte) error {
	var w chatUserWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	w.user(u)
	return nil
}

// Create creates a chat before its first message (for instance to link it
// to an existing contact without creating an incoming lead). It is
// idempotent on ConversationID: an existing chat's id is returned. A chat
// without messages is not shown in the account.
//
// Endpoint: POST /v2/origin/custom/{scope_id}/chats
//
//	chat, _, err := client.Chats.Create(ctx, scopeID, &kommo.ChatCreateRequest{
//		ConversationID: "chat-1",
//		User:           kommo.Participant{ID: "user-1", Name: "Client"},
//	})
func (s *ChatsService) Create(ctx context.Context, scopeID string, req *ChatCreateRequest) (*Chat, *Response, error) {
	v := validator{op: "Chats.Create"}
	v.require(scopeID, "scope_id")
	if req == nil {
		v.addf("request: required")
	} else {
		v.require(req.ConversationID, "conversation_id")
		chatCheckParticipant(&v, &req.User, "user")
		chatCheckSource(&v, req.Source, "source")
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	out := new(Chat)
	resp, err := s.client.do(ctx, &call{
		api:    chatAPI,
		method: http.MethodPost,
		path:   chatScopePath(scopeID, "chats"),
		body:   req,
		out:    out,
	})
	if err != nil {
		return nil, resp, err
	}
	return out, resp, nil
}

// MessageContent is the "message" object of a sent or edited message. Use a
// constructor (TextMessage, PictureMessage, ...) or fill the fields the
// Type requires: Text for text; Media, FileName and FileSize for picture,
// video and file; Media for voice and audio; Media or StickerID for sticker;
// Location for location; Contact for contact.
type MessageContent struct {
	Type MessageType `json:"type"`
	// Text is required for text messages and optional (a caption) otherwise.
	Text string `json:"text,omitempty"`
	// Media is a downloadable URL of the picture, video, file, voice,
	// audio or sticker.
	Media    string `json:"media,omitempty"`
	FileName string `json:"file_name,omitempty"`
	// FileSize is the size of Media in bytes.
	FileSize int64 `json:"file_size,omitempty"`
	// MediaDuration is the length of a video, audio or voice message in
	// seconds.
	MediaDuration int `json:"media_duration,omitempty"`
	// StickerID is an account-independent sticker id.
	StickerID string       `json:"sticker_id,omitempty"`
	Location  *Location    `json:"location,omitempty"`
	Contact   *ContactCard `json:"contact,omitempty"`
	// CallbackData is the callback_data of the chosen row when the client
	// answers a WhatsApp List Message, so that the Salesbot reacts.
	CallbackData string `json:"callback_data,omitempty"`
	// SharedPost is a post the client shared.
	SharedPost *SharedPost `json:"shared_post,omitempty"`
	// Post makes the message a comment on a social post; each post becomes
	// its own conversation inside the chat.
	Post *Post `json:"post,omitempty"`
	// DeliveryStatus may only be set by Messages.Edit.
	DeliveryStatus *MessageDeliveryStatus `json:"delivery_status,omitempty"`
}

// SharedPostTypePost is the only SharedPost type Kommo supports; it is
// filled in when SharedPost.Type is empty.
const SharedPostTypePost = "post"

// SharedPost is a post the client shared in a message.
type SharedPost struct {
	// URL of the post. Required.
	URL string `json:"url"`
	// PreviewLink is a temporary preview image URL that Kommo downloads.
	PreviewLink string `json:"preview_link,omitempty"`
	// PreviewPermalink is a permanent preview image URL; it wins over
	// PreviewLink.
	PreviewPermalink string `json:"preview_permalink,omitempty"`
	// Type is SharedPostTypePost (the default).
	Type     string `json:"type"`
	SiteName string `json:"site_name,omitempty"`
}

// Post is the social post a comment (a message with Post set) belongs to.
type Post struct {
	// ID is the post's id on the integration side. Required.
	ID string `json:"id"`
	// URL of the post. Required.
	URL string `json:"url"`
	// PreviewURL is a preview image URL with a limited lifetime.
	PreviewURL string `json:"preview_url,omitempty"`
	// PreviewPermalink is a permanent preview image URL.
	PreviewPermalink string `json:"preview_permalink,omitempty"`
	Username         string `json:"username,omitempty"`
	Caption          string `json:"caption,omitempty"`
}

// TextMessage returns a text message.
func TextMessage(text string) *MessageContent {
	return &MessageContent{Type: MessageTypeText, Text: text}
}

// PictureMessage returns a picture message; mediaURL must be downloadable
// and size is in bytes.
func PictureMessage(mediaURL, fileName string, size int64) *MessageContent {
	return &MessageContent{Type: MessageTypePicture, Media: mediaURL, FileName: fileName, FileSize: size}
}

// VideoMessage returns a video message; mediaURL must be downloadable and
// size is in bytes.
func VideoMessage(mediaURL, fileName string, size int64) *MessageContent {
	return &MessageContent{Type: MessageTypeVideo, Media: mediaURL, FileName: fileName, FileSize: size}
}

// FileMessage returns a file message; mediaURL must be downloadable and
// size is in bytes.
func FileMessage(mediaURL, fileName string, size int64) *MessageContent {
	return &MessageContent{Type: MessageTypeFile, Media: mediaURL, FileName: fileName, FileSize: size}
}

// VoiceMessage returns a voice message (set MediaDuration for its length).
func VoiceMessage(mediaURL string) *MessageContent {
	return &MessageContent{Type: MessageTypeVoice, Media: mediaURL}
}

// AudioMessage returns an audio message (set MediaDuration for its length).
func AudioMessage(mediaURL string) *MessageContent {
	return &MessageContent{Type: MessageTypeAudio, Media: mediaURL}
}

// StickerMessage returns a sticker message with the sticker's image URL.
func StickerMessage(mediaURL string) *MessageContent {
	return &MessageContent{Type: MessageTypeSticker, Media: mediaURL}
}

// LocationMessage returns a location message.
func LocationMessage(loc Location) *MessageContent {
	return &MessageContent{Type: MessageTypeLocation, Location: &loc}
}

// ContactMessage returns a message sharing a contact card.
func ContactMessage(name, phone string) *MessageContent {
	return &MessageContent{Type: MessageTypeContact, Contact: &ContactCard{Name: name, Phone: phone}}
}

// EmbeddedUser is the sender of a quoted or forwarded message: ID or RefID
// identifies a known participant, otherwise Name is required.
type EmbeddedUser struct {
	ID    string `json:"id,omitempty"`
	RefID string `json:"ref_id,omitempty"`
	Name  string `json:"name,omitempty"`
}

// EmbeddedMessage is a quoted (ReplyTo) or forwarded (Forwards) message.
// Give ID (amojo id) or MsgID (your id) and Kommo fills in the rest and links
// to the original; otherwise Type, Text (text), Location or Contact (for
// those types), Time and Sender are required.
type EmbeddedMessage struct {
	// ID is the quoted message's amojo id.
	ID string `json:"id,omitempty"`
	// MsgID is the quoted message's id on the integration side.
	MsgID         string       `json:"msgid,omitempty"`
	Type          MessageType  `json:"type,omitempty"`
	Text          string       `json:"text,omitempty"`
	FileName      string       `json:"file_name,omitempty"`
	FileSize      int64        `json:"file_size,omitempty"`
	MediaDuration int          `json:"media_duration,omitempty"`
	Location      *Location    `json:"location,omitempty"`
	Contact       *ContactCard `json:"contact,omitempty"`
	// Time is when the quoted message was sent; it is sent as timestamp
	// and msec_timestamp.
	Time   time.Time     `json:"-"`
	Sender *EmbeddedUser `json:"sender,omitempty"`
}

// MarshalJSON adds timestamp and msec_timestamp from Time.
func (m EmbeddedMessage) MarshalJSON() ([]byte, error) {
	type plain EmbeddedMessage
	ts, ms := chatTimestamps(m.Time)
	return encodeJSON(struct {
		plain
		Timestamp     int64 `json:"timestamp,omitempty"`
		MsecTimestamp int64 `json:"msec_timestamp,omitempty"`
	}{plain(m), ts, ms})
}

// ReplyTo quotes a message of the same chat that the new message answers.
type ReplyTo struct {
	Message EmbeddedMessage `json:"message"`
}

// Forwards quotes a forwarded message, which may come from any chat of the
// integration. Kommo currently accepts one message.
type Forwards struct {
	Messages []EmbeddedMessage `json:"messages"`
	// ConversationRefID is the amojo id of the chat the message comes from.
	ConversationRefID string `json:"conversation_ref_id,omitempty"`
	// ConversationID is your id of the chat the message comes from.
	ConversationID string `json:"conversation_id,omitempty"`
}

// SendMessageRequest is the payload of a new_message event. Who sends it to
// whom is expressed by the participants:
//
//   - incoming, from the client: Sender is the client, Receiver is nil;
//   - outgoing, by a CRM user: Sender has RefID = the user's amojo id and
//     Receiver is the client;
//   - outgoing, by the channel bot (history import of messages nobody can be
//     identified for): Sender has RefID = the bot id issued at channel
//     registration and Receiver is the client; Kommo sends no webhook for
//     them.
//
// Set Silent to import history without notifications or incoming leads
// (all but the newest message).
type SendMessageRequest struct {
	// Time is when the message was sent; zero means now. It is sent as
	// timestamp and msec_timestamp.
	Time time.Time `json:"-"`
	// MsgID is your message id, by which Kommo identifies the message (its
	// answer echoes it as ref_id). When empty, Send generates one ("kommo-" +
	// 32 hex digits) before the first attempt, so every retry carries the
	// same id, and returns it in SentMessage.MsgID. Kommo's docs do not say
	// how a repeated msgid is treated; kommotest keeps the first message.
	MsgID string `json:"msgid,omitempty"`
	// ConversationID is your chat id; a new one creates the chat. Required.
	ConversationID string `json:"conversation_id"`
	// ConversationRefID is the amojo chat id; set it on the first message
	// of a chat opened by "Write first" to bind ConversationID to it.
	ConversationRefID string `json:"conversation_ref_id,omitempty"`
	// Sender is required (ID and Name).
	Sender *Participant `json:"sender,omitempty"`
	// Receiver is the client, for outgoing messages only.
	Receiver *Participant `json:"receiver,omitempty"`
	// Message is required.
	Message  *MessageContent `json:"message,omitempty"`
	ReplyTo  *ReplyTo        `json:"reply_to,omitempty"`
	Forwards *Forwards       `json:"forwards,omitempty"`
	// Source is the lead source of the chat.
	Source *ChatSource `json:"source,omitempty"`
	// Silent suppresses the incoming lead and notifications. It is always
	// sent.
	Silent bool `json:"silent"`
}

// MarshalJSON encodes the documented payload, with timestamp and
// msec_timestamp from Time (omitted when Time is zero).
func (r SendMessageRequest) MarshalJSON() ([]byte, error) {
	return encodeJSON(chatSendPayloadOf(&r))
}

// chatSendPlain is SendMessageRequest without its MarshalJSON method.
type chatSendPlain SendMessageRequest

// chatSendPayload is the wire payload of new_message. Send encodes it
// directly, so the body is marshalled exactly once.
type chatSendPayload struct {
	Timestamp     int64 `json:"timestamp,omitempty"`
	MsecTimestamp int64 `json:"msec_timestamp,omitempty"`
	chatSendPlain
}

func chatSendPayloadOf(r *SendMessageRequest) *chatSendPayload {
	ts, ms := chatTimestamps(r.Time)
	return &chatSendPayload{ts, ms, chatSendPlain(*r)}
}

// EditMessageRequest is the payload of an edit_message event. Editing never
// notifies anyone; sender, receiver, source, reply_to and forwards are
// ignored by Kommo and so are not part of it.
type EditMessageRequest struct {
	// Time is the edit time; zero means now.
	Time time.Time `json:"-"`
	// ID is the message's amojo id. ID or MsgID is required; with both, MsgID
	// becomes the message's id on the integration side.
	ID string `json:"id,omitempty"`
	// MsgID is your message id.
	MsgID string `json:"msgid,omitempty"`
	// ConversationID is your chat id. Required.
	ConversationID string `json:"conversation_id"`
	// Message is the new content (Type is required; Media, FileName and
	// FileSize may be left empty when the file is unchanged). Its
	// DeliveryStatus may be set.
	Message *MessageContent `json:"message,omitempty"`
}

// MarshalJSON encodes the documented payload, with timestamp and
// msec_timestamp from Time (omitted when Time is zero).
func (r EditMessageRequest) MarshalJSON() ([]byte, error) {
	return encodeJSON(chatEditPayloadOf(&r))
}

// chatEditPlain is EditMessageRequest without its MarshalJSON method.
type chatEditPlain EditMessageRequest

// chatEditPayload is the wire payload of edit_message.
type chatEditPayload struct {
	Timestamp     int64 `json:"timestamp,omitempty"`
	MsecTimestamp int64 `json:"msec_timestamp,omitempty"`
	chatEditPlain
}

func chatEditPayloadOf(r *EditMessageRequest) *chatEditPayload {
	ts, ms := chatTimestamps(r.Time)
	return &chatEditPayload{ts, ms, chatEditPlain(*r)}
}

// chatTimestamps returns t as unix seconds and milliseconds (0, 0 for the
// zero time).
func chatTimestamps(t time.Time) (int64, int64) {
	if t.IsZero() {
		return 0, 0
	}
	return t.Unix(), t.UnixMilli()
}

// chatEvent is the envelope of the send/edit endpoint.
type chatEvent struct {
	EventType string `json:"event_type"`
	Payload   any    `json:"payload"`
}

// Event types of POST /v2/origin/custom/{scope_id}.
const (
	chatEventNewMessage  = "new_message"
	chatEventEditMessage = "edit_message"
)

// SentMessage is Kommo's answer to Messages.Send: the message was accepted
// and appears in the chat after asynchronous processing. Older servers
// return only the two message ids; the others are then empty.
type SentMessage struct {
	// ConversationID identifies the conversation.
	ConversationID string `json:"conversation_id"`
	// SenderID and ReceiverID identify the participants (ReceiverID is empty
	// for incoming messages, where Kommo returns null).
	SenderID   string `json:"sender_id"`
	ReceiverID string `json:"receiver_id"`
	// ID is the message's amojo id (the response's new_message.msgid). Use
	// it for delivery statuses and reactions.
	ID string `json:"msgid"`
	// MsgID is your message id (the response's new_message.ref_id), or the
	// id Send sent when Kommo does not echo it.
	MsgID string `json:"ref_id"`
}

// Send sends a new message to a chat: an incoming message from the client,
// an outgoing message by a CRM user, or a message of the channel bot, live
// or imported (see SendMessageRequest). Every missing field is reported at
// once, before any request is made, as a *ValidationError.
//
// Endpoint: POST /v2/origin/custom/{scope_id} (event_type "new_message")
//
//	sent, _, err := client.Messages.Send(ctx, scopeID, &kommo.SendMessageRequest{
//		ConversationID: "chat-1",
//		Sender:         &kommo.Participant{ID: "user-1", Name: "Client"},
//		Message:        kommo.TextMessage("Hello"),
//	})
func (s *MessagesService) Send(ctx context.Context, scopeID string, req *SendMessageRequest) (*SentMessage, *Response, error) {
	v := validator{op: "Messages.Send"}
	v.require(scopeID, "scope_id")
	if req == nil {
		v.addf("request: required")
	} else {
		chatCheckSend(&v, req)
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	p := *req
	if p.Time.IsZero() {
		p.Time = s.client.clock.Now()
	}
	if p.MsgID == "" {
		p.MsgID = chatNewMsgID()
	}
	p.Message = chatContentDefaults(p.Message)
	var out struct {
		NewMessage SentMessage `json:"new_message"`
	}
	resp, err := s.client.do(ctx, &call{
		api:    chatAPI,
		method: http.MethodPost,
		path:   chatScopePath(scopeID),
		body:   &chatEvent{EventType: chatEventNewMessage, Payload: chatSendPayloadOf(&p)},
		out:    &out,
	})
	if err != nil {
		return nil, resp, err
	}
	sent := out.NewMessage
	if sent.MsgID == "" {
		sent.MsgID = p.MsgID
	}
	return &sent, resp, nil
}

// chatContentDefaults returns m, or a copy of it with defaults filled in
// (the caller's value is never modified).
func chatContentDefaults(m *MessageContent) *MessageContent {
	if sp := m.SharedPost; sp != nil && sp.Type == "" {
		c, post := *m, *sp
		post.Type = SharedPostTypePost
		c.SharedPost = &post
		return &c
	}
	return m
}

// chatNewMsgID returns a random message id.
func chatNewMsgID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand.Read crashes the program instead)
	return "kommo-" + hex.EncodeToString(b[:])
}

// Edit changes a message sent earlier: its text or file, or (with
// Message.DeliveryStatus) its delivery status. Editing never notifies.
//
// Endpoint: POST /v2/origin/custom/{scope_id} (event_type "edit_message")
//
//	_, err := client.Messages.Edit(ctx, scopeID, &kommo.EditMessageRequest{
//		MsgID: "msg-1", ConversationID: "chat-1", Message: kommo.TextMessage("Hello (edited)"),
//	})
func (s *MessagesService) Edit(ctx context.Context, scopeID string, req *EditMessageRequest) (*Response, error) {
	v := validator{op: "Messages.Edit"}
	v.require(scopeID, "scope_id")
	if req == nil {
		v.addf("request: required")
	} else {
		v.require(req.ConversationID, "payload.conversation_id")
		if req.ID == "" && req.MsgID == "" {
			v.addf("payload.id or payload.msgid: required")
		}
		chatCheckContent(&v, req.Message, "payload.message", true)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	p := *req
	if p.Time.IsZero() {
		p.Time = s.client.clock.Now()
	}
	p.Message = chatContentDefaults(p.Message)
	return s.client.do(ctx, &call{
		api:    chatAPI,
		method: http.MethodPost,
		path:   chatScopePath(scopeID),
		body:   &chatEvent{EventType: chatEventEditMessage, Payload: chatEditPayloadOf(&p)},
	})
}

// DeliveryStatus is a message's delivery status. A message sent from Kommo
// is "sent" until the integration reports otherwise.
type DeliveryStatus int

// Delivery statuses.
const (
	DeliveryStatusDelivered DeliveryStatus = 1
	DeliveryStatusRead      DeliveryStatus = 2
	// DeliveryStatusError requires a DeliveryErrorCode.
	DeliveryStatusError DeliveryStatus = -1
)

// DeliveryErrorCode says why a message could not be delivered.
type DeliveryErrorCode int

// Delivery error codes, sent with DeliveryStatusError.
const (
	// DeliveryErrorConversationDeleted: the user deleted the conversation
	// or message (901).
	DeliveryErrorConversationDeleted DeliveryErrorCode = 901
	// DeliveryErrorIntegrationDisabled: the integration is disabled on the
	// channel side (902).
	DeliveryErrorIntegrationDisabled DeliveryErrorCode = 902
	// DeliveryErrorInternal: an internal server error (903).
	DeliveryErrorInternal DeliveryErrorCode = 903
	// DeliveryErrorCannotCreateConversation: the conversation cannot be
	// created, e.g. the user is not on WhatsApp (904).
	DeliveryErrorCannotCreateConversation DeliveryErrorCode = 904
	// DeliveryErrorOther: any other error; the Error text is required and
	// shown to the user (905).
	DeliveryErrorOther DeliveryErrorCode = 905
)

// DeliveryStatusShape selects the body shape of UpdateDeliveryStatus: the
// docs disagree and it is not known which one Kommo requires.
type DeliveryStatusShape int

const (
	// DeliveryShapeMsgID sends {"msgid","delivery_status","error_code","error"},
	// the shape of the signed documentation example and of every known
	// client (the default).
	DeliveryShapeMsgID DeliveryStatusShape = iota
	// DeliveryShapeStatusCode sends {"status_code","error_code","error"},
	// the shape of the current reference tables.
	DeliveryShapeStatusCode
)

// DeliveryStatusRequest is the body of Messages.UpdateDeliveryStatus.
type DeliveryStatusRequest struct {
	// Status is required.
	Status DeliveryStatus
	// ErrorCode is required with DeliveryStatusError.
	ErrorCode DeliveryErrorCode
	// Error is shown to the user; required with DeliveryErrorOther.
	Error string
	// Shape selects the body field names (default DeliveryShapeMsgID).
	Shape DeliveryStatusShape
}

// MessageDeliveryStatus is the delivery_status object of an edited message.
type MessageDeliveryStatus struct {
	StatusCode DeliveryStatus    `json:"status_code"`
	ErrorCode  DeliveryErrorCode `json:"error_code,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// chatDeliveryMsgIDBody is the DeliveryShapeMsgID body.
type chatDeliveryMsgIDBody struct {
	MsgID          string            `json:"msgid"`
	DeliveryStatus DeliveryStatus    `json:"delivery_status"`
	ErrorCode      DeliveryErrorCode `json:"error_code,omitempty"`
	Error          string            `json:"error,omitempty"`
}

// UpdateDeliveryStatus reports that a message sent from Kommo was
// delivered, read, or could not be delivered. amojoMsgID is the message's
// amojo id from the outgoing-message webhook (message.message.id).
//
// Endpoint: POST /v2/origin/custom/{scope_id}/{msgid}/delivery_status
//
//	_, err := client.Messages.UpdateDeliveryStatus(ctx, scopeID, amojoMsgID,
//		&kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusRead})
func (s *MessagesService) UpdateDeliveryStatus(ctx context.Context, scopeID, amojoMsgID string, req *DeliveryStatusRequest) (*Response, error) {
	v := validator{op: "Messages.UpdateDeliveryStatus"}
	v.require(scopeID, "scope_id")
	v.require(amojoMsgID, "msgid")
	if req == nil {
		v.addf("request: required")
	} else {
		chatCheckDelivery(&v, req.Status, req.ErrorCode, req.Error, "")
		if req.Shape != DeliveryShapeMsgID && req.Shape != DeliveryShapeStatusCode {
			v.addf("shape: unknown shape %d", req.Shape)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var body any
	if req.Shape == DeliveryShapeStatusCode {
		body = &MessageDeliveryStatus{StatusCode: req.Status, ErrorCode: req.ErrorCode, Error: req.Error}
	} else {
		body = &chatDeliveryMsgIDBody{MsgID: amojoMsgID, DeliveryStatus: req.Status, ErrorCode: req.ErrorCode, Error: req.Error}
	}
	return s.client.do(ctx, &call{
		api:    chatAPI,
		method: http.MethodPost,
		path:   chatScopePath(scopeID, amojoMsgID, "delivery_status"),
		body:   body,
	})
}

// TypingRequest tells Kommo that a client is typing.
type TypingRequest struct {
	// ConversationID is your chat id. Required.
	ConversationID string
	// SenderID is your id of the client who is typing. Required.
	SenderID string
	// Duration is how long to show the typing indicator, in whole
	// milliseconds; zero means Kommo's default of 5 s.
	Duration time.Duration
}

// MarshalJSON encodes the documented body:
// {"conversation_id","sender":{"id"},"duration_ms"}.
func (r TypingRequest) MarshalJSON() ([]byte, error) {
	return encodeJSON(struct {
		ConversationID string          `json:"conversation_id"`
		Sender         chatIDReference `json:"sender"`
		DurationMS     int64           `json:"duration_ms,omitempty"`
	}{r.ConversationID, chatIDReference{ID: r.SenderID}, r.Duration.Milliseconds()})
}

// chatIDReference is a participant given by id and/or amojo id.
type chatIDReference struct {
	ID    string `json:"id,omitempty"`
	RefID string `json:"ref_id,omitempty"`
}

// Typing shows in Kommo that the client is typing (for Duration, default
// 5 s). Kommo answers 204.
//
// Endpoint: POST /v2/origin/custom/{scope_id}/typing
//
//	_, err := client.Messages.Typing(ctx, scopeID, &kommo.TypingRequest{ConversationID: "chat-1", SenderID: "user-1"})
func (s *MessagesService) Typing(ctx context.Context, scopeID string, req *TypingRequest) (*Response, error) {
	v := validator{op: "Messages.Typing"}
	v.require(scopeID, "scope_id")
	if req == nil {
		v.addf("request: required")
	} else {
		v.require(req.ConversationID, "conversation_id")
		v.require(req.SenderID, "sender.id")
		if req.Duration < 0 {
			v.addf("duration_ms: must not be negative")
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.client.do(ctx, &call{
		api:    chatAPI,
		method: http.MethodPost,
		path:   chatScopePath(scopeID, "typing"),
		body:   req,
	})
}

// ReactionUser is who (un)reacted: your user id, and the amojo id when
// reacting on behalf of a CRM user.
type ReactionUser struct {
	ID    string `json:"id,omitempty"`
	RefID string `json:"ref_id,omitempty"`
}

// ReactionRequest identifies the message and user of React and Unreact.
type ReactionRequest struct {
	// ConversationID (your chat id) or ConversationRefID (amojo chat id)
	// is required.
	ConversationID    string `json:"conversation_id,omitempty"`
	ConversationRefID string `json:"conversation_ref_id,omitempty"`
	// ID (amojo message id) or MsgID (your message id) is required.
	ID    string `json:"id,omitempty"`
	MsgID string `json:"msgid,omitempty"`
	// User.ID or User.RefID is required.
	User ReactionUser `json:"user"`
	// Emoji is required by React.
	Emoji string `json:"emoji,omitempty"`
}

// chatReactionBody is the body of the react endpoint.
type chatReactionBody struct {
	ConversationID    string       `json:"conversation_id,omitempty"`
	ConversationRefID string       `json:"conversation_ref_id,omitempty"`
	ID                string       `json:"id,omitempty"`
	MsgID             string       `json:"msgid,omitempty"`
	User              ReactionUser `json:"user"`
	Type              string       `json:"type"`
	Emoji             string       `json:"emoji,omitempty"`
}

// React puts an emoji reaction on a message.
//
// Endpoint: POST /v2/origin/custom/{scope_id}/react (type "react")
//
//	_, err := client.Messages.React(ctx, scopeID, &kommo.ReactionRequest{
//		ConversationID: "chat-1", MsgID: "msg-1", User: kommo.ReactionUser{ID: "user-1"}, Emoji: "👍",
//	})
func (s *MessagesService) React(ctx context.Context, scopeID string, req *ReactionRequest) (*Response, error) {
	return s.react(ctx, "Messages.React", "react", scopeID, req)
}

// Unreact removes a reaction from a message.
//
// Endpoint: POST /v2/origin/custom/{scope_id}/react (type "unreact")
//
//	_, err := client.Messages.Unreact(ctx, scopeID, &kommo.ReactionRequest{
//		ConversationID: "chat-1", MsgID: "msg-1", User: kommo.ReactionUser{ID: "user-1"},
//	})
func (s *MessagesService) Unreact(ctx context.Context, scopeID string, req *ReactionRequest) (*Response, error) {
	return s.react(ctx, "Messages.Unreact", "unreact", scopeID, req)
}

func (s *MessagesService) react(ctx context.Context, op, typ, scopeID string, req *ReactionRequest) (*Response, error) {
	v := validator{op: op}
	v.require(scopeID, "scope_id")
	if req == nil {
		v.addf("request: required")
	} else {
		if req.ConversationID == "" && req.ConversationRefID == "" {
			v.addf("conversation_id or conversation_ref_id: required")
		}
		if req.ID == "" && req.MsgID == "" {
			v.addf("id or msgid: required")
		}
		if req.User.ID == "" && req.User.RefID == "" {
			v.addf("user.id or user.ref_id: required")
		}
		if typ == "react" {
			v.require(req.Emoji, "emoji")
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.client.do(ctx, &call{
		api:    chatAPI,
		method: http.MethodPost,
		path:   chatScopePath(scopeID, "react"),
		body: &chatReactionBody{
			ConversationID: req.ConversationID, ConversationRefID: req.ConversationRefID,
			ID: req.ID, MsgID: req.MsgID, User: req.User, Type: typ, Emoji: req.Emoji,
		},
	})
}

// chatCheckSend records every problem of a new_message payload.
func chatCheckSend(v *validator, r *SendMessageRequest) {
	v.require(r.ConversationID, "payload.conversation_id")
	if r.Sender == nil {
		v.addf("payload.sender: required")
	} else {
		chatCheckParticipant(v, r.Sender, "payload.sender")
	}
	if r.Receiver != nil {
		chatCheckParticipant(v, r.Receiver, "payload.receiver")
		if r.Sender != nil && r.Sender.RefID == "" {
			v.addf("payload.sender.ref_id: required for outgoing messages (the CRM user's amojo id or the channel bot id)")
		}
	}
	chatCheckSource(v, r.Source, "payload.source")
	chatCheckContent(v, r.Message, "payload.message", false)
	if r.ReplyTo != nil {
		chatCheckEmbedded(v, &r.ReplyTo.Message, "payload.reply_to.message")
	}
	if f := r.Forwards; f != nil {
		switch len(f.Messages) {
		case 0:
			v.addf("payload.forwards.messages: required")
		case 1:
			chatCheckEmbedded(v, &f.Messages[0], "payload.forwards.messages[0]")
		default:
			v.addf("payload.forwards.messages: at most 1 message can be forwarded, got %d", len(f.Messages))
		}
	}
}

// chatCheckParticipant records missing participant fields.
func chatCheckParticipant(v *validator, p *Participant, field string) {
	v.require(p.ID, field+".id")
	v.require(p.Name, field+".name")
}

// chatMaxSourceExternalID is the documented limit of source.external_id.
const chatMaxSourceExternalID = 40

// chatCheckSource checks source.external_id: 1 to 40 printable ASCII
// characters.
func chatCheckSource(v *validator, src *ChatSource, field string) {
	if src == nil {
		return
	}
	id := src.ExternalID
	switch {
	case id == "":
		v.addf("%s.external_id: required when %s is set", field, field)
	case len(id) > chatMaxSourceExternalID:
		v.addf("%s.external_id: at most %d characters, got %d", field, chatMaxSourceExternalID, len(id))
	default:
		for i := 0; i < len(id); i++ {
			if id[i] < 0x20 || id[i] > 0x7e {
				v.addf("%s.external_id: only printable ASCII characters and space are allowed", field)
				break
			}
		}
	}
}

// chatKnownType reports whether t is a documented message type.
func chatKnownType(t MessageType) bool {
	switch t {
	case MessageTypeText, MessageTypePicture, MessageTypeVideo, MessageTypeFile, MessageTypeVoice,
		MessageTypeAudio, MessageTypeSticker, MessageTypeLocation, MessageTypeContact:
		return true
	}
	return false
}

// chatCheckContent records every problem of a message object. On edit, an
// unchanged file's media, file_name and file_size may be left out.
func chatCheckContent(v *validator, m *MessageContent, field string, edit bool) {
	if m == nil {
		v.addf("%s: required", field)
		return
	}
	switch {
	case m.Type == "":
		v.addf("%s.type: required", field)
	case !chatKnownType(m.Type):
		v.addf("%s.type: unknown message type %q", field, m.Type)
	}
	switch m.Type {
	case MessageTypeText:
		if m.Text == "" {
			v.addf("%s.text: required for text messages", field)
		}
	case MessageTypePicture, MessageTypeVideo, MessageTypeFile:
		if !edit {
			if m.Media == "" {
				v.addf("%s.media: required for %s messages", field, m.Type)
			}
			if m.FileName == "" {
				v.addf("%s.file_name: required for %s messages", field, m.Type)
			}
			if m.FileSize <= 0 {
				v.addf("%s.file_size: required (bytes, above 0) for %s messages", field, m.Type)
			}
		}
	case MessageTypeVoice, MessageTypeAudio:
		if !edit && m.Media == "" {
			v.addf("%s.media: required for %s messages", field, m.Type)
		}
	case MessageTypeSticker:
		if !edit && m.Media == "" && m.StickerID == "" {
			v.addf("%s.media or %s.sticker_id: required for sticker messages", field, field)
		}
	case MessageTypeLocation:
		if m.Location == nil {
			v.addf("%s.location: required for location messages", field)
		}
	case MessageTypeContact:
		chatCheckContact(v, m.Contact, field)
	}
	if m.FileSize < 0 {
		v.addf("%s.file_size: must not be negative", field)
	}
	if m.MediaDuration < 0 {
		v.addf("%s.media_duration: must not be negative", field)
	}
	if sp := m.SharedPost; sp != nil {
		v.require(sp.URL, field+".shared_post.url")
		if sp.Type != "" && sp.Type != SharedPostTypePost {
			v.addf("%s.shared_post.type: only %q is supported, got %q", field, SharedPostTypePost, sp.Type)
		}
	}
	if p := m.Post; p != nil {
		v.require(p.ID, field+".post.id")
		v.require(p.URL, field+".post.url")
	}
	if ds := m.DeliveryStatus; ds != nil {
		if edit {
			chatCheckDelivery(v, ds.StatusCode, ds.ErrorCode, ds.Error, field+".delivery_status.")
		} else {
			v.addf("%s.delivery_status: only allowed when editing a message", field)
		}
	}
}

// chatCheckContact records missing contact card fields.
func chatCheckContact(v *validator, c *ContactCard, field string) {
	if c == nil {
		v.addf("%s.contact: required for contact messages", field)
		return
	}
	v.require(c.Name, field+".contact.name")
	v.require(c.Phone, field+".contact.phone")
}

// chatCheckEmbedded records every problem of a quoted or forwarded message.
func chatCheckEmbedded(v *validator, m *EmbeddedMessage, field string) {
	if m.ID != "" || m.MsgID != "" {
		return // Kommo fills in the rest
	}
	switch {
	case m.Type == "":
		v.addf("%s.type: required unless id or msgid is given", field)
	case !chatKnownType(m.Type):
		v.addf("%s.type: unknown message type %q", field, m.Type)
	}
	switch m.Type {
	case MessageTypeText:
		if m.Text == "" {
			v.addf("%s.text: required for text messages", field)
		}
	case MessageTypeLocation:
		if m.Location == nil {
			v.addf("%s.location: required for location messages", field)
		}
	case MessageTypeContact:
		chatCheckContact(v, m.Contact, field)
	}
	if m.Time.IsZero() {
		v.addf("%s.timestamp: required unless id or msgid is given", field)
	}
	if s := m.Sender; s == nil || (s.ID == "" && s.RefID == "" && s.Name == "") {
		v.addf("%s.sender: id, ref_id or name required unless the message's id or msgid is given", field)
	}
}

// chatCheckDelivery checks a status with its error code and text.
func chatCheckDelivery(v *validator, st DeliveryStatus, code DeliveryErrorCode, text, prefix string) {
	statusField, codeField := prefix+"delivery_status", prefix+"error_code"
	if prefix != "" {
		statusField = prefix + "status_code"
	}
	switch st {
	case DeliveryStatusDelivered, DeliveryStatusRead, DeliveryStatusError:
	case 0:
		v.addf("%s: required", statusField)
	default:
		v.addf("%s: unknown status %d (want 1 delivered, 2 read or -1 error)", statusField, st)
	}
	switch {
	case code == 0 && st == DeliveryStatusError:
		v.addf("%s: required with status -1 (901-905)", codeField)
	case code != 0 && (code < DeliveryErrorConversationDeleted || code > DeliveryErrorOther):
		v.addf("%s: unknown error code %d (want 901-905)", codeField, code)
	}
	if code == DeliveryErrorOther {
		v.require(text, prefix+"error")
	}
}
