package kommotest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

var mediaTypes = map[string]bool{"picture": true, "video": true, "file": true, "voice": true, "audio": true, "sticker": true}

func checkMessage(m *wireMessage, probs []string) []string {
	if m == nil {
		return append(probs, "payload.message is required")
	}
	switch m.Type {
	case "":
		return append(probs, "payload.message.type is required")
	case "text":
		if m.Text == "" {
			probs = append(probs, "payload.message.text is required for text messages")
		}
	case "location":
		if m.Location == nil {
			probs = append(probs, "payload.message.location is required for location messages")
		}
	case "contact":
		if m.Contact == nil || m.Contact.Phone == "" {
			probs = append(probs, "payload.message.contact with a phone is required for contact messages")
		}
	default:
		if !mediaTypes[m.Type] {
			return append(probs, fmt.Sprintf("payload.message.type %q is not supported", m.Type))
		}
		// file_name and file_size are optional, as Kommo's reference marks
		// them.
		if m.Media == "" && !(m.Type == "sticker" && m.StickerID != "") {
			probs = append(probs, "payload.message.media is required for "+m.Type+" messages")
		}
	}
	if m.Media != "" && !downloadableURL(m.Media) {
		probs = append(probs, "payload.message.media must be an absolute http or https URL")
	}
	if m.FileSize < 0 {
		probs = append(probs, "payload.message.file_size must not be negative")
	}
	return probs
}

// downloadableURL reports whether s is an absolute http(s) URL.
func downloadableURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Host != "" && (strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https"))
}

func (s *Server) storeMessageLocked(m *msgState) {
	s.msgOrder++
	m.order = s.msgOrder
	s.msgs[m.id] = m
	if m.msgID != "" {
		s.scopes[m.scopeID].msgsByMsgID[m.msgID] = m
	}
	// Keep a chat's messages in timestamp order (stable for equal times),
	// so imported history lands where it belongs.
	msgs := m.chat.messages
	i := sort.Search(len(msgs), func(i int) bool { return msgs[i].ts.After(m.ts) })
	m.chat.messages = slices.Insert(msgs, i, m)
}

func msgTime(p *wirePayload, now time.Time) time.Time {
	switch {
	case p.MsecTimestamp > 0:
		return time.UnixMilli(p.MsecTimestamp)
	case p.Timestamp > 0:
		return time.Unix(p.Timestamp, 0)
	}
	return now
}

// POST /v2/origin/custom/{scope_id}
func (s *Server) chatMessage(r *http.Request) reply {
	sc, fail := s.scopeLocked(r)
	if fail != nil {
		return *fail
	}
	var req struct {
		EventType string          `json:"event_type"`
		Payload   json.RawMessage `json:"payload"`
	}
	if p := decodeJSON(bodyOf(r), &req); p != "" {
		return badRequest([]string{p})
	}
	var p wirePayload
	if len(req.Payload) == 0 || string(req.Payload) == "null" {
		return badRequest([]string{"payload is required"})
	}
	if err := json.Unmarshal(req.Payload, &p); err != nil {
		return badRequest([]string{"malformed payload: " + err.Error()})
	}
	switch req.EventType {
	case "new_message":
		return s.newMessageLocked(sc, &p, req.Payload)
	case "edit_message":
		return s.editMessageLocked(sc, &p, req.Payload)
	}
	return badRequest([]string{"event_type must be new_message or edit_message"})
}

