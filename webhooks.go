package kommo

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Webhook defaults.
const (
	// WebhookDefaultMaxBodySize caps a webhook body (1 MiB) unless
	// WithWebhookMaxBodySize says otherwise. Chat hooks are a few KiB.
	WebhookDefaultMaxBodySize int64 = 1 << 20

	// WebhookDefaultTimeout bounds the WebhookHandler callback. Kommo waits
	// at most 5 s for a 200 and never retries, so the answer must leave
	// before that.
	WebhookDefaultTimeout = 4 * time.Second

	// WebhookDefaultDedupeCapacity is how many webhook keys the default
	// in-memory dedupe store of a WebhookHandler remembers.
	WebhookDefaultDedupeCapacity = 10000
)

// Webhook errors. Every error from ParseWebhook, ParseWebhookBody and the
// WebhookHandler's error hook matches one of these (or ErrInvalidSignature)
// with errors.Is. None of them contains the body or the signature.
var (
	// ErrWebhookTooLarge: the body is larger than the configured cap (413).
	ErrWebhookTooLarge = errors.New("kommo: webhook body too large")

	// ErrWebhookMalformed: the signature is valid but the body is not a
	// JSON object (400). The *json.SyntaxError or *json.UnmarshalTypeError
	// is wrapped too.
	ErrWebhookMalformed = errors.New("kommo: malformed webhook body")

	// ErrWebhookMethodNotAllowed: the request is not a POST (405).
	ErrWebhookMethodNotAllowed = errors.New("kommo: webhook method not allowed")

	// ErrWebhookBodyRead: the body could not be read, e.g. the sender hung
	// up (400).
	ErrWebhookBodyRead = errors.New("kommo: reading webhook body")

	// ErrWebhookTimeout: the callback did not return within the handler's
	// timeout (500). context.DeadlineExceeded is wrapped too.
	ErrWebhookTimeout = errors.New("kommo: webhook callback timed out")

	// ErrWebhookCallback: the callback returned an error or panicked (500).
	// The callback's own error is wrapped too.
	ErrWebhookCallback = errors.New("kommo: webhook callback failed")

	// ErrWebhookDedupe: the dedupe store failed. The handler fails open (it
	// still runs the callback and answers by its result) and reports this
	// through the error hook.
	ErrWebhookDedupe = errors.New("kommo: webhook dedupe store failed")
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

// WebhookSource is the source a message belongs to, for integrations with
// several sources (e.g. several phone numbers).
type WebhookSource struct {
	ExternalID string `json:"external_id,omitempty"`
}

// WebhookParticipant is a sender, receiver or user in a webhook. Kommo
// fills only some fields: a manager usually has ID and Name, a client ID,
// ClientID and, when a profile was passed, Phone and Email.
type WebhookParticipant struct {
	// ID is the participant's amojo id.
	ID string `json:"id"`
	// ClientID is your participant id (external participants only).
	ClientID string `json:"client_id,omitempty"`
	Name     string `json:"name,omitempty"`
	Avatar   string `json:"avatar,omitempty"`
	// Phone is the client's phone; for "Write first" it is the number the
	// manager chose. Kommo sends "" when no profile was passed.
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
}

// MessageEvent is the outgoing message hook (v2): a manager or the Salesbot
// wrote in a chat of your channel and you must deliver the message to the
// messenger (spec §3.1). Report delivery with the amojo message id
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
	Source WebhookSource
	// Sender is the manager or bot who wrote.
	Sender WebhookParticipant
	// Receiver is the client.
	Receiver WebhookParticipant
	// Timestamp and MsecTimestamp are when the message was written, in Unix
	// seconds and milliseconds.
	Timestamp     int64
	MsecTimestamp int64
	// Message is the message itself.
	Message WebhookMessage
}

