package kommotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// AdminPrefix is the path under which a Server serves its admin API, for
// tests written in any language against a standalone fake (kommo fake):
//
//	GET    /_kommotest/config    channel, account, token and URLs
//	GET    /_kommotest/state     scopes, chats with their messages, talks, sources
//	POST   /_kommotest/reset     forget every chat, message, talk, link, source, fault and request
//	POST   /_kommotest/connect   {"account_id": "..."} connects the channel (default: the main account)
//	POST   /_kommotest/webhooks  {"url": "...", "event": {...}} delivers a signed webhook
//	POST   /_kommotest/faults    {"kind": "status", "count": 1, "status": 503, ...} queues faults
//	DELETE /_kommotest/faults    drops queued faults
//	GET    /_kommotest/requests  the recorded requests
//	DELETE /_kommotest/requests  forgets them
//
// Admin requests are neither recorded nor subject to faults or the rate
// limit, and need no signature or token. Answers are JSON; errors are
// {"error": "..."} with a 4xx status.
const AdminPrefix = "/_kommotest/"

// WithListener makes the server accept connections on l instead of a new
// loopback port, so a standalone fake can listen on a chosen address. The
// server closes l when it closes. A nil l is an error.
func WithListener(l net.Listener) Option {
	return func(s *Server) error {
		if l == nil {
			return errors.New("WithListener: nil listener")
		}
		s.listener = l
		return nil
	}
}

// AdminEvent is the "event" object of POST /_kommotest/webhooks: one of the
// webhooks Server.DeliverWebhook sends, named by Type.
type AdminEvent struct {
	// Type is "manager_message" (Chat, Text), "write_first" (Phone, Text),
	// "typing" (Chat) or "reaction" (Chat, Message, Emoji; an empty Emoji
	// removes the reaction).
	Type    string `json:"type"`
	Chat    string `json:"chat,omitempty"`
	Text    string `json:"text,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Message string `json:"message,omitempty"`
	Emoji   string `json:"emoji,omitempty"`
	// ScopeID restricts the chat lookup, or picks a write-first chat's scope.
	ScopeID string `json:"scope_id,omitempty"`
	// Source is the message's source external id.
	Source string `json:"source,omitempty"`
}

// Event returns the Event a, or an error naming what is missing.
func (a AdminEvent) Event() (Event, error) {
	var ev Event
	switch a.Type {
	case "manager_message":
		if a.Chat == "" || a.Text == "" {
			return ev, errors.New(`manager_message needs "chat" and "text"`)
		}
		ev = ManagerMessage(a.Chat, a.Text)
	case "write_first":
		if a.Phone == "" || a.Text == "" {
			return ev, errors.New(`write_first needs "phone" and "text"`)
		}
		ev = WriteFirstMessage(a.Phone, a.Text)
	case "typing":
		if a.Chat == "" {
			return ev, errors.New(`typing needs "chat"`)
		}
		ev = ManagerTyping(a.Chat)
	case "reaction":
		if a.Chat == "" || a.Message == "" {
			return ev, errors.New(`reaction needs "chat" and "message"`)
		}
		ev = ManagerReaction(a.Chat, a.Message, a.Emoji)
	default:
		return ev, fmt.Errorf("unknown event type %q (want manager_message, write_first, typing or reaction)", a.Type)
	}
	if a.ScopeID != "" {
		ev = ev.WithScope(a.ScopeID)
	}
	if a.Source != "" {
		ev = ev.WithSource(a.Source)
	}
	return ev, nil
}

// adminFault is the body of POST /_kommotest/faults.
type adminFault struct {
	// Kind is status, reset, stall, truncate or drop.
	Kind  string `json:"kind"`
	Count int    `json:"count"`
	// Status and RetryAfter are for kind status.
	Status     int    `json:"status"`
	RetryAfter string `json:"retry_after"`
	// StallMS is for kind stall.
	StallMS int `json:"stall_ms"`
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, AdminPrefix)
	if path == "ui" || strings.HasPrefix(path, "ui/") {
		s.serveInbox(w, r, strings.TrimPrefix(strings.TrimPrefix(path, "ui"), "/"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBody))
	if err != nil {
		return
	}
	route := r.Method + " " + strings.TrimSuffix(path, "/")
	switch route {
	case "GET config":
		adminJSON(w, http.StatusOK, s.adminConfig(r))
	case "GET state":
		adminJSON(w, http.StatusOK, s.adminState())
	case "POST reset":
		s.Reset()
		adminJSON(w, http.StatusOK, map[string]any{"reset": true})
	case "POST connect":
		var req struct {
			AccountID string `json:"account_id"`
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				adminError(w, http.StatusBadRequest, "body: "+err.Error())
				return
			}
		}
		if req.AccountID == "" {
			req.AccountID = s.accountAmojoID
		}
		s.mu.Lock()
		known := s.accounts[req.AccountID]
		s.mu.Unlock()
		if !known {
			adminError(w, http.StatusBadRequest, fmt.Sprintf("unknown account %q", req.AccountID))
			return
		}
		adminJSON(w, http.StatusOK, map[string]any{"scope_id": s.Connect(req.AccountID)})
	case "POST webhooks":
		var req struct {
			URL   string     `json:"url"`
			Event AdminEvent `json:"event"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			adminError(w, http.StatusBadRequest, "body: "+err.Error())
			return
		}
		ev, err := req.Event.Event()
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		if req.URL == "" {
			adminError(w, http.StatusBadRequest, `"url" is required`)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), WebhookTimeout)
		defer cancel()
		hookReq, err := s.NewWebhookRequest(ctx, req.URL, ev)
		if err != nil { // a bad URL or an event the state cannot take
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		status, answer, err := s.post(hookReq)
		if err != nil {
			adminError(w, http.StatusBadGateway, "kommotest: deliver webhook: "+err.Error())
			return
		}
		out := map[string]any{"delivered": status == http.StatusOK, "status": status}
		if status != http.StatusOK {
			out["error"] = (&WebhookError{StatusCode: status, Body: answer}).Error()
			out["answer"] = answer
		}
		adminJSON(w, http.StatusOK, out)
	case "POST faults":
		var f adminFault
		if err := json.Unmarshal(body, &f); err != nil {
			adminError(w, http.StatusBadRequest, "body: "+err.Error())
			return
		}
		if f.Count <= 0 {
			f.Count = 1
		}
		switch f.Kind {
		case "status":
			s.FailNext(f.Count, f.Status, f.RetryAfter)
		case "reset":
			s.ResetNext(f.Count)
		case "stall":
			s.StallNext(f.Count, time.Duration(f.StallMS)*time.Millisecond)
		case "truncate":
			s.TruncateNext(f.Count)
		case "drop":
			s.DropResponseNext(f.Count)
		default:
			adminError(w, http.StatusBadRequest, fmt.Sprintf("unknown fault kind %q (want status, reset, stall, truncate or drop)", f.Kind))
			return
		}
		adminJSON(w, http.StatusOK, map[string]any{"pending": s.PendingFaults()})
	case "DELETE faults":
		s.ClearFaults()
		adminJSON(w, http.StatusOK, map[string]any{"pending": 0})
	case "GET requests":
		adminJSON(w, http.StatusOK, adminRequests(s.Requests()))
	case "DELETE requests":
		s.ResetRequests()
		adminJSON(w, http.StatusOK, map[string]any{"requests": 0})
	default:
		adminError(w, http.StatusNotFound, "no such admin endpoint: "+r.Method+" "+r.URL.Path)
	}
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	adminJSON(w, status, map[string]string{"error": msg})
}

