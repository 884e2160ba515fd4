package kommo

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// CRMWebhook is one delivery of CRM webhooks (see CRMWebhooksService): the
// account it is about and its events, in the order entity, action, index.
// Kommo posts it form-encoded (talk[add][0][talk_id]=…); Form keeps every
// value as sent.
type CRMWebhook struct {
	Account CRMWebhookAccount
	Events  []CRMEvent
	Form    url.Values
}

// CRMWebhookAccount is the account[…] part of a CRM webhook.
type CRMWebhookAccount struct {
	ID        int
	Subdomain string
	// Self is account[_links][self], the account's address.
	Self string
}

// CRMEvent is one event of a CRMWebhook: *CRMTalkEvent,
// *CRMMessageEvent, *CRMTemplateReviewEvent or *CRMUnknownEvent.
type CRMEvent interface {
	// CRMEventName is the event's subscription name, e.g. "add_talk".
	CRMEventName() string
}

// CRMTalkEvent is talk[add][i] (add_talk) or talk[update][i]
// (update_talk): how an integration learns the talk id of a chat (for
// Talks.Get and Talks.Close), which the Chat API never returns. The field
// list is the talk model's (GET /api/v4/talks/{id}); Kommo's webhook page
// does not list it, so fields it leaves out stay zero and Fields has
// everything sent.
type CRMTalkEvent struct {
	// Action is "add" or "update".
	Action     string
	TalkID     int
	ChatID     string
	ContactID  int
	EntityID   int
	EntityType string
	Origin     string
	IsInWork   bool
	IsRead     bool
	Rate       int
	CreatedAt  int64
	UpdatedAt  int64
	AccountID  int
	// Fields are the item's values by key (nested keys as "a[b]").
	Fields map[string]string
}

// CRMEventName returns "add_talk" or "update_talk".
func (e *CRMTalkEvent) CRMEventName() string { return e.Action + "_talk" }

// CRMMessageEvent is message[add][i]: a message that arrived in a chat of
// the account (any channel), with the lead or contact it belongs to.
type CRMMessageEvent struct {
	ID     string
	ChatID string
	TalkID int
	// ContactID is the contact of the chat.
	ContactID int
	Text      string
	CreatedAt int64
	// Origin is the channel, e.g. "telegram".
	Origin     string
	AuthorID   string
	AuthorName string
	AuthorType string
	// AttachmentType and AttachmentLink describe a file, when there is one.
	AttachmentType string
	AttachmentLink string
	// ElementID and ElementType are the entity the chat is attached to
	// (element_type 1 contact, 2 lead, 3 company, 12 customer).
	ElementID   int
	ElementType int
	EntityID    int
	EntityType  string
	Fields      map[string]string
}

// CRMEventName returns "add_message".
func (e *CRMMessageEvent) CRMEventName() string { return "add_message" }

// CRMTemplateReviewEvent is add_chat_template_review: a WhatsApp template
// sent for review, with its reviews. Kommo's webhooks-format page shows
// the template at the top level (add[0][…]); a template under an entity
// key is read the same way.
type CRMTemplateReviewEvent struct {
	TemplateID   int64
	Name         string
	Type         TemplateType
	Content      string
	IsOnReview   bool
	WABACategory string
	WABALanguage string
	Reviews      []TemplateReview
	Fields       map[string]string
}

// CRMEventName returns "add_chat_template_review".
func (e *CRMTemplateReviewEvent) CRMEventName() string { return CRMEventAddChatTemplateReview }

// CRMUnknownEvent is any other event (leads, contacts, tasks, …), kept raw.
type CRMUnknownEvent struct {
	// Entity and Action are the first two keys: leads[status][0] is
	// Entity "leads", Action "status".
	Entity string
	Action string
	// Fields are the item's values by key; an event whose action holds a
	// bare value (a deletion: {"entity":{"delete":"id"}}) has it under "".
	Fields map[string]string
}

// CRMEventName returns Action + "_" + Entity, e.g. "status_leads".
func (e *CRMUnknownEvent) CRMEventName() string { return e.Action + "_" + e.Entity }

// ParseCRMWebhookBody reads a form-encoded CRM webhook body. A body that is
// not a form is an error matching ErrWebhookMalformed.
func ParseCRMWebhookBody(body []byte) (*CRMWebhook, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("kommo: CRM webhook: %v: %w", err, ErrWebhookMalformed)
	}
	return parseCRMForm(form)
}

// formNode is one key of a form's nested-key tree.
type formNode struct {
	value    string
	children map[string]*formNode
}

func (n *formNode) child(k string) *formNode {
	if n.children == nil {
		n.children = map[string]*formNode{}
	}
	c := n.children[k]
	if c == nil {
		c = &formNode{}
		n.children[k] = c
	}
	return c
}

// formPath splits "a[b][0][c]" into a, b, 0, c.
func formPath(key string) []string {
	head, rest, ok := strings.Cut(key, "[")
	if !ok {
		return []string{key}
	}
	path := []string{head}
	for rest != "" {
		seg, after, ok := strings.Cut(rest, "]")
		if !ok {
			return append(path, rest)
		}
		path = append(path, seg)
		rest = strings.TrimPrefix(after, "[")
	}
	return path
}