// WebhookMessage is the message inside a MessageEvent (message.message).
// Optional fields may be absent; absent fields are zero.
type WebhookMessage struct {
	// ID is the amojo message id; pass it to Messages.UpdateDeliveryStatus.
	ID   string      `json:"id"`
	Type MessageType `json:"type"`
	Text string      `json:"text"`
	// Tag is not used for third-party integrations (usually "").
	Tag string `json:"tag,omitempty"`
	// Media is the download URL of a picture, file, video, voice, audio or
	// sticker.
	Media string `json:"media,omitempty"`
	// Thumbnail is a preview URL (pictures and videos).
	Thumbnail string `json:"thumbnail,omitempty"`
	FileName  string `json:"file_name,omitempty"`
	FileSize  int64  `json:"file_size,omitempty"`
	// MediaGroupID is shared by the hooks of one message with several
	// attachments (Kommo sends one hook per attachment).
	MediaGroupID string `json:"media_group_id,omitempty"`
	// Location and Contact are set for location and contact messages.
	Location *Location    `json:"location,omitempty"`
	Contact  *ContactCard `json:"contact,omitempty"`
	// Markup is a keyboard of inline buttons or a WhatsApp List Message;
	// nil when Kommo sends none (or null).
	Markup *Markup `json:"markup,omitempty"`
	// Template is set when the manager sent a message template.
	Template *Template `json:"template,omitempty"`
	// ReplyTo is the quoted message (quoting must be enabled by support).
	ReplyTo *WebhookReplyTo `json:"reply_to,omitempty"`
	// Forwards holds forwarded messages (enabled by support).
	Forwards *WebhookForwards `json:"forwards,omitempty"`
	// Post is set when the message replies to a social-post comment
	// (spec §3.5).
	Post *WebhookPost `json:"post,omitempty"`
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

// Template is the message template a manager sent. Content holds the
// placeholders; Params their values; the message Text is already filled in.
type Template struct {
	ID         int64           `json:"id"`
	ExternalID string          `json:"external_id,omitempty"`
	Content    string          `json:"content,omitempty"`
	Params     []TemplateParam `json:"params,omitempty"`
}

// TemplateParam is one placeholder of a Template and its value.
type TemplateParam struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// WebhookReplyTo is the message a MessageEvent quotes.
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

// WebhookPost is the social post a comment reply belongs to.
type WebhookPost struct {
	// ID is your post id.
	ID               string `json:"id"`
	URL              string `json:"url,omitempty"`
	PreviewURL       string `json:"preview_url,omitempty"`
	PreviewPermalink string `json:"preview_permalink,omitempty"`
	Username         string `json:"username,omitempty"`
	Caption          string `json:"caption,omitempty"`
}

// WebhookEmbeddedMessage is a message quoted, forwarded or reacted to inside
// a hook. Kommo fills a subset of the fields.
type WebhookEmbeddedMessage struct {
	// ID is the amojo message id.
	ID string `json:"id,omitempty"`
	// MsgID (msgid) and ClientID (client_id) are your message id, under the
	// names Kommo uses in quoted and reacted messages respectively.
	MsgID         string             `json:"msgid,omitempty"`
	ClientID      string             `json:"client_id,omitempty"`
	Type          MessageType        `json:"type,omitempty"`
	Text          string             `json:"text,omitempty"`
	Media         string             `json:"media,omitempty"`
	Thumbnail     string             `json:"thumbnail,omitempty"`
	FileName      string             `json:"file_name,omitempty"`
	FileSize      int64              `json:"file_size,omitempty"`
	Location      *Location          `json:"location,omitempty"`
	Contact       *ContactCard       `json:"contact,omitempty"`
	Timestamp     int64              `json:"timestamp,omitempty"`
	MsecTimestamp int64              `json:"msec_timestamp,omitempty"`
	Sender        WebhookParticipant `json:"sender,omitzero"`
	Receiver      WebhookParticipant `json:"receiver,omitzero"`
}

// Kind returns WebhookKindMessage.
func (*MessageEvent) Kind() WebhookKind { return WebhookKindMessage }
func (*MessageEvent) webhookEvent()     {}

// IsWriteFirst reports whether the chat was opened by a manager with
// "Write first" (spec §3.2): Kommo sends no client chat id then. Reply with
// both your new conversation_id and conversation_ref_id = Conversation.ID
// to bind the chat, and use Receiver.Phone and Source.ExternalID to reach
// the client.
func (e *MessageEvent) IsWriteFirst() bool { return e.Conversation.ClientID == "" }

// IsCommentReply reports whether the message replies to a social-post
// comment (spec §3.5).
func (e *MessageEvent) IsCommentReply() bool { return e.Message.Post != nil }

// MessageTime returns when the message was written (MsecTimestamp, else
// Timestamp) in UTC.
func (e *MessageEvent) MessageTime() time.Time { return hookUnix(e.Timestamp, e.MsecTimestamp) }

// hookMessageWire is MessageEvent in Kommo's shape.
type hookMessageWire struct {
	AccountID string `json:"account_id"`
	Time      int64  `json:"time"`
	Message   struct {
		Receiver      WebhookParticipant  `json:"receiver"`
		Sender        WebhookParticipant  `json:"sender"`
		Conversation  WebhookConversation `json:"conversation"`
		Source        WebhookSource       `json:"source,omitzero"`
		Timestamp     int64               `json:"timestamp"`
		MsecTimestamp int64               `json:"msec_timestamp"`
		Message       WebhookMessage      `json:"message"`
	} `json:"message"`
}

// UnmarshalJSON decodes Kommo's outgoing message hook. It leaves Raw alone.
func (e *MessageEvent) UnmarshalJSON(b []byte) error {
	var w hookMessageWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	m := w.Message
	*e = MessageEvent{
		WebhookEnvelope: WebhookEnvelope{AccountID: w.AccountID, Time: w.Time, Raw: e.Raw},
		Conversation:    m.Conversation, Source: m.Source, Sender: m.Sender, Receiver: m.Receiver,
		Timestamp: m.Timestamp, MsecTimestamp: m.MsecTimestamp, Message: m.Message,
	}
	return nil
}

// MarshalJSON encodes e in Kommo's wire shape.
func (e *MessageEvent) MarshalJSON() ([]byte, error) {
	var w hookMessageWire
	w.AccountID, w.Time = e.AccountID, e.Time
	w.Message.Receiver, w.Message.Sender = e.Receiver, e.Sender
	w.Message.Conversation, w.Message.Source = e.Conversation, e.Source
	w.Message.Timestamp, w.Message.MsecTimestamp = e.Timestamp, e.MsecTimestamp
	w.Message.Message = e.Message
	return json.Marshal(&w)
}

// TypingEvent says a manager is typing in a chat (spec §3.3). Kommo sends it
// at most once per 5 seconds, only when the channel subscribed to it via
// support.
type TypingEvent struct {
	WebhookEnvelope
	// User is the manager (only ID is set).
	User WebhookParticipant
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

// hookTypingInner is action.typing.
type hookTypingInner struct {
	User         WebhookParticipant  `json:"user"`
	Conversation WebhookConversation `json:"conversation"`
	ExpiredAt    int64               `json:"expired_at"`
	PostID       string              `json:"post_id,omitempty"`
}

type hookTypingWire struct {
	AccountID string `json:"account_id"`
	Time      int64  `json:"time"`
	Action    struct {
		Typing hookTypingInner `json:"typing"`
		// The spec's field table puts the user at action.user; the example
		// at action.typing.user. Both are read.
		User *WebhookParticipant `json:"user,omitempty"`
	} `json:"action"`
}

// UnmarshalJSON decodes Kommo's typing hook (user at action.typing.user or,
// as the field table says, action.user). It leaves Raw alone.
func (e *TypingEvent) UnmarshalJSON(b []byte) error {
	var w hookTypingWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	t := w.Action.Typing
	if t.User.ID == "" && w.Action.User != nil {
		t.User = *w.Action.User
	}
	*e = TypingEvent{
		WebhookEnvelope: WebhookEnvelope{AccountID: w.AccountID, Time: w.Time, Raw: e.Raw},
		User:            t.User, Conversation: t.Conversation, ExpiredAt: t.ExpiredAt, PostID: t.PostID,
	}
	return nil
}

// MarshalJSON encodes e in Kommo's wire shape (user at action.typing.user).
func (e *TypingEvent) MarshalJSON() ([]byte, error) {
	var w hookTypingWire
	w.AccountID, w.Time = e.AccountID, e.Time
	t := &w.Action.Typing
	t.User, t.Conversation, t.ExpiredAt, t.PostID = e.User, e.Conversation, e.ExpiredAt, e.PostID
	return json.Marshal(&w)
}

// ReactionEvent says a manager reacted to a message or took the reaction
// back (spec §3.4). Kommo has sent two shapes: the documented one with only
// MsgID, and since September 2023 one that also embeds Message. Both decode;
// MessageID picks the best id.
type ReactionEvent struct {
	WebhookEnvelope
	// MsgID is the reacted message's id as the hook's msgid field.
	MsgID string
	// Message is the reacted message (newer shape; nil when absent).
	Message *WebhookEmbeddedMessage
	// User is who (un)reacted (only ID is set).
	User         WebhookParticipant
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

// hookReactionInner is action.reaction.
type hookReactionInner struct {
	MsgID        string                  `json:"msgid,omitempty"`
	Message      *WebhookEmbeddedMessage `json:"message,omitempty"`
	User         WebhookParticipant      `json:"user"`
	Conversation WebhookConversation     `json:"conversation"`
	Type         string                  `json:"type"`
	Emoji        string                  `json:"emoji,omitempty"`
}

// UnmarshalJSON decodes Kommo's reaction hook. It leaves Raw alone.
func (e *ReactionEvent) UnmarshalJSON(b []byte) error {
	var w hookReactionWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	r := w.Action.Reaction
	*e = ReactionEvent{
		WebhookEnvelope: WebhookEnvelope{AccountID: w.AccountID, Time: w.Time, Raw: e.Raw},
		MsgID:           r.MsgID, Message: r.Message, User: r.User, Conversation: r.Conversation,
		Type: r.Type, Emoji: r.Emoji,
	}
	return nil
}

// MarshalJSON encodes e in Kommo's wire shape.
func (e *ReactionEvent) MarshalJSON() ([]byte, error) {
	var w hookReactionWire
	w.AccountID, w.Time = e.AccountID, e.Time
	r := &w.Action.Reaction
	r.MsgID, r.Message, r.User, r.Conversation, r.Type, r.Emoji = e.MsgID, e.Message, e.User, e.Conversation, e.Type, e.Emoji
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

// WebhookOption configures ParseWebhook, ParseWebhookBody and
// NewWebhookHandler. Options that only concern the handler (timeout, dedupe,
// error hook, logger) are ignored by the parse functions.
type WebhookOption func(*webhookConfig)

type webhookConfig struct {
	secrets  []string
	maxBody  int64
	timeout  time.Duration
	strict   bool
	dedupe   WebhookDedupeStore
	dedupeOK bool // WithWebhookDedupe was given
	onError  func(*http.Request, error)
	logger   *slog.Logger
	problems []error
}

func (c *webhookConfig) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Errorf("kommo: "+format, args...))
}

// WithWebhookMaxBodySize caps the body at n bytes (default 1 MiB). A larger
// body fails with ErrWebhookTooLarge (413 from WebhookHandler). n must be
// positive.
func WithWebhookMaxBodySize(n int64) WebhookOption {
	return func(c *webhookConfig) {
		if n <= 0 {
			c.addf("WithWebhookMaxBodySize: size must be positive, got %d", n)
			return
		}
		c.maxBody = n
	}
}

// WithWebhookTimeout bounds the WebhookHandler callback (default 4 s). When
// it expires the handler answers 500 at once and cancels the callback's
// context. The clock starts once the body has been read and verified, so
// keep d below Kommo's 5 s with some room. d must be positive.
func WithWebhookTimeout(d time.Duration) WebhookOption {
	return func(c *webhookConfig) {
		if d <= 0 {
			c.addf("WithWebhookTimeout: timeout must be positive, got %s", d)
			return
		}
		c.timeout = d
	}
}

// WithWebhookSecrets accepts signatures made with the previous channel
// secrets too, for a secret rotation: deploy with the new secret as the
// main one and the old one here, then drop it. Empty strings are ignored.
func WithWebhookSecrets(previous ...string) WebhookOption {
	return func(c *webhookConfig) {
		for _, s := range previous {
			if s != "" {
				c.secrets = append(c.secrets, s)
			}
		}
	}
}

// WithWebhookStrictSignature accepts only a signature over the exact body.
// By default a body whose signature does not match is checked once more
// with one trailing "\n" or "\r\n" removed, as open-source validators do:
// it is UNCONFIRMED whether Kommo ever appends one, and the trimmed bytes
// decode to the same JSON, so the fallback cannot admit a forged event.
func WithWebhookStrictSignature() WebhookOption {
	return func(c *webhookConfig) { c.strict = true }
}

// WithWebhookDedupe sets the store that remembers handled hooks, so a
// replayed body is acknowledged with 200 without running the callback
// again. The default is NewMemoryDedupe(WebhookDefaultDedupeCapacity) per
// handler; pass a shared store (e.g. backed by Redis) when several
// instances serve the webhook URL, or nil to turn deduplication off.
//
// A copy that arrives while its twin's callback is still running is answered
// 200 too without running the callback; the twin's outcome is what counts
// (and if it fails, the key is released so a later replay runs again).
//
// Kommo signs only the body, so the signature cannot stop a replay; it also
// never retries, so a genuine duplicate is rare and a replay is suspect.
func WithWebhookDedupe(store WebhookDedupeStore) WebhookOption {
	return func(c *webhookConfig) { c.dedupe, c.dedupeOK = store, true }
}

// WithWebhookErrorHandler registers fn to be called, synchronously and
// before the response is written, with every failure: each non-200 answer
// and each dedupe store error. Use it for metrics or alerts: Kommo never
// redelivers, so a failure reported here is a message to recover by hand
// (e.g. from History). The request body has been consumed.
func WithWebhookErrorHandler(fn func(r *http.Request, err error)) WebhookOption {
	return func(c *webhookConfig) { c.onError = fn }
}

// WithWebhookLogger logs failures at warn (4xx) and error (5xx) level and
// successes and duplicates at debug level. Bodies and signatures are never
// logged. The default discards logs.
func WithWebhookLogger(l *slog.Logger) WebhookOption {
	return func(c *webhookConfig) {
		if l == nil {
			c.addf("WithWebhookLogger: nil logger")
			return
		}
		c.logger = l
	}
}

func newWebhookConfig(secret string, opts []WebhookOption) (*webhookConfig, error) {
	c := &webhookConfig{
		maxBody: WebhookDefaultMaxBodySize,
		timeout: WebhookDefaultTimeout,
		logger:  slog.New(slog.DiscardHandler),
	}
	if secret != "" {
		c.secrets = append(c.secrets, secret)
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c, errors.Join(c.problems...)
}

// ParseWebhook verifies and decodes one chat webhook request: it reads the
// body once (at most 1 MiB unless WithWebhookMaxBodySize says otherwise),
// checks X-Signature (hex HMAC-SHA1 of the raw body keyed with the channel
// secret, compared in constant time) and decodes the hook into a
// *MessageEvent, *TypingEvent, *ReactionEvent or *UnknownEvent.
//
//	ev, err := kommo.ParseWebhook(r, channelSecret)
//	if errors.Is(err, kommo.ErrInvalidSignature) { w.WriteHeader(401); return }
//
// Errors: ErrWebhookMethodNotAllowed (not a POST), ErrWebhookTooLarge,
// ErrWebhookBodyRead, ErrInvalidSignature (missing or wrong signature, or
// no secret), ErrWebhookMalformed (not a JSON object). WithWebhookSecrets
// and WithWebhookStrictSignature apply. It does not close r.Body. Prefer
// NewWebhookHandler, which also answers Kommo within its deadline.
func ParseWebhook(r *http.Request, secret string, opts ...WebhookOption) (WebhookEvent, error) {
	c, err := newWebhookConfig(secret, opts)
	if err != nil {
		return nil, err
	}
	ev, _, err := c.parseRequest(r, r.Body)
	return ev, err
}

// ParseWebhookBody is ParseWebhook for a body you have already read and the
// X-Signature header value that came with it.
//
//	ev, err := kommo.ParseWebhookBody(body, r.Header.Get("X-Signature"), channelSecret)
func ParseWebhookBody(body []byte, signature, secret string, opts ...WebhookOption) (WebhookEvent, error) {
	c, err := newWebhookConfig(secret, opts)
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > c.maxBody {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrWebhookTooLarge, len(body), c.maxBody)
	}
	ev, _, err := c.parse(body, signature)
	return ev, err
}

// parseRequest reads, verifies and decodes. It returns the bytes the
// signature matched (for the dedupe key).
func (c *webhookConfig) parseRequest(r *http.Request, body io.Reader) (WebhookEvent, []byte, error) {
	if r == nil {
		return nil, nil, fmt.Errorf("%w: nil request", ErrWebhookBodyRead)
	}
	if r.Method != http.MethodPost {
		return nil, nil, fmt.Errorf("%w: %s", ErrWebhookMethodNotAllowed, hookSafeMethod(r.Method))
	}
	if r.ContentLength > c.maxBody {
		return nil, nil, fmt.Errorf("%w: Content-Length %d, limit %d", ErrWebhookTooLarge, r.ContentLength, c.maxBody)
	}
	b, err := hookReadBody(body, c.maxBody)
	if err != nil {
		return nil, nil, err
	}
	return c.parse(b, r.Header.Get(HeaderSignature))
}

// hookSafeMethod keeps a hostile method name out of errors and logs.
func hookSafeMethod(m string) string {
	if len(m) > 16 {
		m = m[:16]
	}
	return strconv.Quote(m)
}

func hookReadBody(body io.Reader, limit int64) ([]byte, error) {
	if body == nil || body == http.NoBody {
		return []byte{}, nil
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: limit %d", ErrWebhookTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: %w", ErrWebhookBodyRead, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: limit %d", ErrWebhookTooLarge, limit)
	}
	return b, nil
}

func (c *webhookConfig) parse(body []byte, signature string) (WebhookEvent, []byte, error) {
	signed, err := c.verify(body, signature)
	if err != nil {
		return nil, nil, err
	}
	ev, err := hookDecode(signed)
	if err != nil {
		return nil, nil, err
	}
	return ev, signed, nil
}

// verify returns the bytes the signature matches: body itself or, unless
// strict, body without one trailing "\r\n" or "\n".
func (c *webhookConfig) verify(body []byte, signature string) ([]byte, error) {
	if len(c.secrets) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, ErrEmptySecret)
	}
	signature = strings.TrimSpace(signature)
	if signature == "" {
		return nil, fmt.Errorf("%w: missing %s header", ErrInvalidSignature, HeaderSignature)
	}
	candidates := [2][]byte{body}
	if !c.strict {
		if t, ok := bytes.CutSuffix(body, []byte("\r\n")); ok {
			candidates[1] = t
		} else if t, ok := bytes.CutSuffix(body, []byte("\n")); ok {
			candidates[1] = t
		}
	}
	for _, b := range candidates {
		if b == nil {
			continue
		}
		for _, s := range c.secrets {
			if VerifyWebhookSignature(b, signature, s) {
				return b, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %s does not match the body", ErrInvalidSignature, HeaderSignature)
}

// hookDecode dispatches on the body's keys (spec §3.6): "message" → message,
// "action.reaction" → reaction, "action.typing" → typing, else unknown.
func hookDecode(body []byte) (WebhookEvent, error) {
	if ev, ok := hookDecodeFast(body); ok {
		return ev, nil
	}
	return hookDecodeLenient(body)
}

// hookUnionWire holds every known hook shape, so a well-formed hook is
// decoded in a single pass.
type hookUnionWire struct {
	AccountID string `json:"account_id"`
	Time      int64  `json:"time"`
	Message   *struct {
		Receiver      WebhookParticipant  `json:"receiver"`
		Sender        WebhookParticipant  `json:"sender"`
		Conversation  WebhookConversation `json:"conversation"`
		Source        WebhookSource       `json:"source"`
		Timestamp     int64               `json:"timestamp"`
		MsecTimestamp int64               `json:"msec_timestamp"`
		Message       *WebhookMessage     `json:"message"`
	} `json:"message"`
	Action *struct {
		Reaction *hookReactionInner  `json:"reaction"`
		Typing   *hookTypingInner    `json:"typing"`
		User     *WebhookParticipant `json:"user"`
	} `json:"action"`
}

// hookDecodeFast decodes a hook whose fields all have their documented
// types in one pass. It returns false for anything else (not an object,
// a type mismatch), which hookDecodeLenient then handles.
func hookDecodeFast(body []byte) (WebhookEvent, bool) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false
	}
	var w hookUnionWire
	if json.Unmarshal(body, &w) != nil {
		return nil, false
	}
	env := WebhookEnvelope{AccountID: w.AccountID, Time: w.Time, Raw: body}
	switch {
	case w.Message != nil && w.Message.Message != nil:
		m := w.Message
		return &MessageEvent{
			WebhookEnvelope: env,
			Conversation:    m.Conversation, Source: m.Source, Sender: m.Sender, Receiver: m.Receiver,
			Timestamp: m.Timestamp, MsecTimestamp: m.MsecTimestamp, Message: *m.Message,
		}, true
	case w.Action != nil && w.Action.Reaction != nil:
		r := w.Action.Reaction
		return &ReactionEvent{
			WebhookEnvelope: env,
			MsgID:           r.MsgID, Message: r.Message, User: r.User, Conversation: r.Conversation,
			Type: r.Type, Emoji: r.Emoji,
		}, true
	case w.Action != nil && w.Action.Typing != nil:
		t := *w.Action.Typing
		if t.User.ID == "" && w.Action.User != nil {
			t.User = *w.Action.User
		}
		return &TypingEvent{
			WebhookEnvelope: env,
			User:            t.User, Conversation: t.Conversation, ExpiredAt: t.ExpiredAt, PostID: t.PostID,
		}, true
	}
	return &UnknownEvent{WebhookEnvelope: env}, true
}

// hookDecodeLenient decodes any JSON object: known shapes with wrong field
// types become an *UnknownEvent carrying the error.
func hookDecodeLenient(body []byte) (WebhookEvent, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWebhookMalformed, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: body is null, not a JSON object", ErrWebhookMalformed)
	}
	var ev interface {
		WebhookEvent
		json.Unmarshaler
	}
	switch {
	case hookHasKey(top["message"], "message"):
		ev = &MessageEvent{}
	case hookHasKey(top["action"], "reaction"):
		ev = &ReactionEvent{}
	case hookHasKey(top["action"], "typing"):
		ev = &TypingEvent{}
	}
	if ev != nil {
		err := ev.UnmarshalJSON(body)
		if err == nil {
			hookSetRaw(ev, body)
			return ev, nil
		}
		// A type mismatch in a known shape must not lose the message:
		// hand it over as unknown with the raw body.
		u := hookUnknown(top, body)
		u.Err = fmt.Errorf("%w: %s: %w", ErrWebhookMalformed, ev.Kind(), err)
		return u, nil
	}
	return hookUnknown(top, body), nil
}

