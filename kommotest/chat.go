package kommotest

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kommo-go/kommo"
)

// ---- wire types (Chat API) ----

type wireProfile struct {
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
}

type wireUser struct {
	ID          string       `json:"id"`
	RefID       string       `json:"ref_id"`
	Name        string       `json:"name"`
	Avatar      string       `json:"avatar"`
	Profile     *wireProfile `json:"profile"`
	ProfileLink string       `json:"profile_link"`
}

type wireSourceRef struct {
	ExternalID string `json:"external_id"`
}

type wireLocation struct {
	Lon float64 `json:"lon"`
	Lat float64 `json:"lat"`
}

type wireContact struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
}

type wireDelivery struct {
	StatusCode int    `json:"status_code"`
	ErrorCode  int    `json:"error_code"`
	Error      string `json:"error"`
}

type wireMessage struct {
	Type           string        `json:"type"`
	Text           string        `json:"text"`
	Media          string        `json:"media"`
	Thumbnail      string        `json:"thumbnail"`
	FileName       string        `json:"file_name"`
	FileSize       int64         `json:"file_size"`
	StickerID      string        `json:"sticker_id"`
	MediaGroupID   string        `json:"media_group_id"`
	Location       *wireLocation `json:"location"`
	Contact        *wireContact  `json:"contact"`
	DeliveryStatus *wireDelivery `json:"delivery_status"`
}

type wireEmbedded struct {
	ID    string `json:"id"`
	MsgID string `json:"msgid"`
}

type wirePayload struct {
	Timestamp         int64          `json:"timestamp"`
	MsecTimestamp     int64          `json:"msec_timestamp"`
	ConversationID    string         `json:"conversation_id"`
	ConversationRefID string         `json:"conversation_ref_id"`
	Silent            bool           `json:"silent"`
	Source            *wireSourceRef `json:"source"`
	Sender            *wireUser      `json:"sender"`
	Receiver          *wireUser      `json:"receiver"`
	ID                string         `json:"id"`
	MsgID             string         `json:"msgid"`
	Message           *wireMessage   `json:"message"`
	ReplyTo           *struct {
		Message *wireEmbedded `json:"message"`
	} `json:"reply_to"`
}

type newMessageResult struct {
	ConversationID string  `json:"conversation_id"`
	SenderID       string  `json:"sender_id"`
	ReceiverID     *string `json:"receiver_id"`
	MsgID          string  `json:"msgid"`
	RefID          string  `json:"ref_id"`
}

// ---- replies ----

// reply is a response computed under the state lock and written after it
// is released (writing records the status, which takes the lock).
type reply struct {
	status int
	ctype  string
	body   any
	header http.Header
}

func (rep reply) write(w http.ResponseWriter) {
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	writeJSON(w, rep.status, rep.ctype, rep.body)
}

func chatOK(status int, v any) reply {
	return reply{status: status, ctype: "application/json", body: v}
}

func chatFail(status int, typ, desc string) reply {
	return chatOK(status, chatError{ErrorCode: status, ErrorType: typ, ErrorDescription: desc})
}

func badRequest(problems []string) reply {
	return chatFail(http.StatusBadRequest, "validation", strings.Join(problems, "; "))
}

// handle wraps a state handler: it runs under the lock, then writes.
func (s *Server) handle(fn func(r *http.Request) reply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		rep := fn(r)
		s.mu.Unlock()
		rep.write(w)
	}
}

