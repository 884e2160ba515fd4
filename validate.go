package kommo

import (
	"fmt"
	"net/url"
	"strings"
)

// validator collects request problems so all are reported at once.
type validator struct {
	op       string
	problems []string
}

// addf records a problem.
func (v *validator) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

// pathID records a problem when s, an id the SDK puts into a URL path,
// is empty or could name another path: "." or "..", a "/" or "\", or a
// control character. Such an id is refused before anything is sent, so a
// request is never signed for, or sent to, a path the caller did not mean.
func (v *validator) pathID(s, field string) {
	if problem := pathIDProblem(s); problem != "" {
		v.addf("%s: %s", field, problem)
	}
}

// pathIDProblem says what makes s unusable as one path segment ("" if
// nothing).
func pathIDProblem(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "required"
	case s == "." || s == "..":
		return fmt.Sprintf("%q is not an id", s)
	case strings.ContainsAny(s, "/\\"):
		return "must not contain / or \\"
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "must not contain control characters"
		}
	}
	return ""
}

// require records a problem when s is empty.
func (v *validator) require(s, field string) {
	if strings.TrimSpace(s) == "" {
		v.problems = append(v.problems, field+": required")
	}
}

// err returns a *ValidationError, or nil when nothing was recorded.
func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Op: v.op, Problems: v.problems}
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

// chatCheckSource checks a chat or message source: its external_id is
// required.
func chatCheckSource(v *validator, src *ChatSource, field string) {
	if src == nil {
		return
	}
	if src.ExternalID == "" {
		v.addf("%s.external_id: required when %s is set", field, field)
		return
	}
	checkExternalID(v, field, src.ExternalID)
}

// checkExternalID checks a source external_id, the same way for the
// Sources API and for a chat message's source: at most
// SourceExternalIDMaxLen bytes, printable ASCII and space only.
func checkExternalID(v *validator, field, id string) {
	if len(id) > SourceExternalIDMaxLen {
		v.addf("%s.external_id: %d characters, at most %d allowed", field, len(id), SourceExternalIDMaxLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			v.addf("%s.external_id: only printable ASCII characters and space are allowed", field)
			break
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

// chatCheckKind checks what a message needs whatever carries it (a new
// message or a quoted one): a known type, and the text, location or contact
// of those types. missingType is the problem reported for an empty type.
func chatCheckKind(v *validator, field string, typ MessageType, missingType, text string, loc *Location, contact *ContactCard) {
	switch {
	case typ == "":
		v.addf("%s.type: %s", field, missingType)
	case !chatKnownType(typ):
		v.addf("%s.type: unknown message type %q", field, typ)
	}
	switch typ {
	case MessageTypeText:
		if text == "" {
			v.addf("%s.text: required for text messages", field)
		}
	case MessageTypeLocation:
		if loc == nil {
			v.addf("%s.location: required for location messages", field)
		}
	case MessageTypeContact:
		chatCheckContact(v, contact, field)
	}
}

// chatCheckContent records every problem of a message object. Media, when
// given, must be an absolute http(s) URL; a file, picture or video needs
// no file_name or file_size. On edit, an unchanged file's media may be
// left out.
func chatCheckContent(v *validator, m *MessageContent, field string, edit bool) {
	if m == nil {
		v.addf("%s: required", field)
		return
	}
	chatCheckKind(v, field, m.Type, "required", m.Text, m.Location, m.Contact)
	switch m.Type {
	case MessageTypePicture, MessageTypeVideo, MessageTypeFile, MessageTypeVoice, MessageTypeAudio:
		// file_name and file_size are optional ([K-REF] marks them so;
		// the RU reference lists them as required).
		if !edit && m.Media == "" {
			v.addf("%s.media: required for %s messages", field, m.Type)
		}
	case MessageTypeSticker:
		if !edit && m.Media == "" && m.StickerID == "" {
			v.addf("%s.media or %s.sticker_id: required for sticker messages", field, field)
		}
	}
	if m.Media != "" && !absoluteHTTPURL(m.Media) {
		v.addf("%s.media: must be an absolute http or https URL that Kommo can download", field)
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
		// Allowed on edit and, since Kommo's changelog added it, when
		// importing a new message.
		chatCheckDelivery(v, ds.StatusCode, ds.ErrorCode, ds.Error, field+".delivery_status.", "status_code")
	}
}

// absoluteHTTPURL reports whether s is an absolute http or https URL with a
// host.
func absoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https")
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
	chatCheckKind(v, field, m.Type, "required unless id or msgid is given", m.Text, m.Location, m.Contact)
	if m.Time.IsZero() {
		v.addf("%s.timestamp: required unless id or msgid is given", field)
	}
	if s := m.Sender; s == nil || (s.ID == "" && s.RefID == "" && s.Name == "") {
		v.addf("%s.sender: id, ref_id or name required unless the message's id or msgid is given", field)
	}
}

// chatCheckDelivery checks a status with its error code and text. prefix
// starts every field name; statusField names the status.
func chatCheckDelivery(v *validator, st DeliveryStatus, code DeliveryErrorCode, text, prefix, statusField string) {
	statusField, codeField := prefix+statusField, prefix+"error_code"
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
		// The only code without a description to send in its place.
		v.require(text, prefix+"error")
	}
}