func hookSetRaw(ev WebhookEvent, body []byte) {
	switch e := ev.(type) {
	case *MessageEvent:
		e.Raw = body
	case *TypingEvent:
		e.Raw = body
	case *ReactionEvent:
		e.Raw = body
	}
}

// hookHasKey reports whether obj is a JSON object with a non-null key.
func hookHasKey(obj json.RawMessage, key string) bool {
	if len(obj) == 0 || obj[0] != '{' {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return false
	}
	v, ok := m[key]
	return ok && !bytes.Equal(v, []byte("null"))
}

// hookUnknown reads account_id and time leniently (string or number).
func hookUnknown(top map[string]json.RawMessage, body []byte) *UnknownEvent {
	u := &UnknownEvent{WebhookEnvelope: WebhookEnvelope{Raw: body}}
	u.AccountID = hookScalar(top["account_id"])
	if n, err := strconv.ParseFloat(hookScalar(top["time"]), 64); err == nil && n > -1e15 && n < 1e15 {
		u.Time = int64(n)
	}
	return u
}

// hookScalar returns a JSON string's value or a JSON number's text, else "".
func hookScalar(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String()
	}
	return ""
}

// webhookDedupeKey is the message id for message events ("message:<id>")
// and a SHA-256 of the verified body for everything else ("body:<hex>").
func webhookDedupeKey(ev WebhookEvent, signed []byte) string {
	if m, ok := ev.(*MessageEvent); ok && m.Message.ID != "" {
		return "message:" + m.Message.ID
	}
	sum := sha256.Sum256(signed)
	return "body:" + hex.EncodeToString(sum[:])
}

