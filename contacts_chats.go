package kommo

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// ContactsChatsBatchLimit is the most links ContactsChats.Link sends in one
// request (Kommo recommends at most 50 items per write).
const ContactsChatsBatchLimit = 50

// ContactChat is a link between a CRM contact and an amojo chat. A chat is
// linked to exactly one contact; a contact may have many chats. The link ID
// may change over time.
type ContactChat struct {
	// ID is the link id.
	ID int `json:"id"`
	// ChatID is the amojo chat id (the id returned by Chats.Create).
	ChatID string `json:"chat_id"`
	// ContactID is the CRM contact id.
	ContactID int `json:"contact_id"`
	// RequestID echoes ContactChatLink.RequestID (or the item's index when
	// none was given); only set in ContactsChats.Link results.
	RequestID string `json:"request_id,omitempty"`
}

// ContactChatLink asks ContactsChats.Link to link a chat to a contact.
type ContactChatLink struct {
	// ContactID is the CRM contact id (required).
	ContactID int `json:"contact_id"`
	// ChatID is the amojo chat id (required).
	ChatID string `json:"chat_id"`
	// RequestID is echoed in the result so it can be matched to this item
	// (optional).
	RequestID string `json:"request_id,omitempty"`
}

// ContactChatListOptions selects the links ContactsChats.List returns: set
// ContactIDs or ChatIDs, not both (Kommo: "use only one of the two").
//
// One id is sent as a plain parameter (contact_id=ID, chat_id=ID), several
// as an indexed PHP array, the style amoCRM documents for these parameters
// and the SDK uses for filter[external_id] in Sources.List:
// chat_id[0]=A&chat_id[1]=B.
type ContactChatListOptions struct {
	// ContactIDs lists the chats of these contacts (positive CRM contact
	// ids).
	ContactIDs []int
	// ChatIDs finds the contacts of these chats (amojo chat ids); a chat
	// still in Unsorted gives its Unsorted contact.
	ChatIDs []string
}

func (o *ContactChatListOptions) crmValues(v *validator) url.Values {
	q := url.Values{}
	switch {
	case o == nil || len(o.ContactIDs) == 0 && len(o.ChatIDs) == 0:
		v.addf("opts: set ContactIDs or ChatIDs")
		return q
	case len(o.ContactIDs) > 0 && len(o.ChatIDs) > 0:
		v.addf("opts: set only one of ContactIDs and ChatIDs, not both")
		return q
	}
	ids := make([]string, 0, len(o.ContactIDs)+len(o.ChatIDs))
	key := "chat_id"
	if len(o.ContactIDs) > 0 {
		key = "contact_id"
		for i, id := range o.ContactIDs {
			crmPositive(v, id, "opts.ContactIDs["+strconv.Itoa(i)+"]")
			ids = append(ids, strconv.Itoa(id))
		}
	} else {
		for i, id := range o.ChatIDs {
			v.require(id, "opts.ChatIDs["+strconv.Itoa(i)+"]")
			ids = append(ids, id)
		}
	}
	crmSetList(q, key, ids)
	return q
}

// crmSetList sets one value as key=V and several as the indexed PHP array
// key[0]=A&key[1]=B, the form Kommo's PHP library sends.
func crmSetList(q url.Values, key string, vals []string) {
	switch len(vals) {
	case 0:
	case 1:
		q.Set(key, vals[0])
	default:
		for i, val := range vals {
			q.Set(key+"["+strconv.Itoa(i)+"]", val)
		}
	}
}

// List returns the chat links of contacts or the contact links of chats:
// set opts.ContactIDs or opts.ChatIDs (one id or several), not both. Both
// or neither, a non-positive contact id or a blank chat id fail before any
// request with a *ValidationError. A 204 (nothing found) is an empty
// result.
//
// GET /api/v4/contacts/chats?contact_id={id} or ?chat_id={id};
// several ids: ?chat_id[0]={id}&chat_id[1]={id}
//
//	links, _, err := client.ContactsChats.List(ctx, &kommo.ContactChatListOptions{ChatIDs: []string{chatID}})
//
// Kommo docs: https://developers.kommo.com/reference/link-chat-contact
func (s *ContactsChatsService) List(ctx context.Context, opts *ContactChatListOptions) ([]*ContactChat, *Response, error) {
	v := validator{op: "ContactsChats.List"}
	q := opts.crmValues(&v)
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	items, _, resp, err := crmListPage[*ContactChat](ctx, s.client, "ContactsChats.List", "api/v4/contacts/chats", q, "chats")
	if err != nil {
		return nil, resp, err
	}
	return items, resp, nil
}

// Link links chats to contacts in one batch of at most
// ContactsChatsBatchLimit items and returns the links, each with the
// request_id of the item it answers. Every item needs ContactID and ChatID;
// all problems are reported at once before any request.
//
// POST /api/v4/contacts/chats
//
//	links, _, err := client.ContactsChats.Link(ctx, []*kommo.ContactChatLink{
//		{ContactID: 3102959, ChatID: chatID},
//	})
//
// Kommo docs: https://developers.kommo.com/reference/link-chat-contact
func (s *ContactsChatsService) Link(ctx context.Context, links []*ContactChatLink) ([]*ContactChat, *Response, error) {
	v := validator{op: "ContactsChats.Link"}
	switch {
	case len(links) == 0:
		v.addf("links: at least one link is required")
	case len(links) > ContactsChatsBatchLimit:
		v.addf("links: %d items exceed the batch limit of %d", len(links), ContactsChatsBatchLimit)
	}
	for i, l := range links {
		field := "links[" + strconv.Itoa(i) + "]"
		if l == nil {
			v.addf("%s: nil link", field)
			continue
		}
		crmPositive(&v, l.ContactID, field+".contact_id")
		v.require(l.ChatID, field+".chat_id")
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	return crmDoEmbedded[*ContactChat](ctx, s.client, &call{op: "ContactsChats.Link", api: crmAPI, method: http.MethodPost, path: "api/v4/contacts/chats", body: links}, "chats")
}