func (s *Server) buildMux() *http.ServeMux {
	m := http.NewServeMux()
	const p = "/v2/origin/custom/"
	m.HandleFunc("POST "+p+"{channel}/connect", s.handle(s.chatConnect))
	m.HandleFunc("DELETE "+p+"{channel}/disconnect", s.handle(s.chatDisconnect))
	m.HandleFunc("POST "+p+"{scope}/chats", s.handle(s.chatCreate))
	m.HandleFunc("POST "+p+"{scope}", s.handle(s.chatMessage))
	m.HandleFunc("POST "+p+"{scope}/{msg}/delivery_status", s.handle(s.chatDelivery))
	m.HandleFunc("GET "+p+"{scope}/chats/{chat}/history", s.handle(s.chatHistory))
	m.HandleFunc("POST "+p+"{scope}/typing", s.handle(s.chatTyping))
	m.HandleFunc("POST "+p+"{scope}/react", s.handle(s.chatReact))
	m.HandleFunc("POST "+p+"{scope}/{msg}/react", s.handle(s.chatReact))

	m.HandleFunc("GET /api/v4/account", s.handle(s.crmAccount))
	m.HandleFunc("GET /api/v4/talks/{id}", s.handle(s.crmTalkGet))
	m.HandleFunc("POST /api/v4/talks/{id}/close", s.handle(s.crmTalkClose))
	m.HandleFunc("GET /api/v4/contacts/chats", s.handle(s.crmLinksList))
	m.HandleFunc("POST /api/v4/contacts/chats", s.handle(s.crmLinksCreate))
	m.HandleFunc("GET /api/v4/sources", s.handle(s.crmSourcesList))
	m.HandleFunc("POST /api/v4/sources", s.handle(s.crmSourcesAdd))
	m.HandleFunc("PATCH /api/v4/sources", s.handle(s.crmSourcesUpdate))
	m.HandleFunc("DELETE /api/v4/sources", s.handle(s.crmSourcesDelete))
	m.HandleFunc("GET /api/v4/sources/{id}", s.handle(s.crmSourceGet))
	m.HandleFunc("PATCH /api/v4/sources/{id}", s.handle(s.crmSourceUpdate))
	m.HandleFunc("DELETE /api/v4/sources/{id}", s.handle(s.crmSourceDelete))
	m.HandleFunc("POST /oauth2/access_token", s.handle(s.oauthToken))
	return m
}

// ---- authentication ----

// parseDate accepts the RFC 2822 forms clients send ("+0000" or "GMT").
func parseDate(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 -0700", time.RFC850, time.ANSIC} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// verifyChat checks a Chat API request like Kommo: the four signing headers,
// a JSON content type, the Date window, Content-MD5 against the body and
// X-Signature against the channel secret. It returns 0 when all pass.
func (s *Server) verifyChat(r *http.Request, body []byte) (int, string, string) {
	h := r.Header
	var missing []string
	for _, k := range []string{kommo.HeaderDate, kommo.HeaderContentType, kommo.HeaderContentMD5, kommo.HeaderSignature} {
		if h.Get(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return http.StatusForbidden, "signature", "missing required headers: " + strings.Join(missing, ", ")
	}
	ctype := h.Get(kommo.HeaderContentType)
	if mt, _, err := mime.ParseMediaType(ctype); err != nil || mt != kommo.ContentTypeJSON {
		return http.StatusBadRequest, "content_type", "Content-Type must be application/json"
	}
	date := h.Get(kommo.HeaderDate)
	d, ok := parseDate(date)
	if !ok {
		return http.StatusForbidden, "date", "Date header is not an RFC 2822 date"
	}
	if now := s.now(); d.Before(now.Add(-SignatureWindow)) || d.After(now.Add(SignatureWindow)) {
		return http.StatusForbidden, "date", "Date header is outside the 15-minute signature window"
	}
	md5 := h.Get(kommo.HeaderContentMD5)
	if md5 != kommo.ContentMD5(body) {
		return http.StatusForbidden, "content_md5", "Content-MD5 does not match the request body"
	}
	want := s.signer.Signature(r.Method, md5, ctype, date, r.URL.EscapedPath())
	if !hmac.Equal([]byte(strings.ToLower(h.Get(kommo.HeaderSignature))), []byte(want)) {
		return http.StatusForbidden, "signature", "X-Signature does not match"
	}
	return 0, "", ""
}

// ---- helpers ----

func (s *Server) scopeLocked(r *http.Request) (*scopeState, *reply) {
	sc := s.scopes[r.PathValue("scope")]
	if sc == nil || !sc.connected {
		rep := chatFail(http.StatusNotFound, "not_found", "scope not found or channel not connected")
		return nil, &rep
	}
	return sc, nil
}

func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

func checkSourceRef(src *wireSourceRef, path string, probs []string) []string {
	if src == nil {
		return probs
	}
	if len(src.ExternalID) > 40 || !printableASCII(src.ExternalID) {
		probs = append(probs, path+".external_id must be at most 40 printable ASCII characters")
	}
	return probs
}

func checkUser(u *wireUser, path string, requireName bool, probs []string) []string {
	if u == nil {
		return append(probs, path+" is required")
	}
	if u.ID == "" && u.RefID == "" {
		probs = append(probs, path+".id is required")
	}
	if requireName && u.Name == "" {
		probs = append(probs, path+".name is required")
	}
	return probs
}

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
		if m.Media == "" && !(m.Type == "sticker" && m.StickerID != "") {
			probs = append(probs, "payload.message.media is required for "+m.Type+" messages")
		}
		if m.Type == "file" || m.Type == "video" || m.Type == "picture" {
			if m.FileName == "" {
				probs = append(probs, "payload.message.file_name is required for "+m.Type+" messages")
			}
			if m.FileSize <= 0 {
				probs = append(probs, "payload.message.file_size is required for "+m.Type+" messages")
			}
		}
	}
	return probs
}