// WebhookDedupeStore remembers which webhooks a WebhookHandler has handled.
// Keys are "message:<amojo message id>" for message events and
// "body:<sha256 of the body>" for the others. Implementations must be safe
// for concurrent use and Reserve must be atomic (e.g. Redis SET NX).
//
// The handler calls Reserve before the callback, then Complete when the
// callback returned nil or Release when it failed, so a replay after a
// failure runs the callback again, a replay after a success does not, and
// two concurrent copies never both run it. A store shared by several
// instances should expire reservations (e.g. after a minute) in case an
// instance dies mid-callback, and completed keys after a longer window.
type WebhookDedupeStore interface {
	// Reserve claims key. It returns true when the caller now owns it and
	// must run the callback, false when key is reserved or completed.
	Reserve(ctx context.Context, key string) (bool, error)
	// Complete marks key as handled.
	Complete(ctx context.Context, key string) error
	// Release drops the reservation of key.
	Release(ctx context.Context, key string) error
}

// MemoryDedupe is the in-memory WebhookDedupeStore: it remembers the last
// capacity keys (oldest evicted first). It is safe for concurrent use and
// suits a single instance; several instances need a shared store.
type MemoryDedupe struct {
	mu    sync.Mutex
	cap   int
	order *list.List               // of *hookDedupeEntry, oldest first
	keys  map[string]*list.Element // key → element in order
}