// sortedKeys orders keys numerically when both are numbers.
func sortedKeys(m map[string]*formNode) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		na, ea := strconv.Atoi(a)
		nb, eb := strconv.Atoi(b)
		if ea == nil && eb == nil {
			return cmp.Compare(na, nb)
		}
		return strings.Compare(a, b)
	})
	return keys
}

// flatten returns n's leaves by their keys below n: "a", "a[b]".
func (n *formNode) flatten() map[string]string {
	out := map[string]string{}
	var walk func(prefix string, n *formNode)
	walk = func(prefix string, n *formNode) {
		if len(n.children) == 0 {
			out[prefix] = n.value
			return
		}
		for k, c := range n.children {
			if prefix == "" {
				walk(k, c)
			} else {
				walk(prefix+"["+k+"]", c)
			}
		}
	}
	walk("", n)
	return out
}

func parseCRMForm(form url.Values) (*CRMWebhook, error) {
	root := &formNode{}
	for key, vals := range form {
		n := root
		for _, seg := range formPath(key) {
			n = n.child(seg)
		}
		if len(vals) > 0 {
			n.value = vals[len(vals)-1]
		}
	}
	hook := &CRMWebhook{Form: form}
	if acc := root.children["account"]; acc != nil {
		f := acc.flatten()
		hook.Account = CRMWebhookAccount{ID: atoiLoose(f["id"]), Subdomain: f["subdomain"], Self: f["_links[self]"]}
	}
	for _, entity := range sortedKeys(root.children) {
		en := root.children[entity]
		switch entity {
		case "account":
			continue
		case "add":
			// The template review hook as documented: add[i][…] at the top.
			for _, i := range sortedKeys(en.children) {
				hook.Events = append(hook.Events, crmItemEvent("", "add", en.children[i]))
			}
			continue
		}
		if len(en.children) == 0 {
			hook.Events = append(hook.Events, &CRMUnknownEvent{Entity: entity, Fields: map[string]string{"": en.value}})
			continue
		}
		for _, action := range sortedKeys(en.children) {
			an := en.children[action]
			if len(an.children) == 0 {
				hook.Events = append(hook.Events, &CRMUnknownEvent{Entity: entity, Action: action, Fields: map[string]string{"": an.value}})
				continue
			}
			for _, i := range sortedKeys(an.children) {
				hook.Events = append(hook.Events, crmItemEvent(entity, action, an.children[i]))
			}
		}
	}
	return hook, nil
}

// crmItemEvent types one item of entity[action][i].
func crmItemEvent(entity, action string, item *formNode) CRMEvent {
	f := item.flatten()
	if len(item.children) == 0 {
		f = map[string]string{"": item.value}
	}
	switch {
	case entity == "talk" && (action == "add" || action == "update"):
		return &CRMTalkEvent{
			Action: action, TalkID: atoiLoose(firstOf(f, "talk_id", "id")), ChatID: f["chat_id"], ContactID: atoiLoose(f["contact_id"]),
			EntityID: atoiLoose(f["entity_id"]), EntityType: f["entity_type"], Origin: f["origin"],
			IsInWork: boolLoose(f["is_in_work"]), IsRead: boolLoose(f["is_read"]), Rate: atoiLoose(f["rate"]),
			CreatedAt: int64(atoiLoose(f["created_at"])), UpdatedAt: int64(atoiLoose(f["updated_at"])), AccountID: atoiLoose(f["account_id"]),
			Fields: f,
		}
	case entity == "message" && action == "add":
		return &CRMMessageEvent{
			ID: f["id"], ChatID: f["chat_id"], TalkID: atoiLoose(f["talk_id"]), ContactID: atoiLoose(f["contact_id"]),
			Text: f["text"], CreatedAt: int64(atoiLoose(f["created_at"])), Origin: f["origin"],
			AuthorID: f["author[id]"], AuthorName: f["author[name]"], AuthorType: f["author[type]"],
			AttachmentType: f["attachment[type]"], AttachmentLink: f["attachment[link]"],
			ElementID: atoiLoose(f["element_id"]), ElementType: atoiLoose(f["element_type"]),
			EntityID: atoiLoose(f["entity_id"]), EntityType: f["entity_type"], Fields: f,
		}
	case action == "add" && item.children["reviews"] != nil:
		ev := &CRMTemplateReviewEvent{
			TemplateID: int64(atoiLoose(f["id"])), Name: f["name"], Type: TemplateType(f["type"]), Content: f["content"],
			IsOnReview: boolLoose(f["is_on_review"]), WABACategory: f["waba_category"], WABALanguage: f["waba_language"], Fields: f,
		}
		revs := item.children["reviews"]
		for _, i := range sortedKeys(revs.children) {
			rf := revs.children[i].flatten()
			ev.Reviews = append(ev.Reviews, TemplateReview{ID: atoiLoose(rf["id"]), SourceID: atoiLoose(rf["source_id"]),
				Status: rf["status"], RejectReason: rf["reject_reason"]})
		}
		return ev
	}
	return &CRMUnknownEvent{Entity: entity, Action: action, Fields: f}
}

func firstOf(f map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := f[k]; v != "" {
			return v
		}
	}
	return ""
}

// atoiLoose reads a form number; anything else is 0.
func atoiLoose(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return n
}

// boolLoose reads a form flag: "1" or "true" (any case) is true.
func boolLoose(s string) bool {
	s = strings.TrimSpace(s)
	return s == "1" || strings.EqualFold(s, "true")
}