func (s *Server) adminConfig(r *http.Request) map[string]any {
	return map[string]any{
		"base_url":         baseURL(r),
		"channel_id":       s.channelID,
		"channel_secret":   s.channelSecret,
		"channel_code":     s.channelCode,
		"account_amojo_id": s.accountAmojoID,
		"account_id":       s.accountID,
		"scope_id":         s.ScopeID(),
		"access_token":     s.staticToken,
		"bot_id":           s.botID,
		"manager_amojo_id": s.managerAmojoID,
		"manager_name":     s.managerName,
	}
}

// adminMessage is a message as GET /_kommotest/state shows it.
type adminMessage struct {
	ID             string     `json:"id"`
	MsgID          string     `json:"msgid,omitempty"`
	Incoming       bool       `json:"incoming"`
	FromKommo      bool       `json:"from_kommo"`
	SenderID       string     `json:"sender_id"`
	SenderName     string     `json:"sender_name,omitempty"`
	Type           string     `json:"type"`
	Text           string     `json:"text,omitempty"`
	Media          string     `json:"media,omitempty"`
	Timestamp      int64      `json:"msec_timestamp"`
	DeliveryStatus string     `json:"delivery_status"`
	DeliveryError  string     `json:"delivery_error,omitempty"`
	Reactions      []Reaction `json:"reactions,omitempty"`
}