type hookDedupeEntry struct {
	key  string
	done bool
}

// NewMemoryDedupe returns a MemoryDedupe holding up to capacity keys
// (WebhookDefaultDedupeCapacity when capacity <= 0).
func NewMemoryDedupe(capacity int) *MemoryDedupe {
	if capacity <= 0 {
		capacity = WebhookDefaultDedupeCapacity
	}
	return &MemoryDedupe{cap: capacity, order: list.New(), keys: make(map[string]*list.Element)}
}

// Reserve claims key; false when it is already reserved or completed.
func (d *MemoryDedupe) Reserve(_ context.Context, key string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.keys[key]; ok {
		return false, nil
	}
	d.add(key, false)
	return true, nil
}

// Complete marks key as handled (adding it when it was evicted meanwhile).
func (d *MemoryDedupe) Complete(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.keys[key]; ok {
		el.Value.(*hookDedupeEntry).done = true
		return nil
	}
	d.add(key, true)
	return nil
}

// Release forgets key.
func (d *MemoryDedupe) Release(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.keys[key]; ok {
		d.order.Remove(el)
		delete(d.keys, key)
	}
	return nil
}

// Len returns how many keys are remembered.
func (d *MemoryDedupe) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.keys)
}

func (d *MemoryDedupe) add(key string, done bool) {
	d.keys[key] = d.order.PushBack(&hookDedupeEntry{key: key, done: done})
	for d.order.Len() > d.cap {
		oldest := d.order.Front()
		d.order.Remove(oldest)
		delete(d.keys, oldest.Value.(*hookDedupeEntry).key)
	}
}

