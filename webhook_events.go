package kommo

import (
	"encoding/json"
	"time"
)

// WebhookKind names the kind of a webhook event.
type WebhookKind string

// Webhook kinds, as returned by WebhookEvent.Kind.
const (
	WebhookKindMessage  WebhookKind = "message"  // *MessageEvent
	WebhookKindTyping   WebhookKind = "typing"   // *TypingEvent
	WebhookKindReaction WebhookKind = "reaction" // *ReactionEvent
	WebhookKindUnknown  WebhookKind = "unknown"  // *UnknownEvent
)

// WebhookEvent is one decoded chat webhook: *MessageEvent, *TypingEvent,
// *ReactionEvent or *UnknownEvent. Use a type switch:
//
//	switch e := ev.(type) {
//	case *kommo.MessageEvent:  // outgoing message from a manager or bot
//	case *kommo.TypingEvent:   // a manager is typing
//	case *kommo.ReactionEvent: // a manager (un)reacted to a message
//	default:                   // *kommo.UnknownEvent: keep e.Envelope().Raw
//	}
//
// The interface is sealed: only this package implements it, so a new kind
// of hook arrives as an *UnknownEvent instead of breaking callers. The
// fields every hook carries (account id, hook time, raw body) are in the
// embedded WebhookEnvelope, reachable on every kind through Envelope.
type WebhookEvent interface {
	// Kind reports which kind of hook this is.
	Kind() WebhookKind
	// Envelope returns the fields common to every hook.
	Envelope() WebhookEnvelope
	webhookEvent()
}

// WebhookEnvelope holds the top-level fields of every chat webhook. Each
// event type embeds it, so ev.AccountID and ev.Time work directly.
type WebhookEnvelope struct {
	// AccountID is the account's amojo id ("account_id"), not the CRM id.
	AccountID string `json:"account_id"`
	// Time is when Kommo generated the hook, in Unix seconds ("time").
	Time int64 `json:"time"`
	// Raw is the verified body exactly as it was signed. It is set by
	// ParseWebhook, ParseWebhookBody and WebhookHandler, never by
	// json.Unmarshal. Store it if you want to process the hook later or
	// re-decode it with a newer SDK.
	Raw json.RawMessage `json:"-"`
}

// Envelope returns the common fields.
func (e WebhookEnvelope) Envelope() WebhookEnvelope { return e }

// SentAt returns Time as a UTC time.Time (the zero time when Time is 0).
func (e WebhookEnvelope) SentAt() time.Time { return hookUnix(e.Time, 0) }

func hookUnix(sec, msec int64) time.Time {
	switch {
	case msec != 0:
		return time.UnixMilli(msec).UTC()
	case sec != 0:
		return time.Unix(sec, 0).UTC()
	}
	return time.Time{}
}

// WebhookConversation identifies a chat in a webhook.
type WebhookConversation struct {
	// ID is the amojo chat id (the conversation_ref_id of send requests).
	ID string `json:"id"`
	// ClientID is your chat id. It is empty for a chat a manager opened
	// with "Write first": bind it by sending your next message with both
	// conversation_id (your new id) and conversation_ref_id (ID).
	ClientID string `json:"client_id,omitempty"`
}

// MessageEvent is the outgoing message hook (v2): a manager or the Salesbot
// wrote in a chat of your channel and you must deliver the message to the
// messenger. Report delivery with the amojo message id
// Message.ID.
//
// The Go fields flatten Kommo's envelope: Conversation is
// message.conversation, Message is message.message, and so on.
// json.Marshal of a *MessageEvent produces Kommo's wire shape again, so an
// event can be queued and decoded later with json.Unmarshal.
type MessageEvent struct {
	WebhookEnvelope
	// Conversation is the chat; Conversation.ClientID is empty for a chat
	// opened with "Write first" (see IsWriteFirst).
	Conversation WebhookConversation
	// Source tells which of your sources (numbers) to send from.
	Source ChatSource
	// Sender is the manager or bot who wrote.
	Sender ChatUser
	// Receiver is the client.
	Receiver ChatUser
	// Timestamp and MsecTimestamp are when the message was written, in Unix
	// seconds and milliseconds.
	Timestamp     int64
	MsecTimestamp int64
	// Message is the message itself.
	Message ChatMessage
}

// MarkupModeInline is Markup.Mode for a keyboard of inline buttons.
const MarkupModeInline = "inline"

