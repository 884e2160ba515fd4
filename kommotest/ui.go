package kommotest

import (
	"context"
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The inbox's templates and script, embedded so that kommo fake --ui is one
// binary with no frontend build.
//
//go:embed ui/*.html ui/*.js ui/*.css
var inboxFiles embed.FS

var inboxTmpl = template.Must(template.New("").Funcs(template.FuncMap{
	"ticks": func(m Message) string {
		switch statusName(m) {
		case "delivered":
			return "✓✓"
		case "read":
			return "✓✓"
		case "error":
			return "⚠"
		}
		return "✓"
	},
	"status": statusName,
	"clock":  func(t time.Time) string { return t.UTC().Format("15:04:05") },
}).ParseFS(inboxFiles, "ui/*.html"))

// inbox is the web inbox's configuration (WithInbox).
type inbox struct {
	webhookURL string
}

// AsManager makes a ManagerMessage, WriteFirstMessage, ManagerTyping or
// ManagerReaction come from another manager than the server's (see
// ManagerAmojoID): the webhook's sender (or user) carries amojoID and name,
// and a stored message has them as its sender. Empty values keep the
// server's manager.
func (e Event) AsManager(amojoID, name string) Event {
	if amojoID != "" {
		e.manager = &Participant{ID: amojoID, Name: name}
	}
	return e
}

// WithInboxManagers adds managers the inbox's composer can reply as,
// besides the server's own (ManagerName). Each gets an amojo id derived
// from its name, so runs are repeatable. It needs WithInbox; an empty name
// is an error.
func WithInboxManagers(names ...string) Option {
	return func(s *Server) error {
		for _, n := range names {
			if strings.TrimSpace(n) == "" {
				return errors.New("WithInboxManagers: empty manager name")
			}
			h := sha1.Sum([]byte("kommotest-manager:" + n))
			x := hex.EncodeToString(h[:16])
			id := x[0:8] + "-" + x[8:12] + "-4" + x[13:16] + "-a" + x[17:20] + "-" + x[20:32]
			s.inboxManagers = append(s.inboxManagers, Participant{ID: id, Name: n})
		}
		return nil
	}
}

// WithInbox turns on the web inbox at AdminPrefix+"ui/": a page that plays
// Kommo's side for a person testing an integration by hand. It lists each
// connected account's chats and each chat's messages with their delivery
// status, and replies, types and reacts as the account's manager, posting
// the signed webhooks to webhookURL (":scope_id" is replaced by the scope
// id, as Kommo does). An empty webhookURL stores the manager's actions
// without sending webhooks.
func WithInbox(webhookURL string) Option {
	return func(s *Server) error {
		s.inbox = &inbox{webhookURL: webhookURL}
		return nil
	}
}

type inboxChat struct {
	Chat
	Title    string
	Messages []Message
}

type inboxScope struct {
	ID, AccountID, Title string
	Connected            bool
	Chats                []inboxChat
}

type inboxPage struct {
	Scopes     []inboxScope
	Chat       *inboxChat
	Managers   []Participant
	WebhookURL string
	Flash      string
}

func (s *Server) inboxData(chatID string) inboxPage {
	p := inboxPage{Managers: s.inboxManagerList(), WebhookURL: s.inbox.webhookURL}
	s.mu.Lock()
	for _, sc := range s.scopes {
		p.Scopes = append(p.Scopes, inboxScope{ID: sc.id, AccountID: sc.accountID, Title: sc.title, Connected: sc.connected})
	}
	s.mu.Unlock()
	slices.SortFunc(p.Scopes, func(a, b inboxScope) int { return strings.Compare(a.ID, b.ID) })
	byID := map[string]int{}
	for i, sc := range p.Scopes {
		byID[sc.ID] = i
	}
	for _, c := range s.Chats() {
		ic := inboxChat{Chat: c, Title: c.User.Name}
		if ic.Title == "" {
			ic.Title = c.User.Phone
		}
		if ic.Title == "" {
			ic.Title = c.ID
		}
		if c.ID == chatID {
			ic.Messages = s.Messages(c.ScopeID, c.ID)
			cp := ic
			p.Chat = &cp
		}
		if i, ok := byID[c.ScopeID]; ok {
			p.Scopes[i].Chats = append(p.Scopes[i].Chats, ic)
		}
	}
	return p
}

// serveInbox serves the web inbox; rest is the path after ".../ui/".
func (s *Server) serveInbox(w http.ResponseWriter, r *http.Request, rest string) {
	if s.inbox == nil {
		adminError(w, http.StatusNotFound, "the web inbox is off (kommo fake --ui, or kommotest.WithInbox)")
		return
	}
	parts := strings.Split(rest, "/")
	switch {
	case r.Method == http.MethodGet && rest == "":
		s.renderInbox(w, "page", s.inboxData(r.URL.Query().Get("chat")))
	case r.Method == http.MethodGet && (rest == "inbox.js" || rest == "inbox.css"):
		b, _ := inboxFiles.ReadFile("ui/" + rest)
		ctype := "text/javascript; charset=utf-8"
		if strings.HasSuffix(rest, ".css") {
			ctype = "text/css; charset=utf-8"
		}
		w.Header().Set("Content-Type", ctype)
		w.Write(b)
	case r.Method == http.MethodGet && rest == "live":
		// The parts of the page that change, polled by inbox.js.
		s.renderInbox(w, "live", s.inboxData(r.URL.Query().Get("chat")))
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "chat":
		s.inboxAction(w, r, parts[1], parts[2])
	default:
		adminError(w, http.StatusNotFound, "no such inbox page: "+r.Method+" "+r.URL.Path)
	}
}

// inboxManagerList returns the managers the composer offers, the
// server's own first.
func (s *Server) inboxManagerList() []Participant {
	return append([]Participant{{ID: s.managerAmojoID, Name: s.managerName}}, s.inboxManagers...)
}

func (s *Server) renderInbox(w http.ResponseWriter, name string, p inboxPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := inboxTmpl.ExecuteTemplate(w, name, p); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// inboxAction carries out a manager's action from the inbox's forms and
// sends its webhook, then shows the chat again.
func (s *Server) inboxAction(w http.ResponseWriter, r *http.Request, chatID, action string) {
	if err := r.ParseForm(); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	var ev Event
	switch action {
	case "reply":
		text := strings.TrimSpace(r.PostForm.Get("text"))
		if text == "" {
			http.Redirect(w, r, AdminPrefix+"ui/?chat="+chatID, http.StatusSeeOther)
			return
		}
		ev = ManagerMessage(chatID, text)
	case "typing":
		ev = ManagerTyping(chatID)
	case "react":
		ev = ManagerReaction(chatID, r.PostForm.Get("message"), r.PostForm.Get("emoji"))
	default:
		adminError(w, http.StatusNotFound, "no such inbox action: "+action)
		return
	}
	if id := r.PostForm.Get("manager"); id != "" {
		for _, m := range s.inboxManagerList() {
			if m.ID == id {
				ev = ev.AsManager(m.ID, m.Name)
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), WebhookTimeout)
	defer cancel()
	flash := ""
	if err := s.deliverFromInbox(ctx, s.inbox.webhookURL, ev); err != nil {
		flash = err.Error()
	}
	if r.Header.Get("X-Inbox-Fetch") != "" { // inbox.js: answer the flash only
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(flash))
		return
	}
	p := s.inboxData(chatID)
	p.Flash = flash
	s.renderInbox(w, "page", p)
}