func (s *Server) newMessageLocked(sc *scopeState, p *wirePayload, raw json.RawMessage) reply {
	var probs []string
	if p.ConversationID == "" {
		probs = append(probs, "payload.conversation_id is required")
	}
	if p.MsgID == "" {
		probs = append(probs, "payload.msgid is required")
	}
	probs = checkUser(p.Sender, "payload.sender", false, probs)
	if p.Receiver != nil {
		probs = checkUser(p.Receiver, "payload.receiver", false, probs)
	}
	probs = checkSourceRef(p.Source, "payload.source", probs)
	probs = checkMessage(p.Message, probs)
	if p.Message != nil && p.Message.DeliveryStatus != nil {
		// Allowed on import too, since Kommo's changelog added it.
		ds := p.Message.DeliveryStatus
		probs = checkDelivery(ds.StatusCode, ds.ErrorCode, ds.Error, "payload.message.delivery_status.", probs)
	}
	if len(probs) > 0 {
		return badRequest(probs)
	}
	// A replayed msgid (a retry) answers the first result and stores
	// nothing; a msgid reused for a different message is refused.
	sent := sentOf(p, raw)
	if m := sc.msgsByMsgID[p.MsgID]; m != nil {
		if diffs := m.sent.diff(&sent, m.chat); len(diffs) > 0 {
			return chatFail(http.StatusConflict, "msgid_conflict", fmt.Sprintf(
				"payload.msgid %q is already used in this scope by message %s; this payload differs in %s",
				p.MsgID, m.id, strings.Join(diffs, ", ")))
		}
		return chatOK(http.StatusOK, map[string]any{"new_message": m.resp})
	}

	var c *chatState
	if p.ConversationRefID != "" {
		c = s.chats[p.ConversationRefID]
		if c == nil || c.scopeID != sc.id {
			return badRequest([]string{"payload.conversation_ref_id: chat not found"})
		}
		switch {
		case c.conversationID == "":
			if other := sc.chatsByConv[p.ConversationID]; other != nil && other != c {
				return badRequest([]string{"payload.conversation_id is already bound to another chat"})
			}
			c.conversationID = p.ConversationID
			sc.chatsByConv[p.ConversationID] = c
		case c.conversationID != p.ConversationID:
			return badRequest([]string{"payload.conversation_ref_id belongs to another conversation_id"})
		}
	} else {
		c = sc.chatsByConv[p.ConversationID]
	}
	var quoted *historyEmbedded
	if p.ReplyTo != nil && p.ReplyTo.Message != nil {
		q := p.ReplyTo.Message
		switch {
		case q.ID == "" && q.MsgID == "":
			quoted = quoteOf(q)
		case c != nil:
			qm := findInChat(c, q.ID, q.MsgID)
			if qm == nil {
				return badRequest([]string{"payload.reply_to.message: message not found in this chat"})
			}
			quoted = qm.quote()
		}
	}

	incoming := p.Receiver == nil
	sender := s.participantLocked(sc, p.Sender)
	var receiver *Participant
	client := sender
	if !incoming {
		receiver = s.participantLocked(sc, p.Receiver)
		client = receiver
	}
	if c == nil {
		ext := ""
		if p.Source != nil {
			ext = p.Source.ExternalID
		}
		c = s.newChatLocked(sc, p.ConversationID, client, ext)
	}
	m := &msgState{id: s.newID(), msgID: p.MsgID, scopeID: sc.id, chat: c, incoming: incoming,
		sender: *sender, body: *p.Message, silent: p.Silent, ts: msgTime(p, s.now()), payload: clone(raw), sent: sent}
	if ds := m.body.DeliveryStatus; ds != nil {
		m.status, m.errCode, m.errText = ds.StatusCode, ds.ErrorCode, ds.Error
	}
	m.body.DeliveryStatus = nil
	m.replyTo = quoted
	m.resp = newMessageResult{ConversationID: c.id, SenderID: sender.ID, MsgID: m.id, RefID: p.MsgID}
	if receiver != nil {
		rc := *receiver
		m.receiver = &rc
		m.resp.ReceiverID = &rc.ID
	}
	s.storeMessageLocked(m)
	if incoming && !p.Silent {
		s.touchTalkLocked(c)
	}
	return chatOK(http.StatusOK, map[string]any{"new_message": m.resp})
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// quote is m as a message quoting it shows it in history.
func (m *msgState) quote() *historyEmbedded {
	u := toHistoryUser(m.sender)
	return &historyEmbedded{ID: m.id, MsgID: m.msgID, Type: m.body.Type, Text: m.body.Text, Media: m.body.Media,
		FileName: m.body.FileName, FileSize: m.body.FileSize, Timestamp: m.ts.Unix(), MsecTimestamp: m.ts.UnixMilli(), Sender: &u}
}

// quoteOf is a quoted message given by its content (no id or msgid).
func quoteOf(q *wireEmbedded) *historyEmbedded {
	h := &historyEmbedded{Type: q.Type, Text: q.Text, FileName: q.FileName, FileSize: q.FileSize,
		Timestamp: q.Timestamp, MsecTimestamp: q.MsecTimestamp}
	if q.Sender != nil {
		h.Sender = &historyUser{ID: q.Sender.RefID, ClientID: q.Sender.ID, Name: q.Sender.Name}
	}
	return h
}

// sentMessage is what makes a new_message the same message as another with
// its msgid: the conversation, and the message content, sender and receiver
// in canonical form. Timestamps, silent, source, reply_to and forwards are
// not part of it (a resend may carry a new time; the first message's
// flags stand).
type sentMessage struct {
	created                           bool // false for a message not created by new_message
	conversationID, conversationRefID string
	message, sender, receiver         string // canonical JSON, "" when absent
}

func sentOf(p *wirePayload, raw json.RawMessage) sentMessage {
	var parts struct {
		Message  json.RawMessage `json:"message"`
		Sender   json.RawMessage `json:"sender"`
		Receiver json.RawMessage `json:"receiver"`
	}
	_ = json.Unmarshal(raw, &parts) // raw already decoded into p
	return sentMessage{created: true, conversationID: p.ConversationID, conversationRefID: p.ConversationRefID,
		message: canonicalJSON(parts.Message), sender: canonicalJSON(parts.Sender), receiver: canonicalJSON(parts.Receiver)}
}

// diff names the parts of b that make it another message than first, the
// one stored in chat c; nil when b is a resend of it. A conversation_ref_id
// is the same conversation when it names c, given or not the first time.
func (first *sentMessage) diff(b *sentMessage, c *chatState) []string {
	if !first.created {
		return []string{"everything (the message was not created by new_message)"}
	}
	var out []string
	if b.conversationID != first.conversationID {
		out = append(out, "payload.conversation_id")
	}
	if b.conversationRefID != "" && b.conversationRefID != first.conversationRefID && b.conversationRefID != c.id {
		out = append(out, "payload.conversation_ref_id")
	}
	if b.message != first.message {
		out = append(out, "payload.message")
	}
	if b.sender != first.sender {
		out = append(out, "payload.sender")
	}
	if b.receiver != first.receiver {
		out = append(out, "payload.receiver")
	}
	return out
}

// canonicalJSON returns raw re-encoded with sorted keys and without null,
// empty and zero values (which the server reads as absent), so that
// semantically identical JSON gives the same string. It returns "" for an
// absent or empty value.
func canonicalJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	v = pruneZero(v)
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v) // maps encode with sorted keys
	return string(b)
}