// Markup is the keyboard attached to an outgoing message: either rows of
// inline buttons (Mode "inline", Buttons) or a WhatsApp List Message
// (ListMessage, with no Mode or Buttons).
type Markup struct {
	Mode string `json:"mode,omitempty"`
	// Buttons holds rows of buttons.
	Buttons     [][]InlineButton `json:"buttons,omitempty"`
	ListMessage *ListMessage     `json:"list_message,omitempty"`
}

// IsInline reports whether m is a keyboard of inline buttons.
func (m *Markup) IsInline() bool {
	return m != nil && (m.Mode == MarkupModeInline || (m.Mode == "" && len(m.Buttons) > 0))
}

// IsListMessage reports whether m is a WhatsApp List Message.
func (m *Markup) IsListMessage() bool { return m != nil && m.ListMessage != nil }

// InlineButton is one button of an inline keyboard; URL is set for link
// buttons.
type InlineButton struct {
	Text string `json:"text"`
	URL  string `json:"url,omitempty"`
}

// ListMessage is a WhatsApp List Message: a button that opens sections of
// selectable rows. When the client picks a row, send their reply with the
// row's CallbackData so the Salesbot continues.
type ListMessage struct {
	Header   string               `json:"header,omitempty"`
	Body     string               `json:"body,omitempty"`
	Footer   string               `json:"footer,omitempty"`
	Button   string               `json:"button,omitempty"`
	Sections []ListMessageSection `json:"sections,omitempty"`
}

// ListMessageSection is a titled group of rows in a List Message.
type ListMessageSection struct {
	Title string           `json:"title,omitempty"`
	Rows  []ListMessageRow `json:"rows,omitempty"`
}

// ListMessageRow is one choice in a List Message.
type ListMessageRow struct {
	CallbackData string `json:"callback_data,omitempty"`
	Title        string `json:"title,omitempty"`
	Description  string `json:"description,omitempty"`
}

// Template (the message template a manager sent) is in templates.go.

// WebhookReplyTo is the message a webhook or history message quotes.
// Kommo's references disagree on its shape: {"message":{…}} (RU reference)
// or the quoted message's fields directly under reply_to
// (developers.kommo.com). Both decode into Message; it encodes nested.
type WebhookReplyTo struct {
	Message WebhookEmbeddedMessage `json:"message"`
}

// WebhookForwards holds the messages a MessageEvent forwards (currently at
// most one) and the amojo id of the chat they came from.
type WebhookForwards struct {
	Messages          []WebhookEmbeddedMessage `json:"messages"`
	ConversationRefID string                   `json:"conversation_ref_id,omitempty"`
	ConversationID    string                   `json:"conversation_id,omitempty"`
}

// WebhookEmbeddedMessage is a message quoted, forwarded or reacted to inside
// a hook. Kommo fills a subset of the fields.
type WebhookEmbeddedMessage struct {
	// ID is the amojo message id.
	ID string `json:"id,omitempty"`
	// MsgID (msgid) and ClientID (client_id) are your message id, under the
	// names Kommo uses in quoted and reacted messages respectively.
	MsgID     string      `json:"msgid,omitempty"`
	ClientID  string      `json:"client_id,omitempty"`
	Type      MessageType `json:"type,omitempty"`
	Text      string      `json:"text,omitempty"`
	Media     string      `json:"media,omitempty"`
	Thumbnail string      `json:"thumbnail,omitempty"`
	FileName  string      `json:"file_name,omitempty"`
	// FileSize decodes from a number or a string.
	FileSize      int64        `json:"file_size,omitempty"`
	Location      *Location    `json:"location,omitempty"`
	Contact       *ContactCard `json:"contact,omitempty"`
	Timestamp     int64        `json:"timestamp,omitempty"`
	MsecTimestamp int64        `json:"msec_timestamp,omitempty"`
	Sender        ChatUser     `json:"sender,omitzero"`
	Receiver      ChatUser     `json:"receiver,omitzero"`
}

// webhookEmbeddedPlain is WebhookEmbeddedMessage without its methods.
type webhookEmbeddedPlain WebhookEmbeddedMessage

// embeddedWire is WebhookEmbeddedMessage as Kommo sends it: file_size a
// number or a string. Its FileSize shadows the embedded one.
type embeddedWire struct {
	webhookEmbeddedPlain
	FileSize jsonSize `json:"file_size,omitempty"`
}

func embeddedToWire(m *WebhookEmbeddedMessage) embeddedWire {
	return embeddedWire{webhookEmbeddedPlain(*m), jsonSize(m.FileSize)}
}

func (w *embeddedWire) message() WebhookEmbeddedMessage {
	m := WebhookEmbeddedMessage(w.webhookEmbeddedPlain)
	m.FileSize = int64(w.FileSize)
	return m
}

