package kommo

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// MessageType is the type of a chat message.
type MessageType string

// Message types of the Chat API.
const (
	MessageTypeText     MessageType = "text"
	MessageTypePicture  MessageType = "picture"
	MessageTypeVideo    MessageType = "video"
	MessageTypeFile     MessageType = "file"
	MessageTypeVoice    MessageType = "voice"
	MessageTypeAudio    MessageType = "audio"
	MessageTypeSticker  MessageType = "sticker"
	MessageTypeLocation MessageType = "location"
	MessageTypeContact  MessageType = "contact"
)

// Location is a geographic point sent in a location message.
type Location struct {
	Lon float64 `json:"lon"`
	Lat float64 `json:"lat"`
}

// ContactCard is the contact shared in a contact message.
type ContactCard struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
}

// MessageContent is the "message" object of a sent or edited message. Use a
// constructor (TextMessage, PictureMessage, ...) or fill the fields the
// Type requires: Text for text; Media for picture, video, file, voice and
// audio; Media or StickerID for sticker; Location for location; Contact for
// contact. FileName and FileSize are optional: Kommo's reference marks them
// so (an older page lists them as required for picture, video and file).
// Media must be an absolute http or https URL; anything else is refused
// before sending.
type MessageContent struct {
	Type MessageType `json:"type"`
	// Text is required for text messages and optional otherwise, where it
	// is the caption of the picture, video, file, ... (see WithCaption).
	Text string `json:"text,omitempty"`
	// Media is an absolute http(s) URL Kommo downloads the picture, video,
	// file, voice, audio or sticker from.
	Media string `json:"media,omitempty"`
	// FileName is the file's name, optional.
	FileName string `json:"file_name,omitempty"`
	// FileSize is the size of Media in bytes, optional (0 is not sent).
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
	// DeliveryStatus sets the message's delivery status: on Messages.Edit,
	// and on Messages.Send when importing a message (Kommo's changelog
	// added that; older reference pages still say edit only).
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

// PictureMessage returns a picture message. mediaURL must be an absolute
// http(s) URL Kommo can download; fileName and size (in bytes) are
// optional: "" and 0 are not sent.
func PictureMessage(mediaURL, fileName string, size int64) *MessageContent {
	return &MessageContent{Type: MessageTypePicture, Media: mediaURL, FileName: fileName, FileSize: size}
}

// VideoMessage returns a video message. mediaURL must be an absolute
// http(s) URL Kommo can download; fileName and size (in bytes) are
// optional: "" and 0 are not sent.
func VideoMessage(mediaURL, fileName string, size int64) *MessageContent {
	return &MessageContent{Type: MessageTypeVideo, Media: mediaURL, FileName: fileName, FileSize: size}
}

// FileMessage returns a file message. mediaURL must be an absolute
// http(s) URL Kommo can download; fileName and size (in bytes) are
// optional: "" and 0 are not sent.
func FileMessage(mediaURL, fileName string, size int64) *MessageContent {
	return &MessageContent{Type: MessageTypeFile, Media: mediaURL, FileName: fileName, FileSize: size}
}

// WithCaption returns a copy of m with caption as its text, the caption
// Kommo shows with a picture, video, file, voice, audio or sticker (the
// wire has no other caption field: it is message.text). m itself is not
// changed, so it reads as an option of the constructor:
//
//	kommo.PictureMessage("https://example.com/p.png", "p.png", 1024).WithCaption("Our new catalogue")
//
// On a text message it replaces the text. The copy is shallow; a nil m
// gives nil.
func (m *MessageContent) WithCaption(caption string) *MessageContent {
	if m == nil {
		return nil
	}
	c := *m
	c.Text = caption
	return &c
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
	return encodeJSON(struct {
		plain
		chatStamp
	}{plain(m), stampOf(m.Time)})
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

// ChatMessage is a message as Kommo reports it: the message of a history
// item and of a MessageEvent (message.message). Optional fields may be
// absent; absent fields are zero.
type ChatMessage struct {
	// ID is the amojo message id; pass it to Messages.UpdateDeliveryStatus.
	ID string `json:"id"`
	// ClientID is your message id (the msgid it was sent with); history
	// items carry it for messages the integration sent.
	ClientID string      `json:"client_id,omitempty"`
	Type     MessageType `json:"type"`
	Text     string      `json:"text"`
	// Tag is not used for third-party integrations (usually "").
	Tag string `json:"tag,omitempty"`
	// Media is the download URL of a picture, file, video, voice, audio or
	// sticker.
	Media string `json:"media,omitempty"`
	// Thumbnail is a preview URL (pictures and videos).
	Thumbnail string `json:"thumbnail,omitempty"`
	FileName  string `json:"file_name,omitempty"`
	// FileSize is the size of Media in bytes. Kommo documents it as a
	// number and, in the history table, as a string; both decode.
	FileSize int64 `json:"file_size,omitempty"`
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
	// ReplyTo is the quoted message, in webhooks (quoting must be enabled
	// by support) and history items. Kommo's references nest it
	// differently; both forms decode (see WebhookReplyTo).
	ReplyTo *WebhookReplyTo `json:"reply_to,omitempty"`
	// Forwards holds forwarded messages (enabled by support).
	Forwards *WebhookForwards `json:"forwards,omitempty"`
	// Post is set when the message replies to a social-post comment.
	Post *Post `json:"post,omitempty"`
}

// chatMessagePlain is ChatMessage without its methods, to embed in
// chatMessageWire.
type chatMessagePlain ChatMessage

// chatMessageWire is ChatMessage as Kommo sends it: file_size a number or a
// string, reply_to nested or flat. Webhooks and history pages decode it in
// the same single pass as the rest of the body; its fields shadow the
// embedded ones of the same name.
type chatMessageWire struct {
	chatMessagePlain
	FileSize jsonSize      `json:"file_size,omitempty"`
	ReplyTo  *replyToWire  `json:"reply_to,omitempty"`
	Forwards *forwardsWire `json:"forwards,omitempty"`
}

func chatMessageToWire(m *ChatMessage) *chatMessageWire {
	return &chatMessageWire{chatMessagePlain: chatMessagePlain(*m), FileSize: jsonSize(m.FileSize),
		ReplyTo: replyToToWire(m.ReplyTo), Forwards: forwardsToWire(m.Forwards)}
}

func (w *chatMessageWire) message() ChatMessage {
	m := ChatMessage(w.chatMessagePlain)
	m.FileSize = int64(w.FileSize)
	m.ReplyTo = w.ReplyTo.replyTo()
	m.Forwards = w.Forwards.forwards()
	return m
}

// UnmarshalJSON decodes Kommo's message object, whose file_size may be a
// number or a string of digits.
func (m *ChatMessage) UnmarshalJSON(b []byte) error {
	w := chatMessageToWire(m)
	if err := json.Unmarshal(b, w); err != nil {
		return err
	}
	*m = w.message()
	return nil
}

// jsonSize is a size in bytes that Kommo sends as a JSON number or as a
// string (the history table of one reference page says string, its example
// and the other references say int). A number, a string holding one
// (surrounding spaces allowed) and "" (0) decode; null leaves the value
// alone; anything else is a *json.UnmarshalTypeError. Numbers must be
// integers (1024, 1024.0 or 1.024e3).
type jsonSize int64

func (n *jsonSize) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	text, kind := string(b), "number"
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		text, kind = strings.TrimSpace(s), "string"
		if text == "" {
			*n = 0
			return nil
		}
	} else if c := b[0]; c != '-' && (c < '0' || c > '9') {
		kind = map[byte]string{'t': "bool", 'f': "bool", '{': "object", '[': "array"}[c]
		return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeFor[int64]()}
	}
	if v, err := strconv.ParseInt(text, 10, 64); err == nil {
		*n = jsonSize(v)
		return nil
	}
	if f, err := strconv.ParseFloat(text, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		*n = jsonSize(int64(f))
		return nil
	}
	return &json.UnmarshalTypeError{Value: kind + " " + strconv.Quote(text), Type: reflect.TypeFor[int64]()}
}