func pruneZero(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e = pruneZero(e); e == nil {
				delete(x, k)
			} else {
				x[k] = e
			}
		}
		if len(x) == 0 {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
		for i := range x {
			x[i] = pruneZero(x[i]) // positions matter: an element stays, as null
		}
	case string:
		if x == "" {
			return nil
		}
	case float64:
		if x == 0 {
			return nil
		}
	case bool:
		if !x {
			return nil
		}
	}
	return v
}

func findInChat(c *chatState, id, msgID string) *msgState {
	for _, m := range c.messages {
		if (id != "" && m.id == id) || (id == "" && msgID != "" && m.msgID == msgID) {
			return m
		}
	}
	return nil
}

func (s *Server) editMessageLocked(sc *scopeState, p *wirePayload, raw json.RawMessage) reply {
	if p.ID == "" && p.MsgID == "" {
		return badRequest([]string{"payload.id or payload.msgid is required"})
	}
	var m *msgState
	if p.ID != "" {
		if m = s.msgs[p.ID]; m != nil && m.scopeID != sc.id {
			m = nil
		}
	} else {
		m = sc.msgsByMsgID[p.MsgID]
	}
	if m == nil {
		return chatFail(http.StatusNotFound, "not_found", "message not found")
	}
	var probs []string
	if p.Message != nil && p.Message.Type != "" {
		probs = checkMessage(p.Message, probs)
	}
	if p.Message != nil && p.Message.DeliveryStatus != nil {
		ds := p.Message.DeliveryStatus
		probs = checkDelivery(ds.StatusCode, ds.ErrorCode, ds.Error, "payload.message.delivery_status.", probs)
	}
	if p.ID != "" && p.MsgID != "" && p.MsgID != m.msgID {
		if other := sc.msgsByMsgID[p.MsgID]; other != nil && other != m {
			probs = append(probs, "payload.msgid is already used by another message")
		}
	}
	if len(probs) > 0 {
		return badRequest(probs)
	}
	if p.ID != "" && p.MsgID != "" && p.MsgID != m.msgID {
		delete(sc.msgsByMsgID, m.msgID)
		m.msgID = p.MsgID
		m.resp.RefID = p.MsgID
		sc.msgsByMsgID[p.MsgID] = m
	}
	if nm := p.Message; nm != nil {
		if ds := nm.DeliveryStatus; ds != nil {
			m.status, m.errCode, m.errText = ds.StatusCode, ds.ErrorCode, ds.Error
		}
		if nm.Type != "" {
			old := m.body
			m.body = *nm
			m.body.DeliveryStatus = nil
			if m.body.Media == "" {
				m.body.Media, m.body.FileName, m.body.FileSize = old.Media, old.FileName, old.FileSize
			}
		}
	}
	m.edited = true
	m.payload = clone(raw)
	return chatOK(http.StatusOK, map[string]any{"new_message": m.resp})
}