// UnmarshalJSON decodes an embedded message, whose file_size may be a
// number or a string of digits.
func (m *WebhookEmbeddedMessage) UnmarshalJSON(b []byte) error {
	w := embeddedToWire(m)
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = w.message()
	return nil
}

// replyToWire is reply_to in either documented form: nested,
// {"message":{…}} (RU reference, what Messages.Send sends), or flat, the
// embedded message's fields directly under reply_to (developers.kommo.com
// reference). The flat fields decode into the embedded embeddedWire. It
// encodes the nested form (the flat fields are all empty then).
type replyToWire struct {
	Message *embeddedWire `json:"message,omitempty"`
	embeddedWire
}

func replyToToWire(r *WebhookReplyTo) *replyToWire {
	if r == nil {
		return nil
	}
	m := embeddedToWire(&r.Message)
	return &replyToWire{Message: &m}
}

func (w *replyToWire) replyTo() *WebhookReplyTo {
	if w == nil {
		return nil
	}
	if w.Message != nil {
		return &WebhookReplyTo{Message: w.Message.message()}
	}
	return &WebhookReplyTo{Message: w.embeddedWire.message()}
}

// UnmarshalJSON decodes both documented forms of reply_to: nested under
// "message" and flat (the quoted message's fields directly under
// reply_to). When both are present, the nested one wins.
func (r *WebhookReplyTo) UnmarshalJSON(b []byte) error {
	var w replyToWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = *w.replyTo()
	return nil
}

// forwardsWire is WebhookForwards as Kommo sends it.
type forwardsWire struct {
	Messages          []embeddedWire `json:"messages"`
	ConversationRefID string         `json:"conversation_ref_id,omitempty"`
	ConversationID    string         `json:"conversation_id,omitempty"`
}

func forwardsToWire(f *WebhookForwards) *forwardsWire {
	if f == nil {
		return nil
	}
	w := &forwardsWire{ConversationRefID: f.ConversationRefID, ConversationID: f.ConversationID}
	if f.Messages != nil {
		w.Messages = make([]embeddedWire, len(f.Messages))
		for i := range f.Messages {
			w.Messages[i] = embeddedToWire(&f.Messages[i])
		}
	}
	return w
}

func (w *forwardsWire) forwards() *WebhookForwards {
	if w == nil {
		return nil
	}
	f := &WebhookForwards{ConversationRefID: w.ConversationRefID, ConversationID: w.ConversationID}
	if w.Messages != nil {
		f.Messages = make([]WebhookEmbeddedMessage, len(w.Messages))
		for i := range w.Messages {
			f.Messages[i] = w.Messages[i].message()
		}
	}
	return f
}

// Kind returns WebhookKindMessage.
func (*MessageEvent) Kind() WebhookKind { return WebhookKindMessage }
func (*MessageEvent) webhookEvent()     {}

// IsWriteFirst reports whether the chat was opened by a manager with
// "Write first": Kommo sends no client chat id then. Reply with
// both your new conversation_id and conversation_ref_id = Conversation.ID
// to bind the chat, and use Receiver.Phone and Source.ExternalID to reach
// the client.
func (e *MessageEvent) IsWriteFirst() bool { return e.Conversation.ClientID == "" }

// IsCommentReply reports whether the message replies to a social-post
// comment.
func (e *MessageEvent) IsCommentReply() bool { return e.Message.Post != nil }

// MessageTime returns when the message was written (MsecTimestamp, else
// Timestamp) in UTC.
func (e *MessageEvent) MessageTime() time.Time { return hookUnix(e.Timestamp, e.MsecTimestamp) }

// hookMessageInner is the "message" object of Kommo's outgoing message
// hook. Its event and MessageEvent.inner are the one mapping between the
// wire shape and MessageEvent.
type hookMessageInner struct {
	Receiver      ChatUser            `json:"receiver"`
	Sender        ChatUser            `json:"sender"`
	Conversation  WebhookConversation `json:"conversation"`
	Source        ChatSource          `json:"source,omitzero"`
	Timestamp     int64               `json:"timestamp"`
	MsecTimestamp int64               `json:"msec_timestamp"`
	Message       *chatMessageWire    `json:"message"`
}

func (m *hookMessageInner) event(env WebhookEnvelope) *MessageEvent {
	e := &MessageEvent{
		WebhookEnvelope: env,
		Conversation:    m.Conversation, Source: m.Source, Sender: m.Sender, Receiver: m.Receiver,
		Timestamp: m.Timestamp, MsecTimestamp: m.MsecTimestamp,
	}
	if m.Message != nil {
		e.Message = m.Message.message()
	}
	return e
}