// WebhookFunc handles one verified webhook. It should only hand the event
// over (enqueue it durably) and return quickly; it must return nil only
// once the event is safe, because Kommo never sends it again. ctx carries
// the handler's deadline and the scope id (see WebhookScopeID).
type WebhookFunc func(ctx context.Context, ev WebhookEvent) error

// WebhookHandler is an http.Handler for the channel's webhook URL
// (https://example.com/kommo/:scope_id). Build it with NewWebhookHandler.
//
// It answers 405 to anything but POST, 413 when the body is over the cap,
// 401 when X-Signature is missing or wrong, 400 when the body is not a
// JSON object or cannot be read,
// then runs the callback under a deadline (default 4 s, below Kommo's 5 s)
// and answers 200 only when it returned nil, 500 when it failed, panicked
// or ran out of time (its context is then cancelled and the answer leaves
// at once). Every failure goes to the error hook and the logger.
//
// A replayed hook (same message id, or same body for other kinds) is
// answered 200 without running the callback again; see WithWebhookDedupe.
type WebhookHandler struct {
	cfg *webhookConfig
	fn  WebhookFunc
}

// NewWebhookHandler returns a WebhookHandler verifying hooks with the
// channel secret and passing them to fn.
//
//	h, err := kommo.NewWebhookHandler(secret, func(ctx context.Context, ev kommo.WebhookEvent) error {
//		return queue.Put(ctx, kommo.WebhookScopeID(ctx), ev)
//	})
//	mux.Handle("POST /kommo/{scope_id}", h)
//
// An empty secret (ErrEmptySecret), a nil fn or an invalid option is an
// error: the handler fails closed.
func NewWebhookHandler(secret string, fn WebhookFunc, opts ...WebhookOption) (*WebhookHandler, error) {
	var problems []error
	if secret == "" {
		problems = append(problems, fmt.Errorf("kommo: NewWebhookHandler: %w", ErrEmptySecret))
	}
	if fn == nil {
		problems = append(problems, errors.New("kommo: NewWebhookHandler: nil callback"))
	}
	c, err := newWebhookConfig(secret, opts)
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if !c.dedupeOK {
		c.dedupe = NewMemoryDedupe(WebhookDefaultDedupeCapacity)
	}
	return &WebhookHandler{cfg: c, fn: fn}, nil
}