// checkDelivery checks a status with its error code and text, as the
// current reference says: -1 needs an error code from 901 to 905 and, with
// every code, an error text. prefix starts the field names; an empty
// prefix is the delivery-status endpoint, whose status field has two names.
func checkDelivery(status, code int, text, prefix string, probs []string) []string {
	statusField := "status"
	if prefix != "" {
		statusField = prefix + "status_code"
	}
	switch status {
	case 1, 2:
	case -1:
		if code < 901 || code > 905 {
			probs = append(probs, prefix+"error_code from 901 to 905 is required with status -1")
		}
		if strings.TrimSpace(text) == "" {
			probs = append(probs, prefix+"error is required with status -1")
		}
	default:
		probs = append(probs, statusField+" must be 1 (delivered), 2 (read) or -1 (error)")
	}
	return probs
}

// POST /v2/origin/custom/{scope_id}/{msgid}/delivery_status — accepts both
// documented bodies: the current {"status_code",…} (Kommo's changelog
// removed msgid and renamed delivery_status) and the legacy
// {"msgid","delivery_status",…}.
func (s *Server) chatDelivery(r *http.Request) reply {
	sc, fail := s.scopeLocked(r)
	if fail != nil {
		return *fail
	}
	id := r.PathValue("msg")
	m := s.msgs[id]
	if m == nil || m.scopeID != sc.id {
		return chatFail(http.StatusNotFound, "not_found", "message not found")
	}
	var req struct {
		MsgID          string `json:"msgid"`
		DeliveryStatus *int   `json:"delivery_status"`
		StatusCode     *int   `json:"status_code"`
		ErrorCode      int    `json:"error_code"`
		Error          string `json:"error"`
	}
	if p := decodeJSON(bodyOf(r), &req); p != "" {
		return badRequest([]string{p})
	}
	var probs []string
	if req.MsgID != "" && req.MsgID != id {
		probs = append(probs, "msgid must match the message id in the URL")
	}
	status := req.StatusCode
	switch {
	case status == nil && req.DeliveryStatus == nil:
		probs = append(probs, "status_code (or delivery_status) is required")
	case status != nil && req.DeliveryStatus != nil && *status != *req.DeliveryStatus:
		probs = append(probs, "status_code and delivery_status disagree")
	case status == nil:
		status = req.DeliveryStatus
	}
	if status != nil {
		probs = checkDelivery(*status, req.ErrorCode, req.Error, "", probs)
	}
	if len(probs) > 0 {
		return badRequest(probs)
	}
	m.status, m.errCode, m.errText = *status, req.ErrorCode, req.Error
	return reply{status: http.StatusOK}
}