func (e *MessageEvent) inner() hookMessageInner {
	return hookMessageInner{
		Receiver: e.Receiver, Sender: e.Sender, Conversation: e.Conversation, Source: e.Source,
		Timestamp: e.Timestamp, MsecTimestamp: e.MsecTimestamp, Message: chatMessageToWire(&e.Message),
	}
}

// hookMessageWire is MessageEvent in Kommo's shape.
type hookMessageWire struct {
	AccountID string           `json:"account_id"`
	Time      int64            `json:"time"`
	Message   hookMessageInner `json:"message"`
}

// UnmarshalJSON decodes Kommo's outgoing message hook. It leaves Raw alone.
func (e *MessageEvent) UnmarshalJSON(b []byte) error {
	var w hookMessageWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = *w.Message.event(WebhookEnvelope{AccountID: w.AccountID, Time: w.Time, Raw: e.Raw})
	return nil
}

// MarshalJSON encodes e in Kommo's wire shape.
func (e *MessageEvent) MarshalJSON() ([]byte, error) {
	return json.Marshal(&hookMessageWire{AccountID: e.AccountID, Time: e.Time, Message: e.inner()})
}

// TypingEvent says a manager is typing in a chat. Kommo sends it
// at most once per 5 seconds, only when the channel subscribed to it via
// support.
type TypingEvent struct {
	WebhookEnvelope
	// User is the manager (only ID is set).
	User ChatUser
	// Conversation is the chat; ClientID is empty for "Write first" chats.
	Conversation WebhookConversation
	// ExpiredAt is when the typing indicator ends, in Unix seconds (the
	// start plus 5 s).
	ExpiredAt int64
	// PostID is set when the manager is replying to a post comment.
	PostID string
}

// Kind returns WebhookKindTyping.
func (*TypingEvent) Kind() WebhookKind { return WebhookKindTyping }
func (*TypingEvent) webhookEvent()     {}

// Expiry returns ExpiredAt as a UTC time.Time.
func (e *TypingEvent) Expiry() time.Time { return hookUnix(e.ExpiredAt, 0) }

// hookTypingInner is action.typing. Its event and TypingEvent.inner are the
// one mapping between the wire shape and TypingEvent.
type hookTypingInner struct {
	User         ChatUser            `json:"user"`
	Conversation WebhookConversation `json:"conversation"`
	ExpiredAt    int64               `json:"expired_at"`
	PostID       string              `json:"post_id,omitempty"`
}

// event maps the hook to a TypingEvent; actionUser is action.user, used
// when action.typing.user is empty.
func (t *hookTypingInner) event(env WebhookEnvelope, actionUser *ChatUser) *TypingEvent {
	user := t.User
	if user.ID == "" && actionUser != nil {
		user = *actionUser
	}
	return &TypingEvent{
		WebhookEnvelope: env,
		User:            user, Conversation: t.Conversation, ExpiredAt: t.ExpiredAt, PostID: t.PostID,
	}
}

func (e *TypingEvent) inner() hookTypingInner {
	return hookTypingInner{User: e.User, Conversation: e.Conversation, ExpiredAt: e.ExpiredAt, PostID: e.PostID}
}

type hookTypingWire struct {
	AccountID string `json:"account_id"`
	Time      int64  `json:"time"`
	Action    struct {
		Typing hookTypingInner `json:"typing"`
		// The spec's field table puts the user at action.user; the example
		// at action.typing.user. Both are read.
		User *ChatUser `json:"user,omitempty"`
	} `json:"action"`
}

// UnmarshalJSON decodes Kommo's typing hook (user at action.typing.user or,
// as the field table says, action.user). It leaves Raw alone.
func (e *TypingEvent) UnmarshalJSON(b []byte) error {
	var w hookTypingWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = *w.Action.Typing.event(WebhookEnvelope{AccountID: w.AccountID, Time: w.Time, Raw: e.Raw}, w.Action.User)
	return nil
}

// MarshalJSON encodes e in Kommo's wire shape (user at action.typing.user).
func (e *TypingEvent) MarshalJSON() ([]byte, error) {
	w := hookTypingWire{AccountID: e.AccountID, Time: e.Time}
	w.Action.Typing = e.inner()
	return json.Marshal(&w)
}

