package kommotest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// ---- replies ----

type href struct {
	Href string `json:"href"`
}

type selfLinks struct {
	Self href `json:"self"`
}

type idRef struct {
	ID int `json:"id"`
}

func selfLink(r *http.Request, path string) selfLinks {
	return selfLinks{Self: href{Href: baseURL(r) + path}}
}

// ---- account ----

// accountCreatedAt is when the fake account was created and last changed
// (2024-01-01T00:00:00Z), reported as created_at and updated_at.
const accountCreatedAt = 1704067200

// GET /api/v4/account?with=amojo_id,amojo_rights
func (s *Server) crmAccount(r *http.Request) reply {
	with := map[string]bool{}
	for _, v := range r.URL.Query()["with"] {
		for _, w := range strings.Split(v, ",") {
			with[strings.TrimSpace(w)] = true
		}
	}
	out := map[string]any{
		"id": s.accountID, "name": "kommotest", "subdomain": s.subdomain,
		"created_at": accountCreatedAt, "created_by": 0, "updated_at": accountCreatedAt, "updated_by": 0,
		"current_user_id": s.managerUserID, "country": "US", "currency": "USD", "currency_symbol": "$",
		"customers_mode": "disabled", "is_unsorted_on": true, "is_loss_reason_enabled": true,
		"is_helpbot_enabled": false, "is_technical_account": false, "contact_name_display_order": 1,
		"_links": selfLink(r, "/api/v4/account"),
	}
	if with["amojo_id"] {
		out["amojo_id"] = s.accountAmojoID
	}
	if with["amojo_rights"] {
		out["_embedded"] = map[string]any{"amojo_rights": map[string]bool{"can_direct": true, "can_create_groups": true}}
	}
	return crmOK(http.StatusOK, out)
}

// ---- talks ----

type talkOut struct {
	TalkID     int       `json:"talk_id"`
	CreatedAt  int64     `json:"created_at"`
	UpdatedAt  int64     `json:"updated_at"`
	Rate       int       `json:"rate"`
	ContactID  int       `json:"contact_id"`
	ChatID     string    `json:"chat_id"`
	EntityID   *int      `json:"entity_id"`
	EntityType *string   `json:"entity_type"`
	IsInWork   bool      `json:"is_in_work"`
	IsRead     bool      `json:"is_read"`
	Origin     string    `json:"origin"`
	MissedAt   *int64    `json:"missed_at"`
	AccountID  int       `json:"account_id"`
	Links      selfLinks `json:"_links"`
	Embedded   struct {
		Contacts  []idRef `json:"contacts"`
		Leads     []idRef `json:"leads"`
		Customers []idRef `json:"customers"`
	} `json:"_embedded"`
}

func (s *Server) talkByPath(r *http.Request) *talkState {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return nil
	}
	return s.talks[id]
}

// GET /api/v4/talks/{id}
func (s *Server) crmTalkGet(r *http.Request) reply {
	t := s.talkByPath(r)
	if t == nil {
		return crmFail(http.StatusNotFound, "talk not found")
	}
	lead, entity := t.leadID, "lead"
	out := talkOut{TalkID: t.id, CreatedAt: t.createdAt.Unix(), UpdatedAt: t.updatedAt.Unix(), ContactID: t.contactID,
		ChatID: t.chatID, EntityID: &lead, EntityType: &entity, IsInWork: !t.closed, IsRead: t.read,
		Origin: s.channelCode, AccountID: s.accountID, Links: selfLink(r, "/api/v4/talks/"+strconv.Itoa(t.id))}
	out.Embedded.Contacts = []idRef{{t.contactID}}
	out.Embedded.Leads = []idRef{{t.leadID}}
	out.Embedded.Customers = []idRef{}
	return crmOK(http.StatusOK, out)
}