// POST /v2/origin/custom/{scope_id}/typing
func (s *Server) chatTyping(r *http.Request) reply {
	sc, fail := s.scopeLocked(r)
	if fail != nil {
		return *fail
	}
	var req struct {
		ConversationID    string    `json:"conversation_id"`
		ConversationRefID string    `json:"conversation_ref_id"`
		Sender            *wireUser `json:"sender"`
		DurationMS        *int      `json:"duration_ms"`
	}
	if p := decodeJSON(bodyOf(r), &req); p != "" {
		return badRequest([]string{p})
	}
	var probs []string
	if req.ConversationID == "" && req.ConversationRefID == "" {
		probs = append(probs, "conversation_id is required")
	}
	probs = checkUser(req.Sender, "sender", false, probs)
	if req.DurationMS != nil && *req.DurationMS < 0 {
		probs = append(probs, "duration_ms must not be negative")
	}
	if len(probs) > 0 {
		return badRequest(probs)
	}
	if s.chatInScopeLocked(sc, req.ConversationID, req.ConversationRefID) == nil {
		return chatFail(http.StatusNotFound, "not_found", "chat not found")
	}
	return reply{status: http.StatusNoContent}
}

func (s *Server) chatInScopeLocked(sc *scopeState, conv, ref string) *chatState {
	if ref != "" {
		if c := s.chats[ref]; c != nil && c.scopeID == sc.id {
			return c
		}
		return nil
	}
	return sc.chatsByConv[conv]
}

// POST /v2/origin/custom/{scope_id}/react (and /{scope_id}/{msgid}/react)
func (s *Server) chatReact(r *http.Request) reply {
	sc, fail := s.scopeLocked(r)
	if fail != nil {
		return *fail
	}
	var req struct {
		ConversationID    string    `json:"conversation_id"`
		ConversationRefID string    `json:"conversation_ref_id"`
		ID                string    `json:"id"`
		MsgID             string    `json:"msgid"`
		User              *wireUser `json:"user"`
		Type              string    `json:"type"`
		Emoji             string    `json:"emoji"`
	}
	if p := decodeJSON(bodyOf(r), &req); p != "" {
		return badRequest([]string{p})
	}
	if req.ID == "" && req.MsgID == "" {
		req.ID = r.PathValue("msg")
	}
	var probs []string
	if req.ConversationID == "" && req.ConversationRefID == "" {
		probs = append(probs, "conversation_id or conversation_ref_id is required")
	}
	if req.ID == "" && req.MsgID == "" {
		probs = append(probs, "id or msgid is required")
	}
	probs = checkUser(req.User, "user", false, probs)
	switch req.Type {
	case "react":
		if req.Emoji == "" {
			probs = append(probs, "emoji is required to react")
		}
	case "unreact":
	default:
		probs = append(probs, "type must be react or unreact")
	}
	if len(probs) > 0 {
		return badRequest(probs)
	}
	c := s.chatInScopeLocked(sc, req.ConversationID, req.ConversationRefID)
	if c == nil {
		return chatFail(http.StatusNotFound, "not_found", "chat not found")
	}
	m := findInChat(c, req.ID, req.MsgID)
	if m == nil {
		return chatFail(http.StatusNotFound, "not_found", "message not found")
	}
	u := s.participantLocked(sc, req.User)
	setReaction(m, Reaction{UserID: u.ID, ClientUserID: u.ClientID, Emoji: req.Emoji}, req.Type == "react")
	return reply{status: http.StatusOK}
}

func setReaction(m *msgState, re Reaction, react bool) {
	kept := m.reactions[:0]
	for _, x := range m.reactions {
		if x.UserID != re.UserID {
			kept = append(kept, x)
		}
	}
	m.reactions = kept
	if react {
		m.reactions = append(m.reactions, re)
	}
}