type hookScopeKey struct{}

// WebhookScopeID returns the scope id of the webhook URL the hook arrived
// on, inside a WebhookHandler callback ("" elsewhere). It is the
// "scope_id" path wildcard when the handler is mounted on a pattern such
// as "POST /kommo/{scope_id}", else the last non-empty path segment (Kommo
// substitutes :scope_id at the end of the registered URL).
func WebhookScopeID(ctx context.Context) string {
	s, _ := ctx.Value(hookScopeKey{}).(string)
	return s
}

func hookScopeFromRequest(r *http.Request) string {
	if s := r.PathValue("scope_id"); s != "" {
		return s
	}
	p := strings.TrimRight(r.URL.Path, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	return p
}

// hookResult is what the callback goroutine reports.
type hookResult struct {
	err      error // from the callback (already wrapped)
	storeErr error // from Complete/Release
}

// ServeHTTP verifies, decodes and hands over one webhook.
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.cfg
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	ev, signed, err := c.parseRequest(r, http.MaxBytesReader(w, body, c.maxBody))
	scope := hookScopeFromRequest(r)
	if err != nil {
		h.fail(w, r, hookStatus(err), scope, "", err)
		return
	}
	kind := ev.Kind()

	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), hookScopeKey{}, scope), c.timeout)
	defer cancel()

	var key string
	if c.dedupe != nil {
		key = webhookDedupeKey(ev, signed)
		fresh, derr := c.dedupe.Reserve(ctx, key)
		switch {
		case derr != nil:
			// Fail open: Kommo never redelivers, so skipping the callback
			// could lose the message; a rare duplicate is the lesser harm.
			h.report(r, 0, scope, kind, fmt.Errorf("%w: reserve: %w", ErrWebhookDedupe, derr))
		case !fresh:
			c.logger.LogAttrs(r.Context(), slog.LevelDebug, "kommo: duplicate webhook acknowledged",
				slog.String("scope_id", scope), slog.String("kind", string(kind)))
			w.WriteHeader(http.StatusOK)
			return
		}
	}

	var (
		mu        sync.Mutex
		abandoned bool
		done      = make(chan hookResult, 1)
	)
	go func() {
		res := hookResult{err: h.call(ctx, ev)}
		if key != "" {
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
			if res.err == nil {
				res.storeErr = c.dedupe.Complete(sctx, key)
			} else {
				res.storeErr = c.dedupe.Release(sctx, key)
			}
			scancel()
			if res.storeErr != nil {
				res.storeErr = fmt.Errorf("%w: %w", ErrWebhookDedupe, res.storeErr)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if !abandoned {
			done <- res
			return
		}
		// The 500 has gone out already; leave a trace of the outcome.
		attrs := []slog.Attr{slog.String("scope_id", scope), slog.String("kind", string(kind))}
		if res.err != nil {
			attrs = append(attrs, slog.String("error", res.err.Error()))
		}
		if res.storeErr != nil {
			attrs = append(attrs, slog.String("dedupe_error", res.storeErr.Error()))
		}
		c.logger.LogAttrs(context.WithoutCancel(ctx), slog.LevelWarn, "kommo: webhook callback finished after the deadline", attrs...)
	}()

	var res hookResult
	select {
	case res = <-done:
	case <-ctx.Done():
		mu.Lock()
		select {
		case res = <-done: // finished just in time
		default:
			abandoned = true
		}
		mu.Unlock()
		if abandoned {
			cerr := ctx.Err()
			if errors.Is(cerr, context.DeadlineExceeded) {
				err = fmt.Errorf("%w after %s: %w", ErrWebhookTimeout, c.timeout, cerr)
			} else {
				err = fmt.Errorf("%w: request cancelled: %w", ErrWebhookCallback, cerr)
			}
			h.fail(w, r, http.StatusInternalServerError, scope, kind, err)
			return
		}
	}
	if res.storeErr != nil {
		h.report(r, 0, scope, kind, res.storeErr)
	}
	if res.err != nil {
		h.fail(w, r, http.StatusInternalServerError, scope, kind, res.err)
		return
	}
	c.logger.LogAttrs(r.Context(), slog.LevelDebug, "kommo: webhook handled",
		slog.String("scope_id", scope), slog.String("kind", string(kind)))
	w.WriteHeader(http.StatusOK)
}

// call runs the callback, turning an error or a panic into an
// ErrWebhookCallback, or an ErrWebhookTimeout when the deadline had passed.
func (h *WebhookHandler) call(ctx context.Context, ev WebhookEvent) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: panic: %v", ErrWebhookCallback, p)
		}
	}()
	cerr := h.fn(ctx, ev)
	switch {
	case cerr == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		// It failed because its time ran out.
		return fmt.Errorf("%w after %s: %w", ErrWebhookTimeout, h.cfg.timeout, cerr)
	}
	return fmt.Errorf("%w: %w", ErrWebhookCallback, cerr)
}

