package kommotest

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/kommo-go/kommo"
)

// ---- helpers ----

func (s *Server) scopeLocked(r *http.Request) (*scopeState, *reply) {
	sc := s.scopes[r.PathValue("scope")]
	if sc == nil || !sc.connected {
		rep := chatFail(http.StatusNotFound, "not_found", "scope not found or channel not connected")
		return nil, &rep
	}
	return sc, nil
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

// touchTalkLocked opens a talk for an incoming message when the chat has
// none open, creating the contact and lead Kommo would put in Unsorted.
func (s *Server) touchTalkLocked(c *chatState) {
	now := s.now()
	if t := c.openTalk; t != nil {
		t.updatedAt, t.read = now, false
		s.talkHookLocked(t, false) // update_talk to subscribed CRM webhooks (crm_webhooks.go)
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
	s.talkHookLocked(t, true) // add_talk to subscribed CRM webhooks (crm_webhooks.go)
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
	if req.User != nil && req.User.RefID != "" {
		// Kommo's changelog: "Removed the user[ref_id] parameter from the
		// Create New Chat request". The fake refuses it so that a client
		// still sending it notices.
		probs = append(probs, "user.ref_id is not a parameter of create chat (Kommo removed it)")
	}
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

// GET /v2/origin/custom/{scope_id}/chats/{chat_id}/history — newest first
// by message timestamp. chat_id is the amojo chat id; a conversation_id of
// the scope is answered 404 (Kommo answers 204).
func (s *Server) chatHistory(r *http.Request) reply {
	sc, fail := s.scopeLocked(r)
	if fail != nil {
		return *fail
	}
	q := r.URL.Query()
	limit, offset := kommo.HistoryMaxLimit, 0
	var probs []string
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > kommo.HistoryMaxLimit {
			probs = append(probs, fmt.Sprintf("limit must be an integer from 1 to %d", kommo.HistoryMaxLimit))
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
	chatID := r.PathValue("chat")
	c := s.chats[chatID]
	if c == nil || c.scopeID != sc.id {
		if conv := sc.chatsByConv[chatID]; conv != nil {
			// Kommo would answer 204, an empty history, which hides the
			// mistake: the fake says what went wrong.
			return chatFail(http.StatusNotFound, "not_found", fmt.Sprintf(
				"chat %q is the integration's conversation_id; history takes the amojo chat id, here %q "+
					"(create chat's id, new_message.conversation_id, a webhook's conversation.id)", chatID, conv.id))
		}
		return reply{status: http.StatusNoContent}
	}
	if offset >= len(c.messages) {
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
		if m.replyTo != nil {
			it.Message.ReplyTo = &historyReplyTo{Message: *m.replyTo}
		}
		if m.receiver != nil {
			u := toHistoryUser(*m.receiver)
			it.Receiver = &u
		}
		items = append(items, it)
	}
	return chatOK(http.StatusOK, map[string]any{"messages": items})
}
