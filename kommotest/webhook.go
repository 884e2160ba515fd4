package kommotest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"time"

	"github.com/kommo-go/kommo/internal/chatsign"
)

type eventKind uint8

const (
	evManagerMessage eventKind = iota + 1
	evWriteFirst
	evTyping
	evReaction
)

// Event is a webhook Kommo sends to the integration. Build one with
// ManagerMessage, WriteFirstMessage, ManagerTyping or ManagerReaction and send
// it with Server.DeliverWebhook. The zero Event is invalid.
type Event struct {
	kind    eventKind
	chat    string
	text    string
	phone   string
	message string
	emoji   string
	scopeID string
	source  string
	manager *Participant // AsManager; nil: the server's manager
}

// ManagerMessage is a text message a manager writes in Kommo in an
// existing chat (amojo chat id or the integration's conversation id). On
// delivery it is stored as an outgoing message with a new amojo id, so a
// later delivery status for it succeeds, and sent as an outgoing-message
// webhook.
func ManagerMessage(chat, text string) Event {
	return Event{kind: evManagerMessage, chat: chat, text: text}
}

// WriteFirstMessage is a manager starting a chat from a contact's phone
// ("Write first"). On delivery a new chat without a conversation id is
// created in the main account's scope (see WithScope); the webhook has no
// conversation.client_id and its receiver carries the phone. The
// integration binds the chat by sending a message with both
// conversation_id and conversation_ref_id.
func WriteFirstMessage(phone, text string) Event {
	return Event{kind: evWriteFirst, phone: phone, text: text}
}

// ManagerTyping is the manager typing in a chat.
func ManagerTyping(chat string) Event {
	return Event{kind: evTyping, chat: chat}
}

// ManagerReaction is the manager reacting to a message of a chat with emoji,
// or removing their reaction when emoji is "". message is the
// amojo message id or the integration's msgid. The reaction is stored on
// the message.
func ManagerReaction(chat, message, emoji string) Event {
	return Event{kind: evReaction, chat: chat, message: message, emoji: emoji}
}

// WithScope restricts the chat lookup to a scope, or picks the scope a
// write-first chat is created in.
func (e Event) WithScope(scopeID string) Event {
	e.scopeID = scopeID
	return e
}

// WithSource sets the webhook's message.source.external_id (the source a
// write-first or manager message goes through).
func (e Event) WithSource(externalID string) Event {
	e.source = externalID
	return e
}

// ---- webhook wire shapes ----

type hookUser struct {
	ID       string  `json:"id"`
	Name     string  `json:"name,omitempty"`
	Phone    *string `json:"phone,omitempty"`
	Email    *string `json:"email,omitempty"`
	ClientID string  `json:"client_id,omitempty"`
}

type hookConversation struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id,omitempty"`
}

type hookBody struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Text      string `json:"text"`
	Tag       string `json:"tag"`
	Media     string `json:"media"`
	Thumbnail string `json:"thumbnail"`
	FileName  string `json:"file_name"`
	FileSize  int64  `json:"file_size"`
}

type hookMessage struct {
	Receiver      hookUser         `json:"receiver"`
	Sender        hookUser         `json:"sender"`
	Conversation  hookConversation `json:"conversation"`
	Source        *wireSourceRef   `json:"source,omitempty"`
	Timestamp     int64            `json:"timestamp"`
	MsecTimestamp int64            `json:"msec_timestamp"`
	Message       hookBody         `json:"message"`
}

type hookTyping struct {
	User         hookUser         `json:"user"`
	Conversation hookConversation `json:"conversation"`
	ExpiredAt    int64            `json:"expired_at"`
}

type hookReactionMessage struct {
	ID            string    `json:"id"`
	ClientID      string    `json:"client_id,omitempty"`
	Sender        hookUser  `json:"sender"`
	Receiver      *hookUser `json:"receiver,omitempty"`
	Timestamp     int64     `json:"timestamp"`
	MsecTimestamp int64     `json:"msec_timestamp"`
}

type hookReaction struct {
	MsgID        string              `json:"msgid"`
	Message      hookReactionMessage `json:"message"`
	User         hookUser            `json:"user"`
	Conversation hookConversation    `json:"conversation"`
	Type         string              `json:"type"`
	Emoji        string              `json:"emoji,omitempty"`
}

type hookAction struct {
	Typing   *hookTyping   `json:"typing,omitempty"`
	Reaction *hookReaction `json:"reaction,omitempty"`
}