func (h *WebhookHandler) fail(w http.ResponseWriter, r *http.Request, status int, scope string, kind WebhookKind, err error) {
	h.report(r, status, scope, kind, err)
	http.Error(w, http.StatusText(status), status)
}

func (h *WebhookHandler) report(r *http.Request, status int, scope string, kind WebhookKind, err error) {
	level := slog.LevelWarn
	if status >= 500 || errors.Is(err, ErrWebhookDedupe) {
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("scope_id", scope), slog.String("error", err.Error())}
	if status != 0 { // 0: a dedupe store error, the answer is still to come
		attrs = append(attrs, slog.Int("status", status))
	}
	if kind != "" {
		attrs = append(attrs, slog.String("kind", string(kind)))
	}
	h.cfg.logger.LogAttrs(r.Context(), level, "kommo: webhook failed", attrs...)
	if h.cfg.onError != nil {
		h.cfg.onError(r, err)
	}
}

// hookStatus maps a parse error to the handler's answer.
func hookStatus(err error) int {
	switch {
	case errors.Is(err, ErrWebhookMethodNotAllowed):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrWebhookTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalidSignature):
		return http.StatusUnauthorized
	case errors.Is(err, ErrWebhookMalformed), errors.Is(err, ErrWebhookBodyRead):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