// participantLocked resolves a participant of a request within a scope,
// registering new clients. A ref_id names an amojo participant (a client
// already known, a CRM user or the bot).
func (s *Server) participantLocked(sc *scopeState, u *wireUser) *Participant {
	var p *Participant
	switch {
	case u.RefID != "":
		p = sc.usersByAmojo[u.RefID]
		if p == nil {
			// A CRM user or the bot: not a client, not registered.
			return &Participant{ID: u.RefID, ClientID: u.ID, Name: u.Name, Avatar: u.Avatar}
		}
		if p.ClientID == "" && u.ID != "" {
			p.ClientID = u.ID
			sc.usersByClient[u.ID] = p
		}
	default:
		p = sc.usersByClient[u.ID]
		if p == nil {
			p = &Participant{ID: s.newID(), ClientID: u.ID}
			sc.usersByClient[u.ID] = p
			sc.usersByAmojo[p.ID] = p
		}
	}
	if u.Name != "" {
		p.Name = u.Name
	}
	if u.Avatar != "" {
		p.Avatar = u.Avatar
	}
	if u.ProfileLink != "" {
		p.ProfileLink = u.ProfileLink
	}
	if u.Profile != nil {
		if u.Profile.Phone != "" {
			p.Phone = u.Profile.Phone
		}
		if u.Profile.Email != "" {
			p.Email = u.Profile.Email
		}
	}
	return p
}