type hookEnvelope struct {
	AccountID string       `json:"account_id"`
	Time      int64        `json:"time"`
	Message   *hookMessage `json:"message,omitempty"`
	Action    *hookAction  `json:"action,omitempty"`
}

// WebhookBody applies ev to the server's state (storing a manager message,
// creating a write-first chat, recording a reaction) and returns the JSON
// body Kommo would send, with the scope id it is for. Most callers want
// DeliverWebhook or NewWebhookRequest instead.
func (s *Server) WebhookBody(ev Event) (body []byte, scopeID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	env, scopeID, err := s.buildHookLocked(ev)
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil {
		return nil, "", fmt.Errorf("kommotest: encode webhook: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), scopeID, nil
}

func (s *Server) hookChatLocked(ev Event) (*chatState, *scopeState, error) {
	if ev.chat == "" {
		return nil, nil, errors.New("kommotest: event has no chat")
	}
	c := s.findChatLocked(ev.scopeID, ev.chat)
	if c == nil {
		return nil, nil, fmt.Errorf("kommotest: chat %q not found", ev.chat)
	}
	sc := s.scopes[c.scopeID]
	if !sc.connected {
		return nil, nil, fmt.Errorf("kommotest: scope %q is not connected; Kommo sends no webhooks for it", sc.id)
	}
	return c, sc, nil
}

func strPtr(v string) *string { return &v }

func clientHookUser(p Participant) hookUser {
	return hookUser{ID: p.ID, Phone: strPtr(p.Phone), Email: strPtr(p.Email), ClientID: p.ClientID}
}

func (s *Server) buildHookLocked(ev Event) (hookEnvelope, string, error) {
	now := s.now()
	env := hookEnvelope{AccountID: "", Time: now.Unix()}
	manager := hookUser{ID: s.managerAmojoID, Name: s.managerName}
	if ev.manager != nil {
		manager = hookUser{ID: ev.manager.ID, Name: ev.manager.Name}
	}
	switch ev.kind {
	case evManagerMessage, evWriteFirst:
		var c *chatState
		var sc *scopeState
		if ev.kind == evWriteFirst {
			scopeID := ev.scopeID
			if scopeID == "" {
				scopeID = s.ScopeID()
			}
			sc = s.scopes[scopeID]
			if sc == nil || !sc.connected {
				return env, "", fmt.Errorf("kommotest: scope %q is not connected; connect the channel first", scopeID)
			}
			if ev.phone == "" {
				return env, "", errors.New("kommotest: write-first event needs a phone")
			}
			u := &Participant{ID: s.newID(), Phone: ev.phone}
			sc.usersByAmojo[u.ID] = u
			c = s.newChatLocked(sc, "", u, ev.source)
		} else {
			var err error
			if c, sc, err = s.hookChatLocked(ev); err != nil {
				return env, "", err
			}
		}
		m := &msgState{id: s.newID(), scopeID: sc.id, chat: c, fromKommo: true,
			sender: Participant{ID: manager.ID, Name: manager.Name},
			body:   wireMessage{Type: "text", Text: ev.text}, ts: now.Truncate(time.Millisecond)} // Kommo reports milliseconds
		rc := *c.user
		m.receiver = &rc
		m.resp = newMessageResult{ConversationID: c.id, SenderID: manager.ID, ReceiverID: &rc.ID, MsgID: m.id}
		s.storeMessageLocked(m)
		hm := &hookMessage{
			Receiver:     clientHookUser(rc),
			Sender:       manager,
			Conversation: hookConversation{ID: c.id, ClientID: c.conversationID},
			Timestamp:    now.Unix(), MsecTimestamp: now.UnixMilli(),
			Message: hookBody{ID: m.id, Type: "text", Text: ev.text},
		}
		src := ev.source
		if src == "" {
			src = c.sourceExternalID
		}
		if src != "" {
			hm.Source = &wireSourceRef{ExternalID: src}
		}
		env.AccountID, env.Message = sc.accountID, hm
		return env, sc.id, nil

	case evTyping:
		c, sc, err := s.hookChatLocked(ev)
		if err != nil {
			return env, "", err
		}
		env.AccountID = sc.accountID
		env.Action = &hookAction{Typing: &hookTyping{User: hookUser{ID: manager.ID},
			Conversation: hookConversation{ID: c.id, ClientID: c.conversationID}, ExpiredAt: now.Add(5 * time.Second).Unix()}}
		return env, sc.id, nil

	case evReaction:
		c, sc, err := s.hookChatLocked(ev)
		if err != nil {
			return env, "", err
		}
		m := findInChat(c, ev.message, "")
		if m == nil {
			m = findInChat(c, "", ev.message)
		}
		if m == nil {
			return env, "", fmt.Errorf("kommotest: message %q not found in chat %q", ev.message, ev.chat)
		}
		typ := "react"
		if ev.emoji == "" {
			typ = "unreact"
		}
		setReaction(m, Reaction{UserID: manager.ID, Emoji: ev.emoji}, typ == "react")
		msgid := m.msgID
		if msgid == "" {
			msgid = m.id
		}
		var recv *hookUser
		if m.receiver != nil {
			recv = &hookUser{ID: m.receiver.ID}
		}
		env.AccountID = sc.accountID
		env.Action = &hookAction{Reaction: &hookReaction{
			MsgID: msgid,
			Message: hookReactionMessage{ID: m.id, ClientID: m.msgID, Sender: hookUser{ID: m.sender.ID}, Receiver: recv,
				Timestamp: m.ts.Unix(), MsecTimestamp: m.ts.UnixMilli()},
			User:         hookUser{ID: manager.ID},
			Conversation: hookConversation{ID: c.id, ClientID: c.conversationID},
			Type:         typ, Emoji: ev.emoji,
		}}
		return env, sc.id, nil
	}
	return env, "", errors.New("kommotest: invalid event (use ManagerMessage, WriteFirstMessage, ManagerTyping or ManagerReaction)")
}

// NewWebhookRequest applies ev to the server's state and returns the signed
// POST Kommo would send to url: Content-Type application/json and
// X-Signature = hex HMAC-SHA1 of the body keyed with the channel secret.
// A ":scope_id" marker in url is replaced by the event's scope id, as Kommo
// does with the channel's webhook URL. Use it to drive an http.Handler
// directly (httptest.NewRecorder); DeliverWebhook sends it over the network.
func (s *Server) NewWebhookRequest(ctx context.Context, url string, ev Event) (*http.Request, error) {
	if ctx == nil {
		return nil, errors.New("kommotest: nil context")
	}
	// Check the URL before the event changes any state.
	if u, err := neturl.Parse(strings.ReplaceAll(url, ":scope_id", "scope")); err != nil || u.Host == "" {
		return nil, fmt.Errorf("kommotest: webhook URL %q is not an absolute URL", url)
	}
	body, scopeID, err := s.WebhookBody(ev)
	if err != nil {
		return nil, err
	}
	url = strings.ReplaceAll(url, ":scope_id", scopeID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("kommotest: build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", chatsign.SignWebhookBody(body, s.channelSecret))
	req.Header.Set("User-Agent", "kommotest-webhooks/1.0")
	return req, nil
}

// WebhookError is returned by DeliverWebhook when the receiver answered
// anything but 200 (Kommo counts only a 200 as delivered and never
// retries).
type WebhookError struct {
	StatusCode int
	// Body is the start of the receiver's answer.
	Body string
}

// Error describes the failed delivery.
func (e *WebhookError) Error() string {
	return fmt.Sprintf("kommotest: webhook answered %d %s, want 200", e.StatusCode, http.StatusText(e.StatusCode))
}

// DeliverWebhook sends ev to url exactly as Kommo would: a signed JSON POST
// (see NewWebhookRequest), once, waiting at most WebhookTimeout for the
// answer and not following redirects. It returns a *WebhookError unless the
// receiver answered 200, or the transport error. The event's effect on the
// server's state (a stored manager message, a new write-first chat, a
// reaction) stays even if delivery fails, as in Kommo.
func (s *Server) DeliverWebhook(ctx context.Context, url string, ev Event) error {
	ctx, cancel := context.WithTimeout(ctx, WebhookTimeout)
	defer cancel()
	req, err := s.NewWebhookRequest(ctx, url, ev)
	if err != nil {
		return err
	}
	return s.deliver(req, "webhook", http.StatusOK, http.StatusOK)
}

// deliver sends a hook request the way Kommo does (once, no redirects
// followed) and returns a *WebhookError unless the receiver answered a
// status within [lo, hi], or the transport error naming what.
func (s *Server) deliver(req *http.Request, what string, lo, hi int) error {
	status, answer, err := s.post(req)
	if err != nil {
		return fmt.Errorf("kommotest: deliver %s: %w", what, err)
	}
	if status < lo || status > hi {
		return &WebhookError{StatusCode: status, Body: answer}
	}
	return nil
}

// post sends a hook request once, without following redirects, and
// returns the status and the first KiB of the answer.
func (s *Server) post(req *http.Request) (status int, answer string, err error) {
	hc := &http.Client{Transport: s.hookTransport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, string(b), nil
}