// POST /api/v4/talks/{id}/close — 202, then 422 once closed.
func (s *Server) crmTalkClose(r *http.Request) reply {
	var req struct {
		ForceClose bool `json:"force_close"`
	}
	if body := bodyOf(r); len(strings.TrimSpace(string(body))) > 0 {
		if p := decodeJSON(body, &req); p != "" {
			return crmFail(http.StatusBadRequest, p)
		}
	}
	t := s.talkByPath(r)
	if t == nil {
		return crmFail(http.StatusNotFound, "talk not found")
	}
	if t.closed {
		return crmFail(http.StatusUnprocessableEntity, "talk is already closed")
	}
	t.closed, t.force, t.updatedAt = true, req.ForceClose, s.now()
	s.talkHookLocked(t, false) // update_talk (crm_webhooks.go)
	if c := s.chats[t.chatID]; c != nil && c.openTalk == t {
		c.openTalk = nil
	}
	return reply{status: http.StatusAccepted}
}

// ---- contacts ↔ chats ----

type linkOut struct {
	ChatID    string `json:"chat_id"`
	ContactID int    `json:"contact_id"`
	ID        int    `json:"id"`
	RequestID string `json:"request_id,omitempty"`
}

func queryList(q url.Values, key string) []string {
	var out []string
	for k, vs := range q {
		if k == key || k == key+"[]" || strings.HasPrefix(k, key+"[") {
			for _, v := range vs {
				for _, x := range strings.Split(v, ",") {
					if x = strings.TrimSpace(x); x != "" {
						out = append(out, x)
					}
				}
			}
		}
	}
	return out
}

// GET /api/v4/contacts/chats?contact_id=…|chat_id=…
func (s *Server) crmLinksList(r *http.Request) reply {
	q := r.URL.Query()
	contacts, chats := queryList(q, "contact_id"), queryList(q, "chat_id")
	if (len(contacts) == 0) == (len(chats) == 0) {
		return crmFail(http.StatusBadRequest, "exactly one of contact_id and chat_id is required")
	}
	wantContact := map[int]bool{}
	for _, c := range contacts {
		n, err := strconv.Atoi(c)
		if err != nil || n <= 0 {
			return crmFail(http.StatusBadRequest, "contact_id must be a positive integer")
		}
		wantContact[n] = true
	}
	wantChat := map[string]bool{}
	for _, c := range chats {
		wantChat[c] = true
	}
	var out []linkOut
	for _, l := range s.links {
		if wantContact[l.contactID] || wantChat[l.chatID] {
			out = append(out, linkOut{ChatID: l.chatID, ContactID: l.contactID, ID: l.id})
		}
	}
	if len(out) == 0 {
		return reply{status: http.StatusNoContent}
	}
	slices.SortFunc(out, func(a, b linkOut) int { return a.ID - b.ID })
	return crmOK(http.StatusOK, map[string]any{"_total_items": len(out), "_embedded": map[string]any{"chats": out}})
}

// POST /api/v4/contacts/chats
func (s *Server) crmLinksCreate(r *http.Request) reply {
	var items []struct {
		ContactID int    `json:"contact_id"`
		ChatID    string `json:"chat_id"`
		RequestID string `json:"request_id"`
	}
	if p := decodeJSON(bodyOf(r), &items); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	if len(items) == 0 {
		return crmFail(http.StatusBadRequest, "empty request")
	}
	var v verrs
	for i := range items {
		it := &items[i]
		if it.RequestID == "" {
			it.RequestID = strconv.Itoa(i)
		}
		if it.ContactID <= 0 {
			v.add(it.RequestID, "NotSupportedChoice", "contact_id", "contact_id must be a positive integer")
		}
		if it.ChatID == "" {
			v.add(it.RequestID, "NotBlank", "chat_id", "This value should not be blank.")
		} else if s.chats[it.ChatID] == nil {
			v.add(it.RequestID, "EntityNotFound", "chat_id", "chat not found among this integration's chats")
		}
	}
	if rep := v.reply(); rep != nil {
		return *rep
	}
	out := make([]linkOut, 0, len(items))
	for _, it := range items {
		l := &linkState{id: s.nextLinkID, chatID: it.ChatID, contactID: it.ContactID}
		s.nextLinkID++
		s.links[it.ChatID] = l
		out = append(out, linkOut{ChatID: l.chatID, ContactID: l.contactID, ID: l.id, RequestID: it.RequestID})
	}
	return crmOK(http.StatusOK, map[string]any{"_total_items": len(out), "_embedded": map[string]any{"chats": out}})
}

// ---- sources ----

// ---- OAuth ----