// ReactionEvent says a manager reacted to a message or took the reaction
// back. Kommo has sent two shapes: the documented one with only
// MsgID, and since September 2023 one that also embeds Message. Both decode;
// MessageID picks the best id.
type ReactionEvent struct {
	WebhookEnvelope
	// MsgID is the reacted message's id as the hook's msgid field.
	MsgID string
	// Message is the reacted message (newer shape; nil when absent).
	Message *WebhookEmbeddedMessage
	// User is who (un)reacted (only ID is set).
	User         ChatUser
	Conversation WebhookConversation
	// Type is "react" or "unreact".
	Type string
	// Emoji is the reaction; empty for unreact.
	Emoji string
}

// Kind returns WebhookKindReaction.
func (*ReactionEvent) Kind() WebhookKind { return WebhookKindReaction }
func (*ReactionEvent) webhookEvent()     {}

// IsReact reports whether a reaction was added.
func (e *ReactionEvent) IsReact() bool { return e.Type == "react" }

// IsUnreact reports whether a reaction was removed.
func (e *ReactionEvent) IsUnreact() bool { return e.Type == "unreact" }

// MessageID returns the amojo id of the reacted message: Message.ID when
// the newer shape carries it, else MsgID.
func (e *ReactionEvent) MessageID() string {
	if e.Message != nil && e.Message.ID != "" {
		return e.Message.ID
	}
	return e.MsgID
}

type hookReactionWire struct {
	AccountID string `json:"account_id"`
	Time      int64  `json:"time"`
	Action    struct {
		Reaction hookReactionInner `json:"reaction"`
	} `json:"action"`
}

// hookReactionInner is action.reaction. Its event and ReactionEvent.inner
// are the one mapping between the wire shape and ReactionEvent.
type hookReactionInner struct {
	MsgID        string              `json:"msgid,omitempty"`
	Message      *embeddedWire       `json:"message,omitempty"`
	User         ChatUser            `json:"user"`
	Conversation WebhookConversation `json:"conversation"`
	Type         string              `json:"type"`
	Emoji        string              `json:"emoji,omitempty"`
}

func (r *hookReactionInner) event(env WebhookEnvelope) *ReactionEvent {
	e := &ReactionEvent{
		WebhookEnvelope: env,
		MsgID:           r.MsgID, User: r.User, Conversation: r.Conversation,
		Type: r.Type, Emoji: r.Emoji,
	}
	if r.Message != nil {
		m := r.Message.message()
		e.Message = &m
	}
	return e
}

func (e *ReactionEvent) inner() hookReactionInner {
	r := hookReactionInner{
		MsgID: e.MsgID, User: e.User, Conversation: e.Conversation,
		Type: e.Type, Emoji: e.Emoji,
	}
	if e.Message != nil {
		m := embeddedToWire(e.Message)
		r.Message = &m
	}
	return r
}

// UnmarshalJSON decodes Kommo's reaction hook. It leaves Raw alone.
func (e *ReactionEvent) UnmarshalJSON(b []byte) error {
	var w hookReactionWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = *w.Action.Reaction.event(WebhookEnvelope{AccountID: w.AccountID, Time: w.Time, Raw: e.Raw})
	return nil
}

// MarshalJSON encodes e in Kommo's wire shape.
func (e *ReactionEvent) MarshalJSON() ([]byte, error) {
	w := hookReactionWire{AccountID: e.AccountID, Time: e.Time}
	w.Action.Reaction = e.inner()
	return json.Marshal(&w)
}

// UnknownEvent is a verified hook this SDK does not recognise: a kind of
// hook added after this version, or a known kind whose fields had
// unexpected JSON types. Raw (in the envelope) keeps the whole body so
// nothing is lost; AccountID and Time are filled when present.
type UnknownEvent struct {
	WebhookEnvelope
	// Err is nil for an unrecognised kind. For a body shaped like a known
	// kind (it has "message.message", "action.typing" or
	// "action.reaction") that could not be decoded into its type, Err
	// matches ErrWebhookMalformed and wraps the *json.UnmarshalTypeError.
	Err error
}

// Kind returns WebhookKindUnknown.
func (*UnknownEvent) Kind() WebhookKind { return WebhookKindUnknown }
func (*UnknownEvent) webhookEvent()     {}

// MarshalJSON returns Raw when it holds JSON, else the envelope fields.
func (e *UnknownEvent) MarshalJSON() ([]byte, error) {
	if len(e.Raw) > 0 && json.Valid(e.Raw) {
		return append([]byte(nil), e.Raw...), nil
	}
	return json.Marshal(struct {
		AccountID string `json:"account_id"`
		Time      int64  `json:"time"`
	}{e.AccountID, e.Time})
}