func (s *Server) newChatLocked(sc *scopeState, conv string, user *Participant, sourceExt string) *chatState {
	c := &chatState{id: s.newID(), scopeID: sc.id, conversationID: conv, sourceExternalID: sourceExt,
		user: user, createdAt: s.now()}
	s.chats[c.id] = c
	if conv != "" {
		sc.chatsByConv[conv] = c
	}
	return c
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

// touchTalkLocked opens a talk for an incoming message when the chat has
// none open, creating the contact and lead Kommo would put in Unsorted.
func (s *Server) touchTalkLocked(c *chatState) {
	now := s.now()
	if t := c.openTalk; t != nil {
		t.updatedAt, t.read = now, false
		return
	}
	contact := 0
	if l := s.links[c.id]; l != nil {
		contact = l.contactID
	} else {
		contact = s.nextContactID
		s.nextContactID++
		s.links[c.id] = &linkState{id: s.nextLinkID, chatID: c.id, contactID: contact}
		s.nextLinkID++
	}
	t := &talkState{id: s.nextTalkID, chatID: c.id, contactID: contact, leadID: s.nextLeadID, createdAt: now, updatedAt: now}
	s.nextTalkID++
	s.nextLeadID++
	s.talks[t.id] = t
	s.talkSeq = append(s.talkSeq, t)
	c.openTalk = t
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

// ---- handlers ----

// POST /v2/origin/custom/{channel_id}/connect
func (s *Server) chatConnect(r *http.Request) reply {
	if r.PathValue("channel") != s.channelID {
		return chatFail(http.StatusNotFound, "not_found", "channel not found")
	}
	var req struct {
		AccountID            string  `json:"account_id"`
		HookAPIVersion       string  `json:"hook_api_version"`
		Title                *string `json:"title"`
		IsTimeWindowDisabled bool    `json:"is_time_window_disabled"`
	}
	if p := decodeJSON(bodyOf(r), &req); p != "" {
		return badRequest([]string{p})
	}
	var probs []string
	if req.AccountID == "" {
		probs = append(probs, "account_id is required")
	}
	switch req.HookAPIVersion {
	case "":
		req.HookAPIVersion = "v2"
	case "v1", "v2":
	default:
		probs = append(probs, "hook_api_version must be v1 or v2")
	}
	if len(probs) > 0 {
		return badRequest(probs)
	}
	if !s.accounts[req.AccountID] {
		return badRequest([]string{"account_id: account not found"})
	}
	title := s.channelTitle
	if req.Title != nil && *req.Title != "" {
		title = *req.Title
	}
	sc := s.connectLocked(req.AccountID, title, req.HookAPIVersion, req.IsTimeWindowDisabled)
	return chatOK(http.StatusOK, map[string]any{
		"account_id": sc.accountID, "scope_id": sc.id, "title": sc.title,
		"hook_api_version": sc.hookAPIVersion, "is_time_window_disabled": sc.timeWindowDisabled,
	})
}

// DELETE /v2/origin/custom/{channel_id}/disconnect
func (s *Server) chatDisconnect(r *http.Request) reply {
	if r.PathValue("channel") != s.channelID {
		return chatFail(http.StatusNotFound, "not_found", "channel not found")
	}
	var req struct {
		AccountID string `json:"account_id"`
	}
	if p := decodeJSON(bodyOf(r), &req); p != "" {
		return badRequest([]string{p})
	}
	if req.AccountID == "" {
		return badRequest([]string{"account_id is required"})
	}
	if sc := s.scopes[s.channelID+"_"+req.AccountID]; sc != nil {
		sc.connected = false
	}
	return reply{status: http.StatusOK}
}

type chatUserOut struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id,omitempty"`
	Name     string `json:"name"`
	Avatar   string `json:"avatar"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
}

// POST /v2/origin/custom/{scope_id}/chats
func (s *Server) chatCreate(r *http.Request) reply {
	sc, fail := s.scopeLocked(r)
	if fail != nil {
		return *fail
	}
	var req struct {
		ConversationID string         `json:"conversation_id"`
		Source         *wireSourceRef `json:"source"`
		User           *wireUser      `json:"user"`
	}
	if p := decodeJSON(bodyOf(r), &req); p != "" {
		return badRequest([]string{p})
	}
	var probs []string
	if req.ConversationID == "" {
		probs = append(probs, "conversation_id is required")
	}
	probs = checkUser(req.User, "user", true, probs)
	probs = checkSourceRef(req.Source, "source", probs)
	if len(probs) > 0 {
		return badRequest(probs)
	}
	c := sc.chatsByConv[req.ConversationID]
	if c == nil {
		ext := ""
		if req.Source != nil {
			ext = req.Source.ExternalID
		}
		c = s.newChatLocked(sc, req.ConversationID, s.participantLocked(sc, req.User), ext)
	}
	u := c.user
	return chatOK(http.StatusOK, map[string]any{
		"id":   c.id,
		"user": chatUserOut{ID: u.ID, ClientID: u.ClientID, Name: u.Name, Avatar: u.Avatar, Phone: u.Phone, Email: u.Email},
	})
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
	if len(probs) > 0 {
		return badRequest(probs)
	}
	// A replayed msgid (a retry) answers the first result, stores nothing.
	if m := sc.msgsByMsgID[p.MsgID]; m != nil {
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
	if p.ReplyTo != nil && p.ReplyTo.Message != nil && c != nil {
		if q := p.ReplyTo.Message; (q.ID != "" || q.MsgID != "") && findInChat(c, q.ID, q.MsgID) == nil {
			return badRequest([]string{"payload.reply_to.message: message not found in this chat"})
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
		sender: *sender, body: *p.Message, silent: p.Silent, ts: msgTime(p, s.now()), payload: clone(raw)}
	m.body.DeliveryStatus = nil
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

type historyUser struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Avatar   string `json:"avatar,omitempty"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
}

type historyMessage struct {
	ID           string        `json:"id"`
	ClientID     string        `json:"client_id,omitempty"`
	Type         string        `json:"type"`
	Text         string        `json:"text"`
	Media        string        `json:"media,omitempty"`
	Thumbnail    string        `json:"thumbnail,omitempty"`
	FileName     string        `json:"file_name,omitempty"`
	FileSize     int64         `json:"file_size,omitempty"`
	MediaGroupID string        `json:"media_group_id,omitempty"`
	Location     *wireLocation `json:"location,omitempty"`
	Contact      *wireContact  `json:"contact,omitempty"`
}

type historyItem struct {
	Timestamp     int64          `json:"timestamp"`
	MsecTimestamp int64          `json:"msec_timestamp"`
	Sender        historyUser    `json:"sender"`
	Receiver      *historyUser   `json:"receiver,omitempty"`
	Message       historyMessage `json:"message"`
}

func toHistoryUser(p Participant) historyUser {
	return historyUser{ID: p.ID, Name: p.Name, ClientID: p.ClientID, Avatar: p.Avatar, Phone: p.Phone, Email: p.Email}
}

// GET /v2/origin/custom/{scope_id}/chats/{chat_id}/history — newest first
// by message timestamp.
func (s *Server) chatHistory(r *http.Request) reply {
	sc, fail := s.scopeLocked(r)
	if fail != nil {
		return *fail
	}
	q := r.URL.Query()
	limit, offset := MaxHistoryLimit, 0
	var probs []string
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxHistoryLimit {
			probs = append(probs, fmt.Sprintf("limit must be an integer from 1 to %d", MaxHistoryLimit))
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			probs = append(probs, "offset must be a non-negative integer")
		}
		offset = n
	}
	if len(probs) > 0 {
		return badRequest(probs)
	}
	c := s.chats[r.PathValue("chat")]
	if c == nil || c.scopeID != sc.id || offset >= len(c.messages) {
		return reply{status: http.StatusNoContent}
	}
	items := make([]historyItem, 0, limit)
	for i := len(c.messages) - 1 - offset; i >= 0 && len(items) < limit; i-- {
		m := c.messages[i]
		it := historyItem{
			Timestamp: m.ts.Unix(), MsecTimestamp: m.ts.UnixMilli(), Sender: toHistoryUser(m.sender),
			Message: historyMessage{ID: m.id, ClientID: m.msgID, Type: m.body.Type, Text: m.body.Text,
				Media: m.body.Media, Thumbnail: m.body.Thumbnail, FileName: m.body.FileName, FileSize: m.body.FileSize,
				MediaGroupID: m.body.MediaGroupID, Location: m.body.Location, Contact: m.body.Contact},
		}
		if m.receiver != nil {
			u := toHistoryUser(*m.receiver)
			it.Receiver = &u
		}
		items = append(items, it)
	}
	return chatOK(http.StatusOK, map[string]any{"messages": items})
}

// POST /v2/origin/custom/{scope_id}/{msgid}/delivery_status — accepts both
// documented bodies: {"msgid","delivery_status",…} and {"status_code",…}.
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
		switch *status {
		case 1, 2:
		case -1:
			if req.ErrorCode < 901 || req.ErrorCode > 905 {
				probs = append(probs, "error_code from 901 to 905 is required with status -1")
			}
			if req.ErrorCode == 905 && req.Error == "" {
				probs = append(probs, "error is required with error_code 905")
			}
		default:
			probs = append(probs, "status must be 1 (delivered), 2 (read) or -1 (error)")
		}
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