type adminChat struct {
	ID             string         `json:"id"`
	ScopeID        string         `json:"scope_id"`
	ConversationID string         `json:"conversation_id,omitempty"`
	UserID         string         `json:"user_id"`
	UserClientID   string         `json:"user_client_id,omitempty"`
	UserName       string         `json:"user_name,omitempty"`
	Messages       []adminMessage `json:"messages"`
}

// statusName names a delivery status as the inbox and the admin API show it.
func statusName(m Message) string {
	switch m.DeliveryStatus {
	case 1:
		return "delivered"
	case 2:
		return "read"
	case -1:
		return "error"
	}
	return "sent"
}

func toAdminMessage(m Message) adminMessage {
	return adminMessage{ID: m.ID, MsgID: m.MsgID, Incoming: m.Incoming, FromKommo: m.FromKommo,
		SenderID: m.Sender.ID, SenderName: m.Sender.Name, Type: string(m.Type), Text: m.Text, Media: m.Media,
		Timestamp: m.Timestamp.UnixMilli(), DeliveryStatus: statusName(m), DeliveryError: m.DeliveryError,
		Reactions: m.Reactions}
}

func (s *Server) adminState() map[string]any {
	s.mu.Lock()
	var scopes []map[string]any
	for _, sc := range s.scopes {
		scopes = append(scopes, map[string]any{"id": sc.id, "account_id": sc.accountID, "connected": sc.connected, "title": sc.title})
	}
	s.mu.Unlock()
	slices.SortFunc(scopes, func(a, b map[string]any) int { return strings.Compare(a["id"].(string), b["id"].(string)) })
	chats := []adminChat{}
	for _, c := range s.Chats() {
		ac := adminChat{ID: c.ID, ScopeID: c.ScopeID, ConversationID: c.ConversationID,
			UserID: c.User.ID, UserClientID: c.User.ClientID, UserName: c.User.Name, Messages: []adminMessage{}}
		for _, m := range s.Messages(c.ScopeID, c.ID) {
			ac.Messages = append(ac.Messages, toAdminMessage(m))
		}
		chats = append(chats, ac)
	}
	talks := []map[string]any{}
	for _, t := range s.Talks() {
		talks = append(talks, map[string]any{"id": t.ID, "chat_id": t.ChatID, "contact_id": t.ContactID,
			"lead_id": t.LeadID, "closed": t.Closed})
	}
	if scopes == nil {
		scopes = []map[string]any{}
	}
	return map[string]any{"scopes": scopes, "chats": chats, "talks": talks, "sources": s.Sources()}
}

func adminRequests(reqs []RecordedRequest) []map[string]any {
	out := make([]map[string]any, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, map[string]any{"seq": r.Seq, "method": r.Method, "path": r.Path,
			"query": r.Query.Encode(), "status": r.Status, "fault": r.Fault, "body": string(r.Body)})
	}
	return out
}

// Reset forgets every scope, chat, message, talk, contact link, source,
// issued OAuth token and code (and their accounts), user added with
// AddUser, chat template, CRM webhook subscription, Salesbot request,
// rate-limit bucket and count, queued fault and recorded request, as if
// the server had just started (its identities, options and the static
// access token stay). Request numbers go on.
func (s *Server) Reset() {
	s.mu.Lock()
	s.scopes = map[string]*scopeState{}
	s.chats = map[string]*chatState{}
	s.msgs = map[string]*msgState{}
	s.talks = map[int]*talkState{}
	s.talkSeq = nil
	s.links = map[string]*linkState{}
	s.sources = map[int]*sourceState{}
	s.srcOrder = nil
	s.tokens = map[string]time.Time{s.staticToken: {}}
	s.refresh = map[string]time.Time{}
	s.codes = map[string]time.Time{}
	s.acct = accountTokens{}
	s.faults = nil
	// Users added with AddUser, templates, CRM webhook subscriptions and
	// Salesbot state; the CRM webhook queue delivers what it holds.
	s.integ.users = nil
	s.integ.templates, s.integ.tplOrder = nil, nil
	s.integ.hooks = nil
	s.integ.salesbot = salesbotState{}
	s.mu.Unlock()
	s.keyLimits.reset()
	s.ResetRequests()
}

// deliverFromInbox sends an inbox action's webhook to url, or with no url
// only applies it to the state (the inbox still shows it).
func (s *Server) deliverFromInbox(ctx context.Context, url string, ev Event) error {
	if url == "" {
		_, _, err := s.WebhookBody(ev) // apply it anyway: the inbox shows it
		return err
	}
	return s.DeliverWebhook(ctx, url, ev)
}
